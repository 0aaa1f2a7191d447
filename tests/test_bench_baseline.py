"""The bench's baseline client (tests/perf/baseline.py) still does what the bench compares
``oktaduck poll`` with: it follows Okta's ``next`` links from the simulated org until a page
comes back empty and stores every event once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.helpers import REPO, TOKEN, Sim


def baseline(sim: Sim, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.perf.baseline", "--org", sim.url, "--db", str(db)],
        env={"OKTA_API_TOKEN": TOKEN, "PATH": ""},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_baseline_stores_every_event_once_and_a_rerun_adds_none(
    live_sim: Sim, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    live_sim.org.add(gen.stream(2500, now - timedelta(hours=2), now - timedelta(minutes=1)))
    db = tmp_path / "baseline.duckdb"

    first = baseline(live_sim, db)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "2500 events stored"
    # a full page, a full page, 500 events and the empty page that ends it
    pages = [u for u in live_sim.org.request_urls() if "/api/v1/logs" in u]
    assert len(pages) == 4
    assert "limit=1000" in pages[0] and "since=" in pages[0]

    second = baseline(live_sim, db)  # the same window again: every uuid is stored already
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "0 events stored"

    con = duckdb.connect(str(db), read_only=True)
    try:
        total, distinct, proxies = con.execute(
            "SELECT count(*), count(DISTINCT uuid), count(is_proxy) FROM events"
        ).fetchall()[0]
        columns = len(con.execute("SELECT * FROM events LIMIT 0").description or [])
        stored = {r[0] for r in con.execute("SELECT uuid FROM events").fetchall()}
    finally:
        con.close()
    assert (total, distinct) == (2500, 2500)
    assert stored == live_sim.org.served_uuids()
    assert proxies > 0 and columns == 40


@pytest.mark.slow
def test_a_wrong_token_fails_in_one_line(live_sim: Sim, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.perf.baseline", "--org", live_sim.url, "--db",
         str(tmp_path / "b.duckdb")],
        env={"OKTA_API_TOKEN": "wrong-token"}, cwd=REPO, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "401" in done.stderr

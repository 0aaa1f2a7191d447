"""Kill a real ``oktaduck poll`` with SIGKILL between any two steps of a page; the rerun
loses nothing, stores nothing twice and resumes from the stored ``next`` URL."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingest.base.crashpoints import POINTS
from tests.helpers import TOKEN, Sim, run_cli, stored_uuids

pytestmark = pytest.mark.slow  # kills real poll processes at every step


def stored_cursor(db: Path) -> str | None:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT next_url FROM cursors").fetchall()
    finally:
        con.close()
    return rows[0][0] if rows else None


@pytest.mark.parametrize("group", [100, 300])
@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_any_step_loses_and_duplicates_nothing(
    point: str, group: int, live_sim: Sim, tmp_path: Path
) -> None:
    """One page per transaction (group 100) and three pages per transaction (group 300)."""
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    live_sim.org.add(gen.stream(650, now - timedelta(hours=3), now - timedelta(minutes=1)))
    db = tmp_path / "okta.duckdb"
    args = ("poll", "--org", live_sim.url, "--db", str(db), "--page-limit", "100",
            "--group-events", str(group))  # fmt: skip
    env = {"OKTA_API_TOKEN": TOKEN}

    hit = 3 if group == 100 or point.startswith("poll.") else 2
    crashed = run_cli(*args, env={**env, "OKTADUCK_CRASH_AT": f"{point}:{hit}"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    cursor = stored_cursor(db)
    before = len(live_sim.org.request_urls())

    rerun = run_cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    if cursor is not None:
        assert live_sim.org.request_urls()[before] == cursor  # resumed from the stored next URL
        assert "after=" in cursor
    uuids = stored_uuids(db)
    assert not [u for u, n in Counter(uuids).items() if n > 1]
    assert set(uuids) == live_sim.org.visible_uuids()

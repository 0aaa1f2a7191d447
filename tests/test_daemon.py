"""The daemon polls every source on its schedule, keeps going when one fails, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.helpers import REPO, TOKEN, Sim, make_sim, stored_uuids

pytestmark = pytest.mark.slow  # starts the daemon


@pytest.fixture
def two_orgs() -> Iterator[tuple[Sim, Sim]]:
    a, b = make_sim(None, seed=11), make_sim(None, seed=12)
    now = datetime.now(UTC)
    for sim in (a, b):
        sim.org.add(
            sim.org.generator.stream(400, now - timedelta(hours=1), now - timedelta(minutes=1))
        )
    yield a, b
    a.server.stop()
    b.server.stop()


def test_daemon_polls_all_sources_isolates_a_bad_one_and_exits_0_on_sigterm(
    two_orgs: tuple[Sim, Sim], tmp_path: Path
) -> None:
    a, b = two_orgs
    config = tmp_path / "oktaduck.toml"
    config.write_text(
        f"""
[storage]
path = "okta.duckdb"

[api]
listen = "127.0.0.1:0"

[[sources]]
name = "a"
org_url = "{a.url}"
token_env = "TOKEN_A"
poll_interval = "1s"

[[sources]]
name = "b"
org_url = "{b.url}"
token_env = "TOKEN_B"

[[sources]]
name = "broken"
org_url = "{b.url}"
token_env = "TOKEN_BAD"
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKTADUCK_")}
    env.update(TOKEN_A=TOKEN, TOKEN_B=TOKEN, TOKEN_BAD="wrong")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "--log-level", "info", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stderr is not None
    done: set[str] = set()
    failed: dict[str, str] = {}
    cycles_a = 0
    for line in proc.stderr:
        log = orjson.loads(line)
        if log["event"] == "poll.cycle_done" and log["caught_up"]:
            done.add(log["source"])
            cycles_a += log["source"] == "a"
        if log["event"] == "poll.failed":
            failed[log["source"]] = log["error"]
        if {"a", "b"} <= done and "broken" in failed and cycles_a >= 2:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    proc.stderr.close()
    assert "E0000011" in failed["broken"] and "wrong" not in failed["broken"]
    uuids = stored_uuids(tmp_path / "okta.duckdb")
    assert len(uuids) == len(set(uuids)) == 800
    assert set(uuids) == a.org.visible_uuids() | b.org.visible_uuids()

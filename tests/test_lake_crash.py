"""Kill a real ``oktaduck poll`` writing to a lake with a PostgreSQL catalog with SIGKILL
between any two steps of a page; the rerun loses nothing, stores nothing twice and resumes
from the stored ``next`` URL. A killed process's open catalog transaction is rolled back by
PostgreSQL when its connection drops; the Parquet files it had written belong to no
snapshot and are never read."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.base.crashpoints import POINTS
from ingest.store.lake import LakeConfig, connect_lake
from tests.helpers import TOKEN, Sim, daemon_toml, run_cli
from tests.helpers.lake import lake_toml

pytestmark = pytest.mark.slow  # kills real poll processes at every step

TOKEN_ENV = "ACME_TOKEN"


def lake_state(lake: LakeConfig) -> tuple[list[str], str | None]:
    """Every stored uuid (in ingest order) and the stored cursor, read as any reader would."""
    con = connect_lake(lake, read_only=True)
    try:
        uuids = [
            r[0] for r in con.execute("SELECT uuid FROM events ORDER BY ingest_seq").fetchall()
        ]
        rows = con.execute("SELECT next_url FROM cursors WHERE source = 'acme'").fetchall()
    finally:
        con.close()
    return uuids, rows[0][0] if rows else None


def poll_config(tmp_path: Path, sim: Sim, lake: LakeConfig, group: int, owner: str) -> Path:
    """A config with one source at the simulator, its events in ``lake``; ``owner`` names the
    process in leases ("" for the default, host:pid, which differs from run to run)."""
    named = f'owner = "{owner}"\n' if owner else ""
    return daemon_toml(
        tmp_path / "oktaduck.toml",
        [("acme", sim.url)],
        token_env=TOKEN_ENV,
        source_keys=f"page_limit = 100\ngroup_events = {group}",
        extra=lake_toml(lake) + named,
    )


def add_events(sim: Sim, count: int) -> None:
    now = datetime.now(UTC)
    gen = sim.org.generator
    sim.org.add(gen.stream(count, now - timedelta(hours=3), now - timedelta(minutes=1)))


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_any_step_on_a_lake_loses_and_duplicates_nothing(
    point: str, live_sim: Sim, tmp_path: Path, new_lake: Callable[..., LakeConfig]
) -> None:
    """Three pages per transaction (tests/test_crash.py covers one page per transaction on a
    file too: the store's steps are the same). The rerun names itself as the killed process
    did (``owner``), so it takes its lease back at once, as a restarted daemon with a stable
    name does."""
    add_events(live_sim, 650)
    lake = new_lake("postgres")
    config = poll_config(tmp_path, live_sim, lake, 300, "crash-test")
    args = ("poll", "--config", str(config))
    env = {TOKEN_ENV: TOKEN}

    hit = 3 if point.startswith("poll.") else 2  # the third page, or the second commit
    crashed = run_cli(*args, env={**env, "OKTADUCK_CRASH_AT": f"{point}:{hit}"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    stored, cursor = lake_state(lake)
    assert len(stored) == len(set(stored))
    before = len(live_sim.org.request_urls())

    rerun = run_cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    if cursor is not None:
        assert live_sim.org.request_urls()[before] == cursor  # resumed from the stored next URL
        assert "after=" in cursor
    uuids, _ = lake_state(lake)
    assert not [u for u, n in Counter(uuids).items() if n > 1]
    assert set(uuids) == live_sim.org.visible_uuids()
    assert uuids[: len(stored)] == stored  # what the killed process committed kept its place


def test_a_killed_pollers_lease_keeps_another_process_out_until_it_ends(
    live_sim: Sim, tmp_path: Path, new_lake: Callable[..., LakeConfig]
) -> None:
    """Without a stable name, the rerun is another owner: the source's lease, held by the
    killed process until it ends, refuses it with one line and it stores nothing."""
    add_events(live_sim, 350)
    lake = new_lake("postgres")
    config = poll_config(tmp_path, live_sim, lake, 100, "")
    env = {TOKEN_ENV: TOKEN}
    crashed = run_cli(
        "poll", "--config", str(config), env={**env, "OKTADUCK_CRASH_AT": "store.begun:2"}
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    stored, cursor = lake_state(lake)
    assert len(stored) == 100

    requests = len(live_sim.org.request_urls())
    refused = run_cli("poll", "--config", str(config), env=env)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "owned by" in lines[0] and "Traceback" not in refused.stderr
    assert lake_state(lake) == (stored, cursor)
    assert len(live_sim.org.request_urls()) == requests  # refused before fetching anything

"""Housekeeping of a lake: small files merged, inlined rows flushed, superseded cursor rows
dropped, old snapshots and their files removed after the grace, on a lake that has its
views, with every event, its ingest_seq and every cursor as they were."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.base.clock import FakeClock
from ingest.collect.poll import poll_cycle
from ingest.mapping import CompiledMapping
from ingest.okta.client import OktaClient
from ingest.store.db import Store, read_cursor
from ingest.store.housekeeping import housekeep, lake_files
from ingest.store.lake import LakeConfig
from tests.helpers import Sim, source_for

Client = Callable[[Any, Any], OktaClient]
KINDS = ["duckdb", "sqlite", pytest.param("postgres", marks=pytest.mark.slow)]


def parquet_files(lake: LakeConfig) -> int:
    assert lake.data is not None
    return sum(1 for _ in Path(lake.data).rglob("*.parquet"))


def small_commits(sim: Sim, store: Store, clock: FakeClock, client_for: Client, count: int) -> None:
    """``count`` events in one-page groups of 20: many commits, many small files."""
    now = clock.now()
    sim.org.add(
        sim.org.generator.stream(count, now - timedelta(hours=3), now - timedelta(minutes=2))
    )
    source = dataclasses.replace(source_for(sim, page_limit=20), group_events=20)
    result = poll_cycle(source, store, client_for(source, clock), clock)
    assert result.caught_up


def seqs(store: Store) -> dict[str, int]:
    return dict(store.con.execute("SELECT uuid, ingest_seq FROM events").fetchall())


@pytest.mark.parametrize("kind", KINDS)
def test_housekeeping_merges_files_and_drops_old_snapshots_keeping_events_and_cursors(
    kind: str,
    new_lake: Callable[..., LakeConfig],
    mapping: CompiledMapping,
    sim: Sim,
    clock: FakeClock,
    token_env: str,
    client_for: Client,
) -> None:
    lake = new_lake(kind, inline_rows=5, keep_snapshots=timedelta(0))
    with Store(lake, mapping) as store:
        small_commits(sim, store, clock, client_for, 300)
        before, cursor = seqs(store), read_cursor(store.con, "acme")
        logged = store.con.execute("SELECT count(*) FROM cursor_log").fetchall()[0][0]
        on_disk = parquet_files(lake)
        con = store.con.cursor()
        first = housekeep(con, lake, datetime.now(UTC))
        assert first.skipped == ()
        assert first.files_merged >= 10 and first.after.files < first.before.files
        assert first.snapshots_expired > 0
        # the cursor log kept the newest row of the source only
        assert logged > 15 and first.cursor_rows_deleted == logged - 1  # a row a commit
        assert store.con.execute("SELECT count(*) FROM cursor_log").fetchall() == [(1,)]
        # files are deleted once the snapshots that used them expired a grace ago (here
        # none: in this run, or the next)
        second = housekeep(con, lake, datetime.now(UTC))
        con.close()
        assert first.files_deleted + second.files_deleted >= first.files_merged
        assert parquet_files(lake) < on_disk
        assert seqs(store) == before and len(before) == 300
        assert read_cursor(store.con, "acme") == cursor
        # and the store goes on: new events get the next ingest_seqs
        clock.advance(4 * 3600)
        small_commits(sim, store, clock, client_for, 40)
        after = seqs(store)
        assert len(after) == 340
        assert min(s for u, s in after.items() if u not in before) > max(before.values())


def test_files_stay_on_disk_while_the_grace_lasts(
    new_lake: Callable[..., LakeConfig],
    mapping: CompiledMapping,
    sim: Sim,
    clock: FakeClock,
    token_env: str,
    client_for: Client,
) -> None:
    lake = new_lake("duckdb", inline_rows=5, keep_snapshots=timedelta(hours=1))
    with Store(lake, mapping) as store:
        small_commits(sim, store, clock, client_for, 200)
        on_disk = parquet_files(lake)
        con = store.con.cursor()
        done = [housekeep(con, lake, datetime.now(UTC)) for _ in range(2)]
        con.close()
        assert done[0].files_merged >= 10
        # a reader that began before the merge may still read the old files: none is gone
        assert [d.snapshots_expired for d in done] == [0, 0]
        assert [d.files_deleted for d in done] == [0, 0]
        assert parquet_files(lake) > on_disk  # the merged file came on top
        assert lake_files(store.con).files == done[1].after.files
        assert len(seqs(store)) == 200

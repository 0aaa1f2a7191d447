"""Committing a group of pages: one insert, and still every uuid stored exactly once."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.mapping import CompiledMapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import INGEST_MEMORY_LIMIT, PageRows, Store
from tests.helpers.lake import ON_EVERY_STORE

START = datetime(2026, 3, 1, tzinfo=UTC)


def page(mapping: CompiledMapping, events: list[dict[str, Any]], next_url: str) -> PageRows:
    raw = [orjson.dumps(e).decode() for e in events]
    return PageRows("acme", "https://acme.okta.com", next_url, mapping.apply_batch(events), raw, [])


def stored(store: Store) -> list[str]:
    return [
        r[0] for r in store.con.execute("SELECT uuid FROM events ORDER BY ingest_seq").fetchall()
    ]


@ON_EVERY_STORE
def test_a_uuid_on_two_pages_of_one_group_is_stored_once(
    store: Store, mapping: CompiledMapping
) -> None:
    events = EventGenerator(seed=3).stream(30, START, START + timedelta(hours=1))
    # Okta may repeat the last event of a page at the top of the next one
    first, second = events[:20], events[19:]
    result = store.commit_pages([page(mapping, first, "n1"), page(mapping, second, "n2")], START)
    assert (result.stored, result.duplicates) == (30, 1)
    assert stored(store) == [e["uuid"] for e in events]
    assert store.cursor("acme").next_url == "n2"  # type: ignore[union-attr]


@ON_EVERY_STORE
def test_older_events_are_checked_against_the_store_and_newer_ones_go_straight_in(
    store: Store, mapping: CompiledMapping
) -> None:
    gen = EventGenerator(seed=4)
    early = gen.stream(50, START, START + timedelta(hours=1))
    later = gen.stream(50, START + timedelta(hours=2), START + timedelta(hours=3))
    store.commit_pages([page(mapping, later, "a")], START)
    # a late page: some events stored already (a rerun), some older than anything stored
    mixed = early[:10] + later[:5]
    result = store.commit_pages([page(mapping, mixed, "b")], START)
    assert (result.stored, result.duplicates) == (10, 5)
    newest = gen.stream(20, START + timedelta(hours=4), START + timedelta(hours=5))
    again = store.commit_pages([page(mapping, newest + later[-3:], "c")], START)
    assert (again.stored, again.duplicates) == (20, 3)
    uuids = stored(store)
    assert len(uuids) == len(set(uuids)) == 80
    assert set(uuids) == {e["uuid"] for e in later + early[:10] + newest}


@ON_EVERY_STORE
def test_other_content_under_a_stored_uuid_is_kept_apart_and_the_same_content_is_a_duplicate(
    store: Store, mapping: CompiledMapping
) -> None:
    events = EventGenerator(seed=5).stream(3, START, START + timedelta(hours=1))
    other = {**events[0], "displayMessage": "something else"}
    store.commit_pages([page(mapping, events, "a")], START)
    # the other content first, then the stored one again: only the first is a conflict
    result = store.commit_pages([page(mapping, [other, events[0], other], "b")], START)
    assert (result.stored, result.duplicates, result.conflicts) == (0, 1, 2)
    rows = store.con.execute("SELECT uuid, raw::VARCHAR, stored_hash FROM conflicts").fetchall()
    stored_raw = store.con.execute(
        "SELECT raw::VARCHAR FROM events WHERE uuid = ?", [events[0]["uuid"]]
    ).fetchall()[0][0]
    assert orjson.loads(stored_raw) == events[0]
    assert [(u, orjson.loads(r)) for u, r, _ in rows] == [(events[0]["uuid"], other)]
    assert rows[0][2] == hashlib.sha256(stored_raw.encode()).hexdigest()


@pytest.mark.slow  # large events
def test_large_events_commit_within_a_small_memory_limit_across_groups(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    """Strings of 4 KiB or more stay in DuckDB's memory until a checkpoint: 60 MB of them
    under the one-shot ingest's 48 MB need checkpoints in between, and a 20 MB group is
    split."""
    gen = EventGenerator(seed=6)
    db = tmp_path / "d.duckdb"
    with Store(
        db, mapping, memory_limit=INGEST_MEMORY_LIMIT, threads=1, serves_queries=False
    ) as store:
        for n, count in enumerate([100, 100, 400, 100, 100, 100, 100, 200]):
            start = START + timedelta(hours=n)
            events = gen.stream(count, start, start + timedelta(minutes=50))
            for event in events:
                event["debugContext"] = {"debugData": {"pad": "x" * 50_000}}
            result = store.commit_pages([page(mapping, events, f"n{n}")], START)
            assert (result.stored, result.duplicates) == (count, 0)
        cursor = store.cursor("acme")
        assert cursor is not None
        assert (cursor.next_url, cursor.pages, cursor.events) == ("n7", 8, 1200)
        assert len(set(stored(store))) == 1200


def test_a_commit_that_runs_out_of_a_one_shot_memory_limit_runs_again_with_more(
    tmp_path: Path, mapping: CompiledMapping, caplog: pytest.LogCaptureFixture
) -> None:
    """A group of ordinary events can need more than a one-shot ingest's memory limit at
    COMMIT (DuckDB 1.5.5: two 1000-event pages did at 48MB); the store doubles its limit and
    commits the group again, nothing of the failed try stored, ``ingest_seq`` without a gap."""
    caplog.set_level(logging.INFO, logger="oktaduck")
    gen = EventGenerator(seed=8)
    with Store(
        tmp_path / "d.duckdb", mapping, memory_limit="16MB", threads=1, serves_queries=False
    ) as store:
        # two groups: with 4096-row groups a third COMMIT runs out of the raised 31MB (the
        # 122,880-row groups of before got through three, not four)
        for n in range(2):
            start = START + timedelta(hours=n)
            events = gen.stream(2000, start, start + timedelta(minutes=50))
            pages = [page(mapping, events[:1000], f"a{n}"), page(mapping, events[1000:], f"b{n}")]
            result = store.commit_pages(pages, START)
            assert (result.stored, result.duplicates) == (2000, 0)
        seqs = store.con.execute("SELECT min(ingest_seq), max(ingest_seq), count(*) FROM events")
        assert seqs.fetchall() == [(1, 4000, 4000)]
        assert len(set(stored(store))) == 4000
    raised = [r.fields for r in caplog.records if r.getMessage() == "store.memory_raised"]  # type: ignore[attr-defined]
    assert raised and raised[0]["reason"] == "a commit ran out of it"


def test_a_new_file_keeps_raw_events_compressed(tmp_path: Path, mapping: CompiledMapping) -> None:
    """DuckDB's default storage format for a new file has no zstd for strings; the store
    writes its files in a newer one, where ``raw`` is kept zstd-compressed."""
    with Store(tmp_path / "okta.duckdb", mapping) as store:
        store.con.execute("CREATE TABLE probe (raw JSON USING COMPRESSION zstd)")
        store.con.execute("INSERT INTO probe SELECT json_object('n', range) FROM range(5000)")
        store.con.execute("CHECKPOINT")
        kinds = store.con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('probe') "
            "WHERE segment_type = 'JSON'"
        ).fetchall()
    assert kinds == [("ZSTD",)]

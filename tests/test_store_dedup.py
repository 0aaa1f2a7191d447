"""Committing a group of pages: one insert, and still every uuid stored exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ingest.mapping import CompiledMapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import PageRows, Store

START = datetime(2026, 3, 1, tzinfo=UTC)


def page(mapping: CompiledMapping, events: list[dict[str, Any]], next_url: str) -> PageRows:
    raw = [orjson.dumps(e).decode() for e in events]
    return PageRows("acme", "https://acme.okta.com", next_url, mapping.apply_batch(events), raw, [])


def stored(store: Store) -> list[str]:
    return [
        r[0] for r in store.con.execute("SELECT uuid FROM events ORDER BY ingest_seq").fetchall()
    ]


def test_a_uuid_on_two_pages_of_one_group_is_stored_once(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    events = EventGenerator(seed=3).stream(30, START, START + timedelta(hours=1))
    # Okta may repeat the last event of a page at the top of the next one
    first, second = events[:20], events[19:]
    with Store(tmp_path / "d.duckdb", mapping) as store:
        result = store.commit_pages(
            [page(mapping, first, "n1"), page(mapping, second, "n2")], START
        )
        assert (result.stored, result.duplicates) == (30, 1)
        assert stored(store) == [e["uuid"] for e in events]
        assert store.cursor("acme").next_url == "n2"  # type: ignore[union-attr]


def test_older_events_are_checked_against_the_store_and_newer_ones_go_straight_in(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    gen = EventGenerator(seed=4)
    early = gen.stream(50, START, START + timedelta(hours=1))
    later = gen.stream(50, START + timedelta(hours=2), START + timedelta(hours=3))
    with Store(tmp_path / "d.duckdb", mapping) as store:
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

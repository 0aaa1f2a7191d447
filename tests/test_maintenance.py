"""Backfill, the completeness check and retention, against the simulated org over HTTP."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from ingest.base.clock import FakeClock
from ingest.collect.backfill import Progress, backfill
from ingest.collect.completeness import check_window
from ingest.collect.poll import poll_cycle
from ingest.store.db import Store
from ingest.store.retention import apply_retention
from tests.helpers import Sim, source_for, stored_uuids


def history(sim: Sim, clock: FakeClock, days: int, count: int) -> None:
    now = clock.now()
    gen = sim.org.generator
    sim.org.add(gen.stream(count, now - timedelta(days=days), now - timedelta(minutes=5)))


@pytest.mark.slow  # backfills thousands of events
def test_backfill_of_a_new_source_hands_over_to_polling_without_gap_or_duplicate(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: object
) -> None:
    history(sim, clock, days=60, count=2500)
    source = source_for(sim, page_limit=200, group_events=400)
    client = client_for(source, clock)  # type: ignore[operator]
    seen: list[Progress] = []
    result = backfill(source, store, client, clock, clock.now() - timedelta(days=61), seen.append)
    assert result.mode == "cold-start" and result.caught_up
    assert result.stored == 2500
    assert len(seen) >= 2  # progress after every committed group of pages
    assert all(a.pages < b.pages and a.fetched < b.fetched for a, b in itertools.pairwise(seen))
    assert seen[-1].fraction > 0.99 and seen[0].fraction < seen[-1].fraction
    # Okta stores more; the next ordinary cycle continues from the backfill's cursor
    now = clock.now()
    sim.org.add_late(
        sim.org.generator.stream(40, now - timedelta(minutes=3), now), now + timedelta(seconds=1)
    )
    clock.advance(60)
    after = poll_cycle(source, store, client, clock)
    assert after.stored == 40
    got = stored_uuids(store)
    assert len(got) == len(set(got)) == 2540
    assert set(got) == sim.org.visible_uuids()


@pytest.mark.slow  # backfills thousands of events
def test_backfill_of_an_existing_source_fills_older_history_and_keeps_the_cursor(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: object
) -> None:
    history(sim, clock, days=30, count=1500)
    source = source_for(sim, page_limit=200, lookback_h=24 * 3)
    client = client_for(source, clock)  # type: ignore[operator]
    first = poll_cycle(source, store, client, clock)
    assert 0 < first.stored < 1500
    cursor = store.cursor("acme")
    result = backfill(source, store, client, clock, clock.now() - timedelta(days=31))
    assert result.mode == "history"
    got = stored_uuids(store)
    assert len(got) == len(set(got))
    assert set(got) == sim.org.visible_uuids()
    assert store.cursor("acme").next_url == cursor.next_url  # type: ignore[union-attr]


def test_completeness_check_finds_and_repairs_missing_events(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: object
) -> None:
    history(sim, clock, days=1, count=800)
    source = source_for(sim, page_limit=200)
    client = client_for(source, clock)  # type: ignore[operator]
    poll_cycle(source, store, client, clock)
    window = (clock.now() - timedelta(hours=3), clock.now() - timedelta(hours=1))
    lost = store.con.execute(
        "DELETE FROM events WHERE uuid IN (SELECT uuid FROM events WHERE published >= ? "
        "AND published < ? LIMIT 7) RETURNING uuid",
        list(window),
    ).fetchall()
    assert len(lost) == 7
    result = check_window(
        source, store, client, clock, window=timedelta(hours=2), delay=timedelta(hours=1)
    )
    assert result.complete
    assert result.missing == 7
    assert result.fetched > 7
    assert set(stored_uuids(store)) == sim.org.visible_uuids()
    again = check_window(
        source, store, client, clock, window=timedelta(hours=2), delay=timedelta(hours=1)
    )
    assert again.missing == 0


def test_retention_deletes_only_events_older_than_the_limit(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: object
) -> None:
    history(sim, clock, days=80, count=1600)
    source = source_for(sim, page_limit=500, lookback_h=24 * 85)
    poll_cycle(source, store, client_for(source, clock), clock)  # type: ignore[operator]
    cutoff = clock.now() - timedelta(days=30)
    older = store.con.execute(
        "SELECT count(*) FROM events WHERE published < ?", [cutoff]
    ).fetchall()[0][0]
    total = len(stored_uuids(store))
    result = apply_retention(store, timedelta(days=30), clock)
    assert result.events_deleted == older > 0
    assert len(stored_uuids(store)) == total - older
    left = store.con.execute("SELECT min(published) FROM events").fetchall()[0][0]
    assert left >= cutoff

"""The feeds' data set (tests/helpers/feeds.py) holds what the feed tests expect of it."""

from __future__ import annotations

from datetime import timedelta

from ingest.simulate.generator import EventGenerator
from tests.helpers.feeds import (
    SESSION_START,
    T0,
    Dataset,
    Stored,
    connect,
    sliding_findings,
    text,
)


def test_every_event_is_stored_once(data: Dataset) -> None:
    con = connect(data)
    try:
        rows = con.execute("SELECT source, uuid FROM events").fetchall()
    finally:
        con.close()
    assert sorted(rows) == sorted((s.source, s.uuid) for s in data.events)


def test_the_quirks_are_present(data: Dataset) -> None:
    events = data.events
    assert any(s.actor_id == "unknown" and s.type == SESSION_START for s in events)
    assert any(s.result == "DENY" and s.type == SESSION_START for s in events)
    assert any(s.e.get("outcome") is None for s in events)
    assert any(text((s.e.get("client") or {}).get("ipAddress")) is None for s in events)
    assert any(s.security.get("isProxy") is None for s in events)
    assert {s.source for s in events} == {"acme", "globex"}
    assert min(s.published for s in events) < T0 - timedelta(days=30)


def test_the_planted_events_are_where_the_tests_expect_them(data: Dataset) -> None:
    uuids = data.by_uuid()
    for key in ("new_country", "first_sign_in", "hire_abroad", "returning", "no_outcome"):
        assert data.planted[key] in uuids
    assert all(u in uuids for u in data.planted["proxy"])
    assert uuids[data.planted["new_country"]].country == "Romania"


def test_sliding_findings_follow_the_definition() -> None:
    gen = EventGenerator(seed=1)
    times = [0, 60, 120, 600, 601, 1300]
    events = [Stored("x", gen.event(SESSION_START, T0 + timedelta(seconds=t))) for t in times]
    found = sliding_findings(events, lambda s: ("x", "k"), len, 3, timedelta(seconds=600))
    # dense ends: 120 (0..120), 600 (0..600), 601 (1..601 holds 60,120,600,601); merged
    assert [[int((s.published - T0).total_seconds()) for s in group] for _, group in found] == [
        [0, 60, 120, 600, 601]
    ]

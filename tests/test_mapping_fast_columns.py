"""The whole-column functions of a batch (filtered paths such as
``$.target[?(@.type == 'User')].id``, fields read from the first of several plain paths, and
plain fields of other types than text with null-likes) give exactly what the event-by-event
route gives: every column of every row, the issues and the reasons, over generated events of
every catalog type, the shipped samples, and events with odd, missing and wrong-typed values
at the paths the mappings read."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.base.errors import EventRejected
from ingest.mapping import CompiledMapping, default_mapping_dir, load_mapping
from ingest.mapping.apply import MappedBatch, Plan, apply_events
from ingest.mapping.reads import paths_read
from ingest.simulate import event_types
from tests.helpers.odd_events import MAPPINGS, generated, odd_events, sample_events

START = datetime(2026, 3, 1, tzinfo=UTC)


def batches_of_every_kind() -> list[list[Any]]:
    """Pages of 50 events, and each odd event as a batch of its own too: a value that fails in
    a whole column sends that column of its batch down the careful route, which must not
    hide what the whole column gives the other events."""
    plenty = generated(1500, seed=19)
    normalized = load_mapping(default_mapping_dir() / "okta" / "normalized.toml")
    odd = list(odd_events(plenty[:600], sorted(paths_read(normalized)), seed=19))
    events = [*plenty, *sample_events(), *odd]
    return [events[i : i + 50] for i in range(0, len(events), 50)] + [[e] for e in odd]


def without_whole_columns(mapping: CompiledMapping) -> Plan:
    """The mapping's plan with every field's whole-column function taken away."""
    plain = {f.name: dataclasses.replace(f, whole=None) for f in mapping.plan.fields}
    return Plan(
        tuple(plain[f.name] for f in mapping.plan.fields),
        tuple(plain[f.name] for f in mapping.plan.order),
    )


def rows_of(batch: MappedBatch) -> list[bytes]:
    """Each accepted row as JSON text: types count (``1``, ``1.0`` and ``true`` differ)."""
    names = list(batch.columns)
    return [
        orjson.dumps({name: batch.columns[name][i] for name in names})
        for i in range(len(batch.accepted))
    ]


@pytest.fixture(scope="module")
def every_kind() -> list[list[Any]]:
    return batches_of_every_kind()


def test_the_events_cover_every_catalog_type_and_the_fast_columns() -> None:
    mapping = load_mapping(default_mapping_dir() / "okta" / "normalized.toml")
    whole = {f.name for f in mapping.plan.fields if f.whole is not None}
    assert {"target_user_id", "target_app_user_login", "as_number", "threat_suspected"} <= whole
    types = {e["eventType"] for e in generated(1500, seed=19)}
    assert types == {t.id for t in event_types.event_types()}


@pytest.mark.parametrize("path", MAPPINGS, ids=[p.stem for p in MAPPINGS])
def test_a_batch_maps_every_event_as_the_event_by_event_route_does(
    path: Path, every_kind: list[list[Any]]
) -> None:
    mapping = load_mapping(path)
    seen_issues = seen_rejected = 0
    for events in every_kind:
        batch = mapping.apply_batch(events)
        rows, issues, rejected = [], [], []
        for index, event in enumerate(events):
            try:
                row, row_issues = mapping.apply(event)
            except EventRejected as err:
                rejected.append((index, str(err)))
                continue
            rows.append(orjson.dumps(row))
            issues.append(row_issues)
        assert batch.rejected == rejected
        assert rows_of(batch) == rows
        assert batch.issues == issues
        seen_issues += sum(map(bool, issues))
        seen_rejected += len(rejected)
    assert seen_issues and seen_rejected  # the odd events do not all map cleanly


@pytest.mark.parametrize("path", MAPPINGS, ids=[p.stem for p in MAPPINGS])
def test_whole_columns_change_nothing_in_a_batch(path: Path, every_kind: list[list[Any]]) -> None:
    mapping = load_mapping(path)
    plain = without_whole_columns(mapping)
    for events in every_kind:
        fast = mapping.apply_batch(events)
        slow = apply_events(plain, events)
        assert (fast.accepted, fast.rejected, fast.issues) == (
            slow.accepted,
            slow.rejected,
            slow.issues,
        )
        assert rows_of(fast) == rows_of(slow)

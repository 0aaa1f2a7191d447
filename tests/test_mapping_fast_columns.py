"""The whole-column functions of a batch (filtered paths such as
``$.target[?(@.type == 'User')].id``, fields read from the first of several plain paths, and
plain fields of other types than text with null-likes) give exactly what the event-by-event
route gives: every column of every row, the issues and the reasons, over generated events of
every catalog type, the shipped samples, and events with odd, missing and wrong-typed values
at the paths the mappings read."""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.base.errors import EventRejected
from ingest.mapping import CompiledMapping, default_mapping_dir, load_mapping
from ingest.mapping.apply import MappedBatch, Plan, apply_events
from ingest.mapping.reads import paths_read
from ingest.simulate import event_types
from ingest.simulate.generator import EventGenerator
from tests.helpers import REPO, SAMPLES

START = datetime(2026, 3, 1, tzinfo=UTC)
MAPPINGS = sorted((default_mapping_dir() / "okta").glob("*.toml"))
SHARED_SAMPLES = REPO.parent / "shared" / "okta" / "samples"

# values put where a mapping reads: every JSON type, null-likes, text that looks like others
ODD: list[Any] = [
    None,
    "",
    "null",
    "NULL",
    "true",
    "FALSE",
    "42",
    " 7 ",
    "1.5",
    "1e400",
    "not an ip",
    "::FFFF:10.0.0.1",
    "2026-03-01T00:00:00Z",
    0,
    -1,
    2**70,
    1.0,
    1.5,
    -0.0,
    True,
    False,
    [],
    [None],
    ["a", 1, None, "null"],
    [{"ip": "10.0.0.1"}, {"ip": None}, "x"],
    {},
    {"type": "User", "id": None},
    {"a": {"b": 1}},
]


def sample_events() -> list[Any]:
    events: list[Any] = []
    for folder in (SAMPLES, SHARED_SAMPLES):
        for path in sorted(folder.glob("*.ndjson")) if folder.is_dir() else []:
            events += [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    return events


def generated(count: int, seed: int) -> list[dict[str, Any]]:
    """A realistic mix, and one event of every public type of the catalog."""
    generator = EventGenerator(seed=seed)
    mix = generator.stream(count, START, START + timedelta(hours=6))
    return mix + [generator.event(t.id, START) for t in event_types.event_types()]


def set_path(event: dict[str, Any], path: str, value: Any, rng: random.Random) -> None:
    """Put ``value`` at a plain path (``a.b[].c``), making or replacing what is on the way."""
    node: Any = event
    parts = path.split(".")
    for depth, part in enumerate(parts):
        key = part.removesuffix("[]")
        last = depth == len(parts) - 1
        if not isinstance(node, dict):
            return
        if last and not part.endswith("[]"):
            if value is _MISSING:
                node.pop(key, None)
            else:
                node[key] = value
            return
        child = node.get(key)
        if part.endswith("[]"):
            if not isinstance(child, list) or not child:
                child = [{}, {"type": "User"}]
                node[key] = child
            node = rng.choice(child)
            if last:
                return
        else:
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child


_MISSING = object()


def odd_events(base: list[dict[str, Any]], paths: list[str], seed: int) -> Iterator[Any]:
    """Copies of ``base`` with one to four read paths given odd values (or removed), and
    targets that are objects, hold non-objects, repeat a type, or type themselves oddly."""
    rng = random.Random(seed)
    for event in base:
        odd = copy.deepcopy(event)
        for path in rng.sample(paths, rng.randint(1, 4)):
            set_path(odd, path, rng.choice([*ODD, _MISSING]), rng)
        yield odd
    targets: list[Any] = [
        {"a": {"type": "User", "id": "00u1"}, "b": {"type": "UserGroup", "id": "00g1"}},
        [{"type": "User", "id": None}, {"type": "User", "id": "null"}, {"type": "User", "id": 7}],
        [{"type": "User"}, "User", None, 3, {"type": ["User"], "id": "x"}],
        [{"type": "AppUser", "alternateId": ""}, {"type": "AppUser", "alternateId": "a@b"}],
        [{"type": "User", "id": {"nested": 1}}, {"type": "User", "id": "00u2"}],
        "User",
        None,
        [],
    ]
    for n, target in enumerate(targets):
        yield {**base[n % len(base)], "target": copy.deepcopy(target)}
    yield from ("not an object", 42, None, [base[0]])


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

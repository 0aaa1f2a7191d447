"""Events for mapping comparisons: a realistic mix with one event of every catalog type, the
shipped samples, and copies with odd, missing and wrong-typed values at the paths a mapping
reads (``odd_events``)."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest.mapping import default_mapping_dir
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

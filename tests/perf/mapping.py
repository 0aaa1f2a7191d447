"""What mapping a page costs, in CPU microseconds per event, by route.

``python -m tests.perf.mapping [--events N] [--page 1000] [--rounds 5]`` generates N events
(default 20,000) with the simulated org's generator, as pages of orjson-written JSON, and
runs each route over the same pages, round after round, the routes alternating within each
round (garbage collection off, as in the mapping child). Each line is one route's median
over the rounds:

- ``orjson parse``: decoding the pages whole (what the mapping needs);
- ``split raw``: splitting the pages into each event's exact bytes (``msgspec.Raw``);
- ``parse_page``: the two, and the depth check (``ingest/okta/elements.py``);
- ``apply_batch``: the normalized mapping over events already decoded;
- ``apply_batch, no whole columns``: the same with the fields read through a filter or from
  several paths mapped event by event (their whole-column functions taken away: the route
  before them);
- ``page -> rows``: ``parse_page`` and ``apply_batch``, what the child does for a page;
- ``struct decode``: the other decoder measured, ``msgspec`` Structs made with ``defstruct``
  from the paths the mapping reads (unknown fields skipped, a subtree read through a filter or
  ``[*]`` decoded whole), alone and with ``to_builtins`` to hand the mapping the dicts it reads;
- ``struct -> rows``: that decoder, ``to_builtins`` and ``apply_batch``.

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

from ingest.config import normalized_mapping_path
from ingest.mapping import CompiledMapping, load_mapping
from ingest.mapping.apply import Plan, apply_events
from ingest.mapping.reads import paths_read
from ingest.okta.elements import parse_page
from ingest.simulate.generator import EventGenerator

START = datetime(2026, 3, 1, tzinfo=UTC)


def pages(events: int, size: int) -> list[bytes]:
    generator = EventGenerator(seed=19)
    bodies = []
    for first in range(0, events, size):
        count = min(size, events - first)
        hour = START + timedelta(hours=first // size)
        bodies.append(orjson.dumps(generator.stream(count, hour, hour + timedelta(hours=1))))
    return bodies


def struct_decoder(mapping: CompiledMapping) -> msgspec.json.Decoder[Any]:
    """A decoder of a page into Structs holding only what the mapping reads."""
    tree: dict[str, Any] = {}
    for path in paths_read(mapping):
        node: dict[str, Any] | None = tree
        parts = path.split(".")
        for depth, part in enumerate(parts):
            assert node is not None
            if part.endswith("[]") or depth == len(parts) - 1:
                node[part.removesuffix("[]")] = None  # read whole
                break
            node = node.setdefault(part, {})
            if node is None:  # read whole already
                break
    made = iter(range(10**6))

    def struct(node: dict[str, Any]) -> Any:
        names = {f"f{i}": key for i, key in enumerate(node)}
        fields = [
            (name, Any if node[key] is None else struct(node[key]) | None, msgspec.UNSET)
            for name, key in names.items()
        ]
        return msgspec.defstruct(f"S{next(made)}", fields, rename=names, omit_defaults=True)

    return msgspec.json.Decoder(list[struct(tree)])  # type: ignore[misc]


def without_whole_columns(mapping: CompiledMapping) -> Plan:
    plain = {f.name: dataclasses.replace(f, whole=None) for f in mapping.plan.fields}
    return Plan(
        tuple(plain[f.name] for f in mapping.plan.fields),
        tuple(plain[f.name] for f in mapping.plan.order),
    )


def measure(
    routes: dict[str, Callable[[bytes], Any]], bodies: list[bytes], rounds: int
) -> dict[str, float]:
    """Median CPU microseconds per event of each route, the routes alternating every round."""
    events = sum(len(orjson.loads(body)) for body in bodies)
    times: dict[str, list[float]] = {name: [] for name in routes}
    for _ in range(rounds):
        for name, route in routes.items():
            gc.collect()
            gc.disable()
            try:
                started = time.process_time()
                for body in bodies:
                    route(body)
                times[name].append((time.process_time() - started) / events * 1e6)
            finally:
                gc.enable()
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.mapping")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    mapping = load_mapping(normalized_mapping_path())
    bodies = pages(args.events, args.page)
    decoded = {id(body): orjson.loads(body) for body in bodies}
    structs = struct_decoder(mapping)
    plain = without_whole_columns(mapping)
    split = msgspec.json.Decoder(list[msgspec.Raw])
    routes: dict[str, Callable[[bytes], Any]] = {
        "orjson parse": orjson.loads,
        "split raw": split.decode,
        "parse_page": parse_page,
        "apply_batch": lambda body: mapping.apply_batch(decoded[id(body)]),
        "apply_batch, no whole columns": lambda body: apply_events(plain, decoded[id(body)]),
        "page -> rows": lambda body: mapping.apply_batch(parse_page(body).events),
        "struct decode": structs.decode,
        "struct decode + to_builtins": lambda body: msgspec.to_builtins(structs.decode(body)),
        "struct -> rows": lambda body: mapping.apply_batch(
            msgspec.to_builtins(structs.decode(body))
        ),
    }
    figures = measure(routes, bodies, args.rounds)
    size = sum(map(len, bodies)) / sum(len(decoded[id(b)]) for b in bodies)
    print(f"{args.events} events of {size:.0f} bytes, pages of {args.page}, {args.rounds} rounds")
    for name, value in figures.items():
        print(f"{name:30s} {value:7.2f} us/event")
    print(json.dumps({"events": args.events, "page": args.page, "us_per_event": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

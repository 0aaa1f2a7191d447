"""The event-type catalog the generator draws from, shipped as compact package data.

``data/event_types.json`` is derived from Okta's published event-type catalog: one line per
public (non-internal) type with its ``id``, ``category`` and schema ``targets``. Rebuild it with
``python -m ingest.simulate.event_types PATH/TO/event-types.json``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

DATA_FILE = Path(__file__).parent / "data" / "event_types.json"


@dataclass(frozen=True)
class EventType:
    """One public event type: its id, Okta's category and the schema names of its targets."""

    id: str
    category: str
    targets: tuple[str, ...]


def compact(catalog: Any) -> list[dict[str, Any]]:
    """Reduce a full catalog document to the entries the generator needs, sorted by id."""
    try:
        types = catalog["versions"][0]["eventTypes"]
    except (KeyError, IndexError, TypeError) as err:
        raise ValueError("not an event-type catalog: expected versions[0].eventTypes") from err
    entries: list[dict[str, Any]] = []
    for item in types:
        if item.get("internal"):
            continue
        schema = item.get("schema") or {}
        entries.append(
            {
                "id": str(item["id"]),
                "category": str(item.get("category") or ""),
                "targets": [str(t) for t in schema.get("targets") or []],
            }
        )
    entries.sort(key=lambda e: str(e["id"]))
    return entries


def render(entries: Sequence[dict[str, Any]]) -> bytes:
    """Serialize entries as a JSON array with one entry per line (small, diff-friendly)."""
    lines = b",\n".join(orjson.dumps(e) for e in entries)
    return b"[\n" + lines + b"\n]\n"


def rebuild(catalog_path: Path, out: Path = DATA_FILE) -> int:
    """Rewrite ``out`` from the catalog at ``catalog_path``; return the number of types."""
    entries = compact(orjson.loads(catalog_path.read_bytes()))
    out.write_bytes(render(entries))
    return len(entries)


@functools.cache
def event_types() -> tuple[EventType, ...]:
    """The shipped public event types, loaded once."""
    raw = resources.files("ingest.simulate").joinpath("data/event_types.json").read_bytes()
    return tuple(
        EventType(id=e["id"], category=e["category"], targets=tuple(e["targets"]))
        for e in orjson.loads(raw)
    )


@functools.cache
def by_id() -> dict[str, EventType]:
    """The shipped event types keyed by id."""
    return {t.id: t for t in event_types()}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m ingest.simulate.event_types CATALOG [OUT]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 2):
        usage = "usage: python -m ingest.simulate.event_types CATALOG.json [OUT.json]"
        print(usage, file=sys.stderr)
        return 2
    out = Path(args[1]) if len(args) == 2 else DATA_FILE
    count = rebuild(Path(args[0]), out)
    print(f"wrote {count} event types to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build the event-type -> category lookup table from Okta's event-type catalog.

    python -m ingest.mapping.categories CATALOG_PATH OUT

reads the catalog (``versions[].eventTypes[]`` with ``id`` and ``category``) and writes a JSON
object ``{"user.session.start": "passwordless", ...}``, sorted by event type, one entry a line.
When the catalog holds several versions, the first one that lists a type decides its category.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from ingest.base.errors import MappingError


def categories(catalog: Mapping[str, Any]) -> dict[str, str]:
    """event type id -> category id, sorted by event type."""
    versions = catalog.get("versions")
    if not isinstance(versions, list) or not versions:
        raise MappingError("the catalog has no versions[] list")
    found: dict[str, str] = {}
    for version in versions:
        types = version.get("eventTypes") if isinstance(version, dict) else None
        if not isinstance(types, list):
            raise MappingError("a catalog version has no eventTypes[] list")
        for entry in types:
            if not isinstance(entry, dict):
                continue
            type_id, category = entry.get("id"), entry.get("category")
            if isinstance(type_id, str) and isinstance(category, str) and category:
                found.setdefault(type_id, category)
    return dict(sorted(found.items()))


def render(table: Mapping[str, str]) -> bytes:
    """The lookup file's bytes: one entry a line, so that catalog updates diff well."""
    lines = [
        f"  {orjson.dumps(key).decode()}: {orjson.dumps(value).decode()}"
        for key, value in table.items()
    ]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def build(catalog_path: Path, out: Path) -> int:
    """Write the lookup file for ``catalog_path`` to ``out``; return the number of types."""
    try:
        catalog = orjson.loads(catalog_path.read_bytes())
    except OSError as err:
        raise MappingError(f"cannot read {catalog_path}: {err.strerror or err}") from None
    except orjson.JSONDecodeError as err:
        raise MappingError(f"{catalog_path} is not valid JSON: {err}") from None
    if not isinstance(catalog, dict):
        raise MappingError(f"{catalog_path}: the catalog must be a JSON object")
    table = categories(catalog)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(render(table))
    except OSError as err:
        raise MappingError(f"cannot write {out}: {err.strerror or err}") from None
    return len(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.mapping.categories",
        description="Build the event type -> category lookup from Okta's event-type catalog.",
    )
    parser.add_argument("catalog", type=Path, help="the catalog JSON (event-types.json)")
    parser.add_argument("out", type=Path, help="the lookup file to write (JSON)")
    args = parser.parse_args(argv)
    try:
        count = build(args.catalog, args.out)
    except MappingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {count} event types to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

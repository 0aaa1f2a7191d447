"""The facts of Okta's event-type catalog the tests check the shipped tables against.

``tests/catalog/event-types.json`` is Okta's catalog (``shared/okta/event-types.json`` beside
the project's checkout, 2.4 MB) cut down to what the builders read: per event type its ``id``,
``category``, ``beta``, ``internal`` and ``schema.targets``. It is kept with the tests so that
they run wherever the checkout sits. When Okta publishes a new catalog, rebuild it with

    .venv/bin/python -m tests.helpers.catalog PATH/TO/event-types.json

then rebuild the shipped tables from it (README: "Event-type catalog").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import REPO

CATALOG = REPO / "tests" / "catalog" / "event-types.json"

_KEPT = ("id", "category", "beta", "internal")


def reduce(catalog: dict[str, Any]) -> dict[str, Any]:
    """The catalog with only the keys the builders and the simulator's ``compact`` read."""
    versions = []
    for version in catalog["versions"]:
        types = []
        for entry in version["eventTypes"]:
            kept = {key: entry[key] for key in _KEPT if key in entry}
            schema = entry.get("schema")
            if isinstance(schema, dict) and "targets" in schema:
                kept["schema"] = {"targets": schema["targets"]}
            types.append(kept)
        versions.append({"version": version.get("version"), "eventTypes": types})
    return {"release": catalog.get("release"), "versions": versions}


def render(catalog: dict[str, Any]) -> bytes:
    """One event type a line, so that a new catalog diffs well."""
    lines = []
    for version in catalog["versions"]:
        head = orjson.dumps({"version": version["version"]}).decode()[:-1]
        body = ",\n".join(orjson.dumps(entry).decode() for entry in version["eventTypes"])
        lines.append(f'{head},"eventTypes":[\n{body}\n]}}')
    release = orjson.dumps(catalog["release"]).decode()
    return f'{{"release":{release},"versions":[\n'.encode() + ",\n".join(lines).encode() + b"\n]}\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tests.helpers.catalog PATH/TO/event-types.json", file=sys.stderr)
        return 2
    CATALOG.parent.mkdir(parents=True, exist_ok=True)
    CATALOG.write_bytes(render(reduce(orjson.loads(Path(args[0]).read_bytes()))))
    print(f"wrote {CATALOG.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

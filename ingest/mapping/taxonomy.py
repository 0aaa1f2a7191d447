"""Build the ECS and OCSF lookup tables from Okta's event-type catalog, and report coverage.

    python -m ingest.mapping.taxonomy CATALOG OUTDIR

reads the catalog (``versions[].eventTypes[]``) and (re)writes two tables in OUTDIR:

- ``ecs_event_types.json``: event type -> ``{"category": [...], "type": [...], "kind": ...}``
- ``ocsf_event_types.json``: event type -> ``{"class_uid", "class_name", "category_uid",
  "category_name", "activity_id", "activity_name", "type_uid", "type_name"[, "is_mfa"]}``

Every event type of the catalog gets an entry (public, beta and internal alike: events of all
of them reach the System Log). The rules are in ``ingest.mapping.classify``; event types that no
rule recognises get the fallback (ECS ``iam``/``info``, OCSF 6003 API Activity), the same values
the mapping files use as defaults for event types the catalog does not list.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from ingest.base.errors import MappingError
from ingest.mapping.classify import classify_ecs, classify_ocsf

ECS_TABLE = "ecs_event_types.json"
OCSF_TABLE = "ocsf_event_types.json"
DEFAULT_CATALOG = Path(__file__).resolve().parents[3] / "shared" / "okta" / "event-types.json"


def catalog_entries(catalog: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every event type entry of the catalog, the first version that lists an id winning."""
    versions = catalog.get("versions")
    if not isinstance(versions, list) or not versions:
        raise MappingError("the catalog has no versions[] list")
    found: dict[str, dict[str, Any]] = {}
    for version in versions:
        types = version.get("eventTypes") if isinstance(version, dict) else None
        if not isinstance(types, list):
            raise MappingError("a catalog version has no eventTypes[] list")
        for entry in types:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
                found.setdefault(entry["id"], entry)
    return [found[key] for key in sorted(found)]


def is_public(entry: Mapping[str, Any]) -> bool:
    """Public: neither internal nor beta (1,178 of the 1,274 types of release 2026.08.1)."""
    return entry.get("internal") is False and entry.get("beta") is not True


def ecs_table(entries: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """event type -> its ECS categorization."""
    table: dict[str, dict[str, Any]] = {}
    for entry in entries:
        result = classify_ecs(entry["id"])
        table[entry["id"]] = {
            "category": list(result.category),
            "type": list(result.type),
            "kind": result.kind,
        }
    return table


def ocsf_table(entries: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """event type -> its OCSF class, activity and the ids and captions derived from them."""
    return {entry["id"]: classify_ocsf(entry["id"]).entry() for entry in entries}


def render(table: Mapping[str, Any]) -> bytes:
    """The table's bytes: one event type a line, sorted, so that catalog updates diff well."""
    lines = [
        f"  {orjson.dumps(key).decode()}: {orjson.dumps(value).decode()}"
        for key, value in sorted(table.items())
    ]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def read_catalog(path: Path) -> dict[str, Any]:
    try:
        catalog = orjson.loads(Path(path).read_bytes())
    except OSError as err:
        raise MappingError(f"cannot read {path}: {err.strerror or err}") from None
    except orjson.JSONDecodeError as err:
        raise MappingError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(catalog, dict):
        raise MappingError(f"{path}: the catalog must be a JSON object")
    return catalog


def build(catalog_path: Path, out_dir: Path) -> int:
    """Write both tables for ``catalog_path`` into ``out_dir``; return the number of types."""
    entries = catalog_entries(read_catalog(catalog_path))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / ECS_TABLE).write_bytes(render(ecs_table(entries)))
        (out_dir / OCSF_TABLE).write_bytes(render(ocsf_table(entries)))
    except OSError as err:
        raise MappingError(f"cannot write to {out_dir}: {err.strerror or err}") from None
    return len(entries)


def coverage(catalog: Mapping[str, Any]) -> dict[str, Any]:
    """How many public event types get a specific classification rather than the fallback.

    ``{"public": N, "ecs_specific": n, "ocsf_specific": m, "ecs_rules": Counter,
    "ocsf_classes": Counter, "ecs_fallback": [ids], "ocsf_fallback": [ids]}``.
    """
    public = [entry for entry in catalog_entries(catalog) if is_public(entry)]
    ecs = {entry["id"]: classify_ecs(entry["id"]) for entry in public}
    ocsf = {entry["id"]: classify_ocsf(entry["id"]) for entry in public}
    return {
        "public": len(public),
        "ecs_specific": sum(result.specific for result in ecs.values()),
        "ocsf_specific": sum(result.specific for result in ocsf.values()),
        "ecs_rules": Counter(result.rule for result in ecs.values()),
        "ocsf_classes": Counter(result.class_uid for result in ocsf.values()),
        "ecs_fallback": sorted(key for key, result in ecs.items() if not result.specific),
        "ocsf_fallback": sorted(key for key, result in ocsf.items() if not result.specific),
    }


def catalog_coverage(catalog_path: str | Path | None = None) -> list[dict[str, Any]]:
    """Coverage of the catalog's public event types, one row per mapping (ecs, ocsf).

    Each row: ``mapping``, ``public_types``, ``specific`` (a category or class chosen by a
    rule), ``fallback`` and ``share`` (specific / public, as text). Without a path, the catalog
    next to the checkout (``shared/okta/event-types.json``) is read.
    """
    figures = coverage(read_catalog(Path(catalog_path or DEFAULT_CATALOG)))
    total = figures["public"]
    rows = []
    for name in ("ecs", "ocsf"):
        specific = figures[f"{name}_specific"]
        rows.append(
            {
                "mapping": name,
                "public_types": total,
                "specific": specific,
                "fallback": total - specific,
                "share": f"{100 * specific / max(total, 1):.1f}%",
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.mapping.taxonomy",
        description="Build the ECS and OCSF event-type lookups from Okta's event-type catalog.",
    )
    parser.add_argument("catalog", type=Path, help="the catalog JSON (event-types.json)")
    parser.add_argument("out_dir", type=Path, help="the lookups folder to write the tables to")
    args = parser.parse_args(argv)
    try:
        count = build(args.catalog, args.out_dir)
        rows = catalog_coverage(args.catalog)
    except MappingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {count} event types to {args.out_dir / ECS_TABLE} and {OCSF_TABLE}")
    for row in rows:
        print(
            f"{row['mapping']}: {row['specific']} of {row['public_types']} public event types "
            f"classified by a specific rule ({row['share']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The commands about mapping files: ``map``, ``mappings check``, ``mappings coverage`` and
``remap``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from ingest.base.clock import SystemClock
from ingest.base.tablewriter import write_rows
from ingest.cli.commands.common import _mapping_file, _open_reader, _store_target
from ingest.store.db import DEFAULT_DB


def cmd_map(args: argparse.Namespace) -> int:
    from ingest.mapping import load_mapping
    from ingest.mapping.render import map_stream

    mapping = load_mapping(args.mapping or _mapping_file(args.format))
    counts = map_stream(mapping, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
    sys.stdout.flush()
    print(
        f"oktaduck map: {counts.mapped} mapped, {counts.rejected} rejected, "
        f"{counts.unreadable} unreadable",
        file=sys.stderr,
    )
    return 1 if args.strict and (counts.rejected or counts.unreadable) else 0


def cmd_mappings_check(args: argparse.Namespace) -> int:
    from ingest.mapping import check_all, default_mapping_dir, load_mapping

    directory = args.dir or default_mapping_dir()
    problems = check_all(directory)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"oktaduck: {len(problems)} problem(s) in {directory}", file=sys.stderr)
        return 1
    rows = []
    for path in sorted(directory.rglob("*.toml")):
        mapping = load_mapping(path)
        rows.append(
            (
                str(path.relative_to(directory)),
                mapping.name,
                mapping.output,
                len(mapping.columns),
                mapping.version,
            )
        )
    write_rows(["file", "mapping", "output", "fields", "version"], rows, "table")
    return 0


def cmd_mappings_coverage(args: argparse.Namespace) -> int:
    from ingest.mapping import default_mapping_dir, load_mapping
    from ingest.mapping.reads import paths_read, unread_fields

    directory = default_mapping_dir()
    mappings = [load_mapping(p) for p in sorted((directory / "okta").glob("*.toml"))]
    _catalog_coverage(args, directory)
    if args.db is None and args.store is None and not DEFAULT_DB.exists():
        return 0
    read = set().union(*(paths_read(m) for m in mappings))
    con = _open_reader(_store_target(args))
    try:
        total = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        cur = con.execute(
            "SELECT raw FROM events ORDER BY ingest_seq DESC LIMIT $n", {"n": args.sample}
        )

        def events() -> Iterator[object]:
            while batch := cur.fetchmany(2000):
                for (raw,) in batch:
                    yield orjson.loads(raw)

        counts = unread_fields(events(), read)
    finally:
        con.close()
    sampled = min(total, args.sample)
    print(f"\nRaw fields no mapping reads ({sampled} most recent of {total} stored events):")
    rows = [(path, n, f"{100 * n / max(sampled, 1):.1f}%") for path, n in counts.most_common()]
    write_rows(["raw field", "events", "share"], rows, "table")
    return 0


def _catalog_coverage(args: argparse.Namespace, directory: Path) -> None:
    try:
        from ingest.mapping.taxonomy import DEFAULT_CATALOG, catalog_coverage
    except ImportError:  # pragma: no cover - the taxonomy module ships with the ECS/OCSF files
        return
    if not args.catalog and not DEFAULT_CATALOG.is_file():
        # An installed copy carries no catalog (2.4 MB); a checkout reads the one beside it.
        print("(for the catalog's coverage, pass --catalog PATH/TO/event-types.json)")
        return
    report = catalog_coverage(args.catalog) if args.catalog else catalog_coverage()
    print("Event types of the catalog with a specific classification:")
    write_rows(list(report[0]), [tuple(r.values()) for r in report], "table")


def cmd_remap(args: argparse.Namespace) -> int:
    from ingest.collect.pagemap import ProcessMapper
    from ingest.mapping import load_mapping
    from ingest.store.db import Store
    from ingest.store.remap import RemapProgress, pending, remap

    mapping = load_mapping(args.mapping or _mapping_file("normalized"))
    with Store(_store_target(args), mapping) as store:
        events, rejects = pending(store)
        print(
            f"mapping {mapping.name} version {mapping.version}: {events} events and "
            f"{rejects} rejected events were mapped by another version"
        )

        def progress(state: RemapProgress) -> None:
            done = state.remapped + state.moved_to_rejects
            retried = state.rejects_resolved + state.rejects_still_failing
            print(
                f"  events {done}/{state.total_events}, rejects {retried}/{state.total_rejects}",
                file=sys.stderr,
                flush=True,
            )

        with contextlib.ExitStack() as stack:
            # more than a batch: mapped by the poll's mapping processes, the next batches
            # while this one is written
            mappers = [
                stack.enter_context(ProcessMapper(mapping))
                for _ in range(args.mappers if events > args.batch else 0)
            ]
            final = remap(
                store,
                SystemClock(),
                batch_size=args.batch,
                progress=progress,
                mapper=mappers or None,
            )
    print(
        f"remapped {final.remapped} events, {final.moved_to_rejects} now rejected; "
        f"{final.rejects_resolved} rejected events now stored, "
        f"{final.rejects_still_failing} still rejected"
    )
    return 0

"""``oktaduck import``: archives of Okta events into the store."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys

from ingest.base.clock import SystemClock
from ingest.base.errors import ConfigError
from ingest.cli.commands.common import _store_target
from ingest.config import load_config
from ingest.store.db import INGEST_THREADS
from ingest.store.lake import LakeConfig

# DuckDB's memory for an import: at 64MB 50k events imported as fast as at 128MB or 256MB
# (in transactions of 2000 events then), and the processes peaked at 287MB (412MB at 256MB)
IMPORT_MEMORY_LIMIT = "64MB"


def cmd_import(args: argparse.Namespace) -> int:
    import threading

    from ingest.collect.importer import ImportOptions, Totals, run_import
    from ingest.collect.pagemap import start_mappers
    from ingest.collect.progress import ProgressLine
    from ingest.mapping import load_mapping
    from ingest.store.db import Store

    config = load_config(args.config) if args.config is not None else None
    if config is not None:
        mapping_path = config.mapping_path()
    else:
        from ingest.config import normalized_mapping_path

        mapping_path = normalized_mapping_path()
    memory = (config.storage.memory_limit if config else None) or IMPORT_MEMORY_LIMIT
    if not args.source.strip() or args.source != args.source.strip():
        raise ConfigError(f"--source: {args.source!r} is not a name (empty, or spaces around)")
    options = ImportOptions(
        source=args.source,
        unwrap=args.unwrap,
        batch=args.batch,
        max_event_bytes=args.max_event_bytes,
        again=args.again,
    )
    if options.unwrap != "auto":
        from ingest.collect.archive import Unwrap

        Unwrap(options.unwrap)  # a wrong one is refused before the store is opened
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # the batch in hand is committed first
        signal.signal(signum, lambda *_: stop.set())
    line = ProgressLine(sys.stderr)  # on a terminal only

    def progress(totals: Totals) -> None:
        line.show(
            f"import: {totals.files} files, {totals.events} events, {totals.stored} stored, "
            f"{totals.duplicates} duplicates, {totals.rejected} rejected, "
            f"{totals.rate:.0f} events/s, {totals.current}"
        )

    mapping = load_mapping(mapping_path)
    target = _store_target(args)
    if args.data is not None:
        if not isinstance(target, LakeConfig):
            raise ConfigError("--data is the data path of a lake; give the lake with --store")
        target = dataclasses.replace(target, data=args.data)
    with (
        Store(target, mapping, memory, INGEST_THREADS, serves_queries=False) as store,
        contextlib.ExitStack() as stack,
    ):
        mapper = start_mappers(stack, mapping, args.mappers)
        try:
            totals = run_import(store, mapper, args.paths, options, SystemClock(), stop, progress)
        finally:
            line.clear()
    for error in totals.errors:
        print(f"oktaduck: import: {error}", file=sys.stderr)
    print(totals.summary())
    if stop.is_set():
        return 130
    return 1 if totals.failed else 0

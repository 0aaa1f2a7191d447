"""``oktaduck store copy``: move a store between a DuckDB file and a lake."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ingest.base.errors import ConfigError
from ingest.config import load_config
from ingest.store.db import StoreTarget
from ingest.store.lake import LakeConfig, parse_store_spec


def _store(text: str | None, config: StoreTarget | None, data: str | None) -> StoreTarget:
    """``--from``/``--to``: a SPEC, or, when left out, the config file's store. A lake named
    by the catalog the config file names too is the config's, with its secrets."""
    if text is None:
        if config is None:
            raise ConfigError("give --from and --to, or --config for the side left out")
        return config
    spec = parse_store_spec(text)
    if isinstance(spec, Path):
        return spec
    if isinstance(config, LakeConfig) and config.catalog == spec:
        return config
    return LakeConfig(catalog=spec, data=data)


def cmd_store_copy(args: argparse.Namespace) -> int:
    from ingest.collect.progress import ProgressLine
    from ingest.mapping import load_mapping
    from ingest.store.copy import CopyProgress, copy_store

    config = load_config(args.config) if args.config is not None else None
    configured = config.storage.target() if config is not None else None
    source = _store(args.source, configured, args.data)
    target = _store(args.target, configured, args.data)
    mapping = load_mapping(config.mapping_path() if config else _default_mapping())
    line = ProgressLine(sys.stderr)

    def progress(state: CopyProgress) -> None:
        share = state.copied / state.total if state.total else 1.0
        line.show(f"copied {state.copied}/{state.total} events ({share:.0%})")

    try:
        result = copy_store(source, target, mapping, batch=args.batch, progress=progress)
    finally:
        line.clear()
    counts = result.counts
    print(
        f"copied {result.copied} events in {result.batches} batches "
        f"({result.events - result.copied} were there from an earlier run) "
        f"in {result.seconds:.1f}s; verified: {result.events} events over {result.days} days "
        f"(uuids and raw per day), {counts['cursors']} cursors, {counts['rejects']} rejects, "
        f"{counts['conflicts']} conflicts, {counts['export_cursors']} export cursors, "
        f"{counts.get('imports', 0)} imported files"
    )
    return 0


def _default_mapping() -> Path:
    from ingest.config import normalized_mapping_path

    return normalized_mapping_path()

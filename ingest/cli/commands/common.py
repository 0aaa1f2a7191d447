"""What several commands share: which database file a command reads, which mapping file a
name means."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingest.config import (
    load_config,
)
from ingest.store.db import DEFAULT_DB


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    if getattr(args, "config", None) is not None:
        return load_config(args.config).storage.path
    return DEFAULT_DB


def _mapping_file(name: str) -> Path:
    """``normalized``/``ecs``/``ocsf`` -> the shipped file; anything with a slash or ``.toml``
    is taken as a path."""
    from ingest.mapping import default_mapping_dir

    if "/" in name or name.endswith(".toml"):
        return Path(name)
    return default_mapping_dir() / "okta" / f"{name}.toml"

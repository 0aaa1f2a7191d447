"""What several commands share: which store a command reads (a DuckDB file or a lake), which
mapping file a name means."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import duckdb

from ingest.base.errors import ConfigError
from ingest.config import (
    load_config,
)
from ingest.store.db import DEFAULT_DB, StoreTarget
from ingest.store.lake import LakeConfig, parse_store_spec, translate_lake


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    if getattr(args, "config", None) is not None:
        return load_config(args.config).storage.path
    return DEFAULT_DB


def _store_target(args: argparse.Namespace) -> StoreTarget:
    """The store a command works on: ``--store SPEC`` (a DuckDB file, or a lake's catalog),
    ``--db FILE``, the store of ``--config`` (its lake when it has one), else the default file.

    A lake named by ``--store`` alone is read with no secrets of ours: PostgreSQL's libpq then
    finds the password itself (``PGPASSWORD``, ``~/.pgpass``). With ``--config`` as well, its
    lake's password and S3 settings are used for it."""
    spec = getattr(args, "store", None)
    if spec is not None and getattr(args, "db", None) is not None:
        raise ConfigError("give --store or --db, not both")
    config = load_config(args.config) if getattr(args, "config", None) is not None else None
    if spec is not None:
        found = parse_store_spec(spec)
        if isinstance(found, Path):
            return found
        configured = config.storage.lake if config is not None else None
        if configured is None:
            return LakeConfig(catalog=found)
        data = configured.data if configured.catalog == found else None
        return dataclasses.replace(configured, catalog=found, data=data)
    if getattr(args, "db", None) is not None:
        return Path(args.db)
    if config is not None:
        return config.storage.lake or config.storage.path
    return DEFAULT_DB


def _open_reader(target: StoreTarget) -> duckdb.DuckDBPyConnection:
    """The store opened for reading only (a lake attached READ_ONLY, no daemon needed)."""
    from ingest.store.query import open_read_only

    return open_read_only(target)


def _describe_store(target: StoreTarget, con: duckdb.DuckDBPyConnection | None) -> str:
    """``database PATH``, or ``lake CATALOG (data PATH): N data files, SIZE, N snapshots``."""
    from ingest.store.lakeinfo import lake_summary

    if not isinstance(target, LakeConfig) or con is None:
        return f"database {target}"
    summary = lake_summary(con)
    where = target.data or summary.data_path
    lake = dataclasses.replace(target, data=where)
    return (
        f"{lake.describe()}: {summary.files} data files, {_size(summary.bytes)}, "
        f"{summary.snapshots} snapshots"
    )


def _reach_lake(lake: LakeConfig) -> str:
    """Attach ``lake`` read-only as a reader would: what it holds, or the StoreError."""
    con = _open_reader(lake)
    try:
        return f"reached {_describe_store(lake, con)}"
    except duckdb.Error as err:
        raise translate_lake(err, lake) from None
    finally:
        con.close()


def _size(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} bytes"  # pragma: no cover - the loop returns


def _mapping_file(name: str) -> Path:
    """``normalized``/``ecs``/``ocsf`` -> the shipped file; anything with a slash or ``.toml``
    is taken as a path."""
    from ingest.mapping import default_mapping_dir

    if "/" in name or name.endswith(".toml"):
        return Path(name)
    return default_mapping_dir() / "okta" / f"{name}.toml"

"""The commands that read the store: ``sql``, ``status``, ``feed`` and ``export``. Each
reads a DuckDB file itself, or asks the daemon's API when the daemon holds the file; the
output is the same either way. A lake needs no daemon: it is attached read-only while daemons
write to it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import duckdb
import orjson

from ingest.base.clock import SystemClock
from ingest.base.errors import ConfigError, DatabaseLocked
from ingest.base.tablewriter import default_format, write_rows
from ingest.base.timeparse import parse_duration, parse_time
from ingest.cli.commands.common import (
    _describe_store,
    _mapping_file,
    _open_reader,
    _store_target,
)
from ingest.config import (
    load_config,
)
from ingest.store.lake import LakeConfig
from ingest.store.limits import QueryLimits
from ingest.store.query import Cancel, Result


def _query(
    args: argparse.Namespace,
    local: Callable[[duckdb.DuckDBPyConnection, QueryLimits, Cancel], Result],
    remote_path: str,
    *,
    params: dict[str, str] | None = None,
    body: str | None = None,
    reader: duckdb.DuckDBPyConnection | None = None,
) -> int:
    """Run a read-only query on the store: a lake or a database file itself, or through the
    daemon's API when the daemon holds the file; the output is the same either way. With
    ``reader``, on that open store (left open)."""
    from ingest.service.apiclient import fetch, find_api
    from ingest.store.query import cancelled_by_ctrl_c

    db = _store_target(args)
    fmt = args.format or default_format(sys.stdout)
    limits = _limits(args)
    try:
        con = reader or _open_reader(db)
    except DatabaseLocked as locked:
        if isinstance(db, LakeConfig):
            raise
        remote = {**(params or {}), "format": fmt}
        if getattr(args, "timeout", None) is not None:
            remote["timeout"] = f"{limits.timeout}s"  # the daemon's own limit still caps it
        fetch(find_api(db, locked), remote_path, params=remote, body=body)
        return 0
    cancel = Cancel()
    try:
        with cancelled_by_ctrl_c(cancel):
            result = local(con, limits, cancel)
            try:
                write_rows(result.columns, result.rows, fmt, json_columns=result.json_columns)
            finally:
                result.close()
    finally:
        if reader is None:
            con.close()
    return 0


def _limits(args: argparse.Namespace) -> QueryLimits:
    """``--timeout``, else ``[query]`` of ``--config``, else the defaults."""
    if getattr(args, "timeout", None) is not None:
        seconds = parse_duration(args.timeout, "--timeout").total_seconds()
        if seconds <= 0:
            raise ConfigError("--timeout: must be longer than 0s")
        return QueryLimits(timeout=seconds)
    if getattr(args, "config", None) is not None:
        return load_config(args.config).query
    return QueryLimits()


def cmd_sql(args: argparse.Namespace) -> int:
    from ingest.store.query import run_user_query

    return _query(
        args,
        lambda con, limits, cancel: run_user_query(con, args.query, limits, cancel=cancel),
        "/api/sql",
        body=args.query,
    )


def cmd_status(args: argparse.Namespace) -> int:
    from ingest.store.query import sink_status, status

    table = (args.format or default_format(sys.stdout)) == "table"
    target = _store_target(args)
    lake = _open_reader(target) if isinstance(target, LakeConfig) else None  # attached once
    try:
        if table:
            print(f"store: {_describe_store(target, lake)}\n")
        code = _query(
            args,
            lambda con, limits, cancel: status(con, SystemClock().now(), limits, cancel=cancel),
            "/api/status",
            reader=lake,
        )
        if table:
            print("\nsinks:")
            code = _query(
                args,
                lambda con, limits, cancel: sink_status(
                    con, SystemClock().now(), limits, cancel=cancel
                ),
                "/api/sinks",
                reader=lake,
            )
        if table and lake is not None:
            print("\nleases:")
            _print_leases(lake)
    finally:
        if lake is not None:
            lake.close()
    return code


def _print_leases(reader: duckdb.DuckDBPyConnection) -> None:
    """Which daemon holds each source, sink and the housekeeping of a lake, and until when
    (the daemon's ``/api/leases``, read from the catalog)."""
    from ingest.store.lake import open_cursor
    from ingest.store.lakeschema import list_leases

    now = SystemClock().now()
    cursor = open_cursor(reader)
    try:
        leases = list_leases(cursor)
    finally:
        cursor.close()
    rows = [
        (lease.kind, lease.key, lease.owner, lease.expires_at, lease.expires_at > now)
        for lease in leases
    ]
    write_rows(["kind", "key", "owner", "until", "held"], rows, "table")


def cmd_export(args: argparse.Namespace) -> int:
    from ingest.export.deliver import export_cycle
    from ingest.export.oneoff import Selection, deliver_all, destination, select_lines
    from ingest.mapping import load_mapping
    from ingest.service.apiclient import find_api, stream_lines
    from ingest.store.db import Store

    if bool(args.to) == bool(args.sink):
        raise ConfigError("give --to DESTINATION for a one-off export, or --sink NAME")
    clock = SystemClock()
    config = load_config(args.config) if args.config else None
    spec = None
    if args.sink:
        if config is None:
            raise ConfigError("--sink needs --config FILE")
        spec = config.sink(args.sink)
    db = _store_target(args)
    mapping = load_mapping(config.mapping_path() if config else _mapping_file("normalized"))
    if spec is not None and args.since is None and args.until is None:
        # regular delivery: what the sink has not received yet, moving its cursor
        sink = spec.build(clock)
        try:
            with Store(db, mapping) as store:
                result = export_cycle(spec.delivery, store, sink, clock)
        finally:
            sink.close()  # publishes a file sink's current file
        print(
            f"{spec.name}: {result.delivered} events delivered in {result.batches} batches"
            + ("" if result.error is None else f"; stopped: {result.error}")
        )
        return 0 if result.error is None else 1
    now = clock.now()
    fmt = args.format or (spec.delivery.format if spec else "raw")
    fields = spec.delivery.fields if spec else None
    selection = Selection(
        format=fmt,
        since=parse_time(args.since or "7d", now, "--since"),
        until=parse_time(args.until or "now", now, "--until"),
        filter=args.filter,
        q=args.q,
        fields=fields,
    )
    sink = spec.build(clock) if spec else destination(args.to, clock)
    try:
        con = _open_reader(db)
    except DatabaseLocked as locked:
        if isinstance(db, LakeConfig):
            raise
        params = {
            "format": fmt,
            "since": selection.since.isoformat(),
            "until": selection.until.isoformat(),
        }
        params.update({k: v for k, v in (("filter", args.filter), ("q", args.q)) if v})
        if fields:
            params["fields"] = orjson.dumps(fields).decode()
        sent = deliver_all(stream_lines(find_api(db, locked), "/api/export", params), sink)
    else:
        try:
            sent = deliver_all(select_lines(con, selection, mapping), sink)
        finally:
            con.close()
    print(
        f"exported {sent} events ({fmt}) to {args.to or spec.name if spec else args.to}",
        file=sys.stderr,
    )
    return 0


def cmd_feed(args: argparse.Namespace) -> int:
    from ingest.feeds.feedfile import get_feed, load_feeds
    from ingest.feeds.run import run_feed

    if not args.name:
        rows = [
            (f.name, f.title, ", ".join(p.name for p in f.params)) for f in load_feeds().values()
        ]
        write_rows(["feed", "title", "parameters"], rows, args.format or "table")
        print(
            "\nEvery feed also takes --since --until --sort --limit --source. "
            "`oktaduck feed NAME --help-params` describes one."
        )
        return 0
    feed = get_feed(args.name)
    if args.help_params:
        print(f"{feed.title}\n\n{feed.description}\n")
        params = [(p.name, p.type, p.default or "", p.doc) for p in feed.all_params]
        write_rows(["parameter", "type", "default", "description"], params, "table")
        return 0
    given = _feed_params(args.extra)
    for name in ("since", "until", "sort", "limit", "source"):
        if getattr(args, name) is not None:
            given[name] = str(getattr(args, name))
    return _query(
        args,
        lambda con, limits, cancel: run_feed(
            con, feed.name, given, SystemClock().now(), limits, cancel=cancel
        ),
        f"/api/feeds/{feed.name}",
        params=given,
    )


def _feed_params(extra: list[str]) -> dict[str, str]:
    """``--user alice --window=15m`` -> {"user": "alice", "window": "15m"}."""
    given: dict[str, str] = {}
    items = iter(extra)
    for item in items:
        if not item.startswith("--"):
            raise ConfigError(
                f"unexpected argument {item!r}; feed parameters look like --name value"
            )
        key, eq, value = item[2:].partition("=")
        if not eq:
            value = next(items, None)  # type: ignore[assignment]
            if value is None:
                raise ConfigError(f"--{key} needs a value")
        given[key.replace("-", "_")] = value
    return given

"""The ``oktaduck`` command: a thin layer over the modules that do the work."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from ingest import logs
from ingest.clock import SystemClock
from ingest.config import (
    DEFAULT_TOKEN_ENV,
    Config,
    SourceConfig,
    StorageConfig,
    load_config,
    parse_duration,
)
from ingest.errors import ConfigError, OktaduckError
from ingest.okta.urls import OrgURL
from ingest.output import FORMATS, default_format, write_rows
from ingest.store.db import DEFAULT_DB

Handler = Callable[[argparse.Namespace], int]


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: table on a terminal, ndjson otherwise)",
    )


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, help=f"DuckDB file (default: {DEFAULT_DB})")
    p.add_argument("--config", type=Path, help="config file; its storage.path is the database")


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    if getattr(args, "config", None) is not None:
        return load_config(args.config).storage.path
    return DEFAULT_DB


def _config_from_flags(args: argparse.Namespace) -> Config:
    """``poll --org URL``: a one-source config from flags; the token from the environment."""
    org = OrgURL.parse(args.org)
    name = args.source or (org.host if org.port is None else f"{org.host}:{org.port}")
    lookback = parse_duration(args.lookback, "--lookback")
    source = SourceConfig(
        name=name,
        org=org,
        token_env=args.token_env,
        lookback=lookback,
        page_limit=args.page_limit,
    )
    return Config(sources=(source,), storage=StorageConfig(path=args.db or DEFAULT_DB))


def cmd_poll(args: argparse.Namespace) -> int:
    from ingest.mapping import load_mapping
    from ingest.okta.session import open_client
    from ingest.poll import poll_cycle
    from ingest.store.db import Store

    if bool(args.org) == bool(args.config):
        raise ConfigError("give either --org URL or --config FILE")
    config = _config_from_flags(args) if args.org else load_config(args.config)
    if args.db is not None:
        config = Config(config.sources, StorageConfig(args.db), config.mapping)
    sources = config.sources
    if args.config and args.source:
        sources = (config.source(args.source),)
    for source in sources:
        source.token()  # fail before touching the database when a token is missing
    stop = threading.Event()
    _stop_on_signals(stop)
    clock = SystemClock()
    failed = 0
    with Store(config.storage.path, load_mapping(config.mapping_path())) as store:
        for source in sources:
            client = open_client(source, clock, stop)
            try:
                result = poll_cycle(source, store, client, clock, stop)
            except OktaduckError as err:
                failed += 1
                print(f"oktaduck: {source.name}: {err}", file=sys.stderr)
                if len(sources) == 1:
                    return err.exit_code
                continue
            finally:
                client.http.close()
            print(result.summary())
            if result.stopped:
                return 130
    return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    from ingest import daemon

    config = load_config(args.config)
    if args.db is not None:
        config = Config(config.sources, StorageConfig(args.db), config.mapping)
    return daemon.run(config)


def cmd_sql(args: argparse.Namespace) -> int:
    from ingest.store.query import open_read_only, run_query

    con = open_read_only(_db_path(args))
    try:
        result = run_query(con, args.query)
        fmt = args.format or default_format(sys.stdout)
        write_rows(result.columns, result.rows, fmt, json_columns=result.json_columns)
    finally:
        con.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ingest.store.query import open_read_only, status

    con = open_read_only(_db_path(args))
    try:
        result = status(con, SystemClock().now())
        fmt = args.format or default_format(sys.stdout)
        count = write_rows(result.columns, result.rows, fmt, json_columns=result.json_columns)
        if count == 0 and fmt == "table":
            print("no source has been polled into this database yet")
    finally:
        con.close()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from ingest.simulate import server

    return server.run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest import demo

    return demo.run(args.db, events=args.events)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oktaduck",
        description="Keep a complete, exact copy of Okta System Logs in DuckDB.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("OKTADUCK_LOG_LEVEL", "warning"),
        choices=["debug", "info", "warning", "error"],
        help="structured JSON logs on stderr at this level (default: warning; env "
        "OKTADUCK_LOG_LEVEL)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("poll", help="run one poll cycle: fetch until caught up, then exit")
    p.add_argument("--org", help="org URL, e.g. https://acme.okta.com (no config file needed)")
    p.add_argument("--config", type=Path, help="poll every source in this config file")
    p.add_argument("--source", help="with --config: only this source; with --org: its name")
    p.add_argument("--db", type=Path, help=f"DuckDB file (default: {DEFAULT_DB})")
    p.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        help=f"environment variable holding the API token (default: {DEFAULT_TOKEN_ENV})",
    )
    p.add_argument("--lookback", default="24h", help="cold start: how far back (max 90d)")
    p.add_argument("--page-limit", type=int, default=1000, help="events per page (max 1000)")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("run", help="run the daemon: poll every configured source on schedule")
    p.add_argument("--config", type=Path, required=True, help="config file (TOML)")
    p.add_argument("--db", type=Path, help="override the config's storage.path")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sql", help="run a SQL query against the store (read-only)")
    p.add_argument("query", help='SQL, e.g. "SELECT event_type, count(*) FROM events GROUP BY 1"')
    _add_db(p)
    _add_format(p)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("status", help="per source: cursor, events stored, lag, rejects")
    _add_db(p)
    _add_format(p)
    p.set_defaults(func=cmd_status)

    from ingest.simulate import server

    p = sub.add_parser("simulate", help="serve a simulated Okta org on 127.0.0.1")
    server.add_arguments(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("demo", help="ingest from a built-in simulated org and print a summary")
    p.add_argument(
        "--db", type=Path, default=Path("state/demo.duckdb"), help="demo database (recreated)"
    )
    p.add_argument("--events", type=int, default=3000, help="events the simulated org holds")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o077)  # database, WAL and exports: private to the service user
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    handler: Handler = args.func
    try:
        return handler(args)
    except OktaduckError as err:
        print(f"oktaduck: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

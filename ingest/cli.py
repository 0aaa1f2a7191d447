"""The ``oktaduck`` command: a thin layer over the modules that do the work."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType

import duckdb
import orjson

from ingest.base import logs, runtime
from ingest.base.clock import SystemClock
from ingest.base.errors import ConfigError, DatabaseLocked, OktaduckError
from ingest.base.redact import redact
from ingest.base.tablewriter import FORMATS, default_format, write_rows
from ingest.base.timeparse import parse_duration, parse_time
from ingest.collect.settings import DEFAULT_TOKEN_ENV, SourceConfig
from ingest.config import (
    MAX_GROUP_EVENTS,
    MAX_LOOKBACK,
    Config,
    StorageConfig,
    load_config,
)
from ingest.feeds.feedfile import MAX_INT_PARAM
from ingest.okta.urls import OrgURL
from ingest.simulate import options as simulate_options
from ingest.store.db import DEFAULT_DB, INGEST_MEMORY_LIMIT, INGEST_THREADS
from ingest.store.limits import QueryLimits
from ingest.store.query import Cancel, Result

# Each command imports the modules it works with inside its function, not here: a one-shot
# poll then loads neither the daemon, the simulator, JWT and cryptography, nor Arrow
# (tests/test_cli.py holds it to that), and ``--help`` answers at once.
Handler = Callable[[argparse.Namespace], int]
LOG_LEVELS = ("debug", "info", "warning", "error")


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole number from ``low`` to ``high``: anything else
    (a fraction, 10**30, a negative count) is refused in argparse's one usage line."""

    def convert(text: str) -> int:
        value = text.strip()
        digits = value[1:] if value[:1] in "+-" else value
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}")
        if len(digits) > 18 or not low <= int(value) <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value[:40]}")
        return int(value)

    convert.__name__ = "number"  # argparse names the type in its messages
    return convert


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
    if not timedelta(0) < lookback <= MAX_LOOKBACK:
        raise ConfigError("--lookback: must be more than 0 and at most 90d")
    source = SourceConfig(
        name=name,
        org=org,
        token_env=args.token_env,
        lookback=lookback,
        page_limit=args.page_limit,
        group_events=args.group_events,
    )
    return Config(sources=(source,), storage=StorageConfig(path=args.db or DEFAULT_DB))


def _ingest_memory(config: Config) -> str:
    """DuckDB's memory for a one-shot ingest: the configured limit, or the smaller budget of a
    process that serves no queries."""
    return config.storage.memory_limit or INGEST_MEMORY_LIMIT


def cmd_poll(args: argparse.Namespace) -> int:
    from ingest.collect.connect import open_client
    from ingest.collect.pagemap import ProcessMapper
    from ingest.collect.poll import poll_cycle
    from ingest.collect.progress import PollProgress, ProgressLine
    from ingest.mapping import load_mapping
    from ingest.store.db import Store

    if bool(args.org) == bool(args.config):
        raise ConfigError("give either --org URL or --config FILE")
    config = _config_from_flags(args) if args.org else load_config(args.config)
    if args.db is not None:
        config = dataclasses.replace(
            config, storage=dataclasses.replace(config.storage, path=args.db)
        )
    sources = config.sources
    if args.config and args.source:
        sources = (config.source(args.source),)
    for source in sources:
        source.check_credentials()  # fail before touching the database when one is missing
    stop = threading.Event()
    _stop_on_signals(stop)
    clock = SystemClock()
    failed = 0
    mapping = load_mapping(config.mapping_path())
    with (
        Store(
            config.storage.path,
            mapping,
            _ingest_memory(config),
            INGEST_THREADS,
            serves_queries=False,
        ) as store,
        ProcessMapper(mapping) as mapper,
    ):
        for source in sources:
            client = open_client(source, clock, stop)
            line = ProgressLine(sys.stderr)  # on a terminal only
            progress = PollProgress(line, source.name, client.stats)
            try:
                result = poll_cycle(
                    source, store, client, clock, stop, on_page=progress, mapper=mapper
                )
            except OktaduckError as err:
                failed += 1
                line.clear()
                print(f"oktaduck: {source.name}: {err}", file=sys.stderr)
                if len(sources) == 1:
                    return err.exit_code
                continue
            finally:
                line.clear()
                client.http.close()
            print(result.summary())
            if result.stopped:
                return 130
    return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    from ingest.service import daemon

    def load() -> Config:
        config = load_config(args.config)
        if args.db is not None:
            config = dataclasses.replace(
                config, storage=dataclasses.replace(config.storage, path=args.db)
            )
        return config

    return daemon.run(load(), reload=load)


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a config file without the network: keys, values, secrets present, mapping."""
    from ingest.mapping import load_mapping

    config = load_config(args.config)
    mapping = load_mapping(config.mapping_path())
    if mapping.output != "columns":
        raise ConfigError(
            f"{args.config}: mapping: {config.mapping_path()} makes {mapping.output}s; the "
            'events table needs a mapping with output = "columns"'
        )
    problems = []
    for source in config.sources:
        try:
            problems += [f"sources {source.name}: {w}" for w in source.check_credentials()]
        except OktaduckError as err:
            problems.append(f"sources {source.name}: {err}")
    for sink in config.sinks:
        try:
            sink.token()
        except OktaduckError as err:
            problems.append(f"sinks {sink.name}: {err}")
    try:
        config.api.token()
    except OktaduckError as err:
        problems.append(f"api: {err}")
    for line in problems:
        print(f"{args.config}: warning: {line}", file=sys.stderr)
    from ingest.config_check import transport_warnings

    weak = transport_warnings(config)  # settings that weaken transport security
    for line in weak:
        print(f"{args.config}: warning: {line}", file=sys.stderr)
    if (problems and args.require_secrets) or ((problems or weak) and args.strict):
        return 2
    print(
        f"{args.config}: OK ({len(config.sources)} sources, {len(config.sinks)} sinks, "
        f"database {config.storage.path})"
    )
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from ingest.collect.backfill import Progress, backfill
    from ingest.collect.connect import open_client
    from ingest.collect.pagemap import ProcessMapper
    from ingest.collect.progress import ProgressLine
    from ingest.mapping import load_mapping
    from ingest.store.db import Store

    config = load_config(args.config)
    source = config.source(args.source)
    clock = SystemClock()
    since = parse_time(args.since, clock.now(), "--since")
    if clock.now() - since > MAX_LOOKBACK:
        raise ConfigError("--since: Okta keeps 90 days of System Log; use 90d or later")
    stop = threading.Event()
    _stop_on_signals(stop)
    # one line redrawn on a terminal; elsewhere a line per committed group, for the log
    line = ProgressLine(sys.stderr, plain_lines=True)

    def report(p: Progress) -> None:
        eta = f"{p.eta_seconds:.0f}s" if p.eta_seconds is not None else "?"
        at = p.position.strftime("%Y-%m-%d %H:%M") if p.position else "-"
        line.show(
            f"{100 * p.fraction:5.1f}%  at {at}  pages {p.pages}  events {p.fetched} "
            f"(stored {p.stored})  rate-limit waits {p.rate_limit_waits}  ETA {eta}"
        )

    mapping = load_mapping(config.mapping_path())
    db = args.db or config.storage.path
    with (
        Store(db, mapping, _ingest_memory(config), INGEST_THREADS, serves_queries=False) as store,
        ProcessMapper(mapping) as mapper,
    ):
        client = open_client(source, clock, stop)
        try:
            result = backfill(source, store, client, clock, since, report, stop, mapper)
        finally:
            line.clear()
            client.http.close()
    state = "done" if result.caught_up else "stopped early (run it again to continue)"
    print(
        f"{source.name}: backfill ({result.mode}) {state}: {result.pages} pages, "
        f"{result.fetched} events fetched, {result.stored} stored"
    )
    return 0 if result.caught_up else 130


def _query(
    args: argparse.Namespace,
    local: Callable[[duckdb.DuckDBPyConnection, QueryLimits, Cancel], Result],
    remote_path: str,
    *,
    params: dict[str, str] | None = None,
    body: str | None = None,
) -> int:
    """Run a read-only query on the database file, or through the daemon's API when the
    daemon holds the file; the output is the same either way."""
    from ingest.service.apiclient import fetch, find_api
    from ingest.store.query import cancelled_by_ctrl_c, open_read_only

    db = _db_path(args)
    fmt = args.format or default_format(sys.stdout)
    limits = _limits(args)
    try:
        con = open_read_only(db)
    except DatabaseLocked as locked:
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
        con.close()
    return 0


def _add_timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        help="stop the query after this long, e.g. 30s or 5m (default: [query] timeout of "
        "--config, else 60s)",
    )


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

    code = _query(
        args,
        lambda con, limits, cancel: status(con, SystemClock().now(), limits, cancel=cancel),
        "/api/status",
    )
    if (args.format or default_format(sys.stdout)) == "table":
        print("\nsinks:")
        code = _query(
            args,
            lambda con, limits, cancel: sink_status(
                con, SystemClock().now(), limits, cancel=cancel
            ),
            "/api/sinks",
        )
    return code


def cmd_export(args: argparse.Namespace) -> int:
    from ingest.export.deliver import export_cycle
    from ingest.export.oneoff import Selection, deliver_all, destination, select_lines
    from ingest.mapping import load_mapping
    from ingest.service.apiclient import find_api, stream_lines
    from ingest.store.db import Store
    from ingest.store.query import open_read_only

    if bool(args.to) == bool(args.sink):
        raise ConfigError("give --to DESTINATION for a one-off export, or --sink NAME")
    clock = SystemClock()
    config = load_config(args.config) if args.config else None
    spec = None
    if args.sink:
        if config is None:
            raise ConfigError("--sink needs --config FILE")
        spec = config.sink(args.sink)
    db = _db_path(args)
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
        con = open_read_only(db)
    except DatabaseLocked as locked:
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


def cmd_simulate(args: argparse.Namespace) -> int:
    from ingest.simulate import server

    return server.run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest import demo

    return demo.run(args.db, events=args.events)


def _mapping_file(name: str) -> Path:
    """``normalized``/``ecs``/``ocsf`` -> the shipped file; anything with a slash or ``.toml``
    is taken as a path."""
    from ingest.mapping import default_mapping_dir

    if "/" in name or name.endswith(".toml"):
        return Path(name)
    return default_mapping_dir() / "okta" / f"{name}.toml"


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
    from ingest.store.query import open_read_only

    directory = default_mapping_dir()
    mappings = [load_mapping(p) for p in sorted((directory / "okta").glob("*.toml"))]
    _catalog_coverage(args, directory)
    if args.db is None and not DEFAULT_DB.exists():
        return 0
    read = set().union(*(paths_read(m) for m in mappings))
    con = open_read_only(args.db or DEFAULT_DB)
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
    from ingest.mapping import load_mapping
    from ingest.store.db import Store
    from ingest.store.remap import RemapProgress, pending, remap

    mapping = load_mapping(args.mapping or _mapping_file("normalized"))
    with Store(_db_path(args), mapping) as store:
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

        final = remap(store, SystemClock(), batch_size=args.batch, progress=progress)
    print(
        f"remapped {final.remapped} events, {final.moved_to_rejects} now rejected; "
        f"{final.rejects_resolved} rejected events now stored, "
        f"{final.rejects_still_failing} still rejected"
    )
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` as the user documentation. Descriptions and epilogs are paragraphs
    separated by blank lines: a paragraph with an indented line (examples, lists of
    commands) is kept as written, any other is filled to the terminal's width. An option's
    default is added to its help unless the help already says it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            if any(line[:1].isspace() for line in paragraph.splitlines()):
                paragraphs.append("\n".join(indent + line for line in paragraph.splitlines()))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            not action.option_strings
            or "default" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)"


# ``oktaduck --help``: the commands grouped by what they do, in the order a newcomer meets them
COMMAND_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("start here", ("demo",)),
    ("collect", ("poll", "backfill", "run", "config check")),
    ("query", ("sql", "feed", "status")),
    ("export and map", ("export", "map", "remap", "mappings check", "mappings coverage")),
    ("try things out", ("simulate",)),
)


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` is its manual: a one-line ``summary`` (listed under
    its parent), a ``description`` of what it does and the ``examples`` (``# comment`` lines
    and command lines), all shown as written."""
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=HelpFormatter,
    )


def _summaries(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, str]:
    """``{"poll": "...", "config check": "...", ...}``: every subcommand's one-line summary."""
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                nested = _summaries(child, f"{prefix}{name} ")
                found.update(nested or {f"{prefix}{name}": helps.get(name, "")})
    return found


def commands_overview(parser: argparse.ArgumentParser) -> str:
    """The commands grouped by what they do, one line each (``oktaduck --help``, README)."""
    summaries = _summaries(parser)
    width = max(len(name) for name in summaries) + 2
    blocks = []
    for title, names in COMMAND_GROUPS:
        rows = [f"  {name:<{width}}{summaries[name]}" for name in names]
        blocks.append(f"{title}:\n" + "\n".join(rows))
    return "\n\n".join(blocks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oktaduck",
        usage="oktaduck [--log-level LEVEL] COMMAND [options]",
        formatter_class=HelpFormatter,
        description="Keep a complete, exact copy of Okta System Logs in DuckDB, query it with "
        "SQL and named feeds,\nand export it to files, syslog/RELP or HTTP collectors as raw, "
        "normalized, ECS or OCSF events.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("OKTADUCK_LOG_LEVEL", "warning"),
        choices=LOG_LEVELS,
        help="structured JSON logs on stderr at this level (default: warning; env "
        "OKTADUCK_LOG_LEVEL)",
    )
    # the commands are listed, grouped, in the epilog (commands_overview)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS, prog="oktaduck"
    )

    p = _command(
        sub,
        "poll",
        "fetch an org's new events once, until caught up, then exit",
        "Run one poll cycle: follow Okta's System Log `next` links from the stored cursor (the "
        "first time, from --lookback ago) and commit the events to the DuckDB file until the org "
        "has nothing newer, then print a summary and exit. Give either --org, for one org whose "
        "API token is read from the environment variable --token-env names (never from the "
        "command line), or --config, for every source of a config file (or the one --source "
        "names; a failing source does not stop the others). Run it again to continue where it "
        "stopped, with no gap and no duplicate. On a terminal a progress line shows the events, "
        "pages, rate-limit waits, events/s and the newest event stored. Exit status: 0 caught "
        "up, 130 stopped by SIGINT or SIGTERM, non-zero on an error.",
        (
            "# one org; the API token is in OKTA_API_TOKEN",
            "oktaduck poll --org https://acme.okta.com --db state/acme.duckdb",
            "# the first time, a week of history instead of a day",
            "oktaduck poll --org https://acme.okta.com --lookback 7d",
            "# one source of a config file",
            "oktaduck poll --config oktaduck.toml --source acme",
        ),
    )
    p.add_argument("--org", help="org URL, e.g. https://acme.okta.com (no config file needed)")
    p.add_argument("--config", type=Path, help="poll every source of this config file (TOML)")
    p.add_argument(
        "--source",
        help="with --config: only this source; with --org: the name to store its events "
        "under (default: the org's host name)",
    )
    p.add_argument(
        "--db",
        type=Path,
        help=f"DuckDB file (default: the config's storage.path, else {DEFAULT_DB})",
    )
    p.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        help="with --org: the environment variable holding the API token",
    )
    p.add_argument(
        "--lookback",
        default="24h",
        help="with --org, on the first poll of the database: how far back to start, "
        "e.g. 24h or 7d (at most 90d)",
    )
    p.add_argument(
        "--page-limit",
        type=whole(1, 1000),
        default=1000,
        help="with --org: events per request, from 1 to 1000",
    )
    p.add_argument(
        "--group-events",
        type=whole(1, MAX_GROUP_EVENTS),
        default=2000,
        help="with --org: events committed per transaction while catching up",
    )
    p.set_defaults(func=cmd_poll)

    p = _command(
        sub,
        "run",
        "the daemon: poll every source and feed every sink on schedule",
        "Run the daemon: each source of the config file polls on its own schedule, each sink "
        "exports on its own, retention and the completeness check run in the background, and a "
        "local HTTP API serves health, metrics and the queries that `sql`, `feed`, `status` and "
        "`export` send while the daemon holds the database. SIGTERM or SIGINT finish the group "
        "being committed and exit 0; SIGHUP reads the config file again. Run one daemon per "
        "database: a second one is refused. Check the file first with `oktaduck config check`.",
        (
            "oktaduck run --config oktaduck.toml",
            "# the same config, another database file",
            "oktaduck --log-level info run --config oktaduck.toml --db /var/lib/oktaduck/o.duckdb",
        ),
    )
    p.add_argument("--config", type=Path, required=True, help="config file (TOML)")
    p.add_argument("--db", type=Path, help="DuckDB file (default: the config's storage.path)")
    p.set_defaults(func=cmd_run)

    p = _command(
        sub,
        "backfill",
        "fill a source's history from --since, with progress",
        "Fill one configured source's history. On a source with no cursor yet this is its first "
        "poll cycle started further back: when it finishes, polling (and the daemon) continues "
        "from exactly there, with no gap and no duplicate. On a source that already has a "
        "cursor it reads the history before the oldest stored event with bounded queries and "
        "leaves the cursor alone. A progress line shows how far it got (percent, position, "
        "pages, events, rate-limit waits, ETA): redrawn on a terminal, one line per update "
        "elsewhere. It can be interrupted (exit 130) and run again.",
        (
            "# all that Okta keeps",
            "oktaduck backfill --config oktaduck.toml --source acme",
            "oktaduck backfill --config oktaduck.toml --source acme --since 2026-11-01T00:00:00Z",
            "oktaduck backfill --config oktaduck.toml --source acme --since 14d",
        ),
    )
    p.add_argument("--config", type=Path, required=True, help="config file (TOML)")
    p.add_argument("--source", required=True, help="the configured source to backfill")
    p.add_argument(
        "--since",
        default="90d",
        help="how far back: a duration such as 14d, or an RFC 3339 time; at most 90d, "
        "all that Okta keeps",
    )
    p.add_argument("--db", type=Path, help="DuckDB file (default: the config's storage.path)")
    p.set_defaults(func=cmd_backfill)

    p = _command(
        sub,
        "config",
        "check a config file",
        "Work with config files. `oktaduck config check --help` describes the one action.",
        (
            "oktaduck config check --config oktaduck.toml",
            "oktaduck config check --config oktaduck.toml --strict",
        ),
    )
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    q = _command(
        csub,
        "check",
        "validate a config file without the network",
        "Read a config file as `run` and `poll` would, without any network access: every key "
        "and value, each source's credentials, each sink, the API and the mapping. A file that "
        "cannot be used fails with one line that names the file and says what is wrong. "
        "Warnings (one line each, naming the key) cover secrets that are missing or in files "
        "others can read and "
        "every setting that weakens transport security; they do not fail the check unless "
        "--require-secrets or --strict asks. Prints `OK` with the number of sources and sinks.",
        (
            "oktaduck config check --config oktaduck.toml",
            "# in a deployment pipeline: every secret present, no weakened transport",
            "oktaduck config check --config oktaduck.toml --require-secrets --strict",
        ),
    )
    q.add_argument("--config", type=Path, required=True, help="config file (TOML)")
    q.add_argument(
        "--require-secrets",
        action="store_true",
        help="fail (exit 2) when a referenced secret (environment variable or file) is missing",
    )
    q.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 2) on any warning: missing secrets, secret files others can read, "
        "and settings that weaken transport security (verify = false, allow_insecure, "
        "syslog without TLS to another host, ...)",
    )
    q.set_defaults(func=cmd_config_check)

    p = _command(
        sub,
        "sql",
        "run a read-only SQL query against the store",
        "Run one SQL query (DuckDB's dialect) in a read-only transaction on the database file and "
        "print the rows. While the daemon holds the file, the query goes through its local API "
        "and the output is the same. The query is stopped after --timeout and may not read or "
        "write files or attach other databases. The main tables: events (one row per event, "
        "with its JSON in `raw`), rejects (events that could not be mapped) and cursors.",
        (
            'oktaduck sql "SELECT event_type, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC"',
            "oktaduck sql --db state/acme.duckdb --format csv "
            '"SELECT * FROM events WHERE published > now() - INTERVAL 1 HOUR"',
            'oktaduck sql --format json --timeout 5m "SELECT actor_login, count(*) FROM events '
            'GROUP BY 1"',
        ),
    )
    p.add_argument("query", help='SQL, e.g. "SELECT event_type, count(*) FROM events GROUP BY 1"')
    _add_db(p)
    _add_format(p)
    _add_timeout(p)
    p.set_defaults(func=cmd_sql)

    p = _command(
        sub,
        "feed",
        "list the feeds (named queries), or run one",
        "Without a NAME, list the feeds: named, parameterized queries over the stored events, "
        "from all System Log events (`logs`) to detections such as brute-force or mfa-fatigue. "
        "With a NAME, run that feed over [--since, --until) and print its rows. Every feed takes "
        "the options below; a feed's own parameters are given as --PARAM VALUE, and "
        "--help-params lists them. While the daemon holds the database the feed runs through "
        "its local API, with the same output.",
        (
            "oktaduck feed",
            "oktaduck feed failed-logins --since 24h --sort descending",
            "oktaduck feed brute-force --since 7d --threshold 20 --window 10m",
            "oktaduck feed brute-force --help-params",
        ),
    )
    p.add_argument("name", nargs="?", help="feed name (omit to list the feeds)")
    p.add_argument("--since", help="start: RFC 3339 or relative (24h, 7d) (default: 7d)")
    p.add_argument("--until", help="end (exclusive): RFC 3339 or relative (default: now)")
    p.add_argument("--sort", help="ascending or descending by time (default: ascending)")
    p.add_argument(
        "--limit",
        type=whole(0, MAX_INT_PARAM),
        help="at most this many rows, 0 for all (default: 100)",
    )
    p.add_argument("--source", help="only this configured source (org) (default: all)")
    p.add_argument(
        "--help-params", action="store_true", help="describe the feed's parameters and exit"
    )
    _add_db(p)
    _add_format(p)
    _add_timeout(p)
    p.set_defaults(func=cmd_feed)

    p = _command(
        sub,
        "export",
        "export stored events: one-off to a destination, or to a configured sink",
        "Send stored events somewhere, as NDJSON in the chosen format. With --to, a one-off "
        "export of the events published in [--since, --until), optionally narrowed by an Okta "
        "filter expression or keywords; a file: destination is written whole and then renamed "
        "into place. With --config and --sink, deliver what that sink has not received yet and "
        "move its cursor, exactly as the daemon does; with --since or --until as well, re-send "
        "that range to the sink without moving its cursor. While the daemon holds the database, "
        "the events are read through its local API.",
        (
            "oktaduck export --to file:failed.ndjson --format ecs --since 24h "
            "--filter 'outcome.result eq \"FAILURE\"'",
            "oktaduck export --to stdout --since 1h --q admin",
            "oktaduck export --config oktaduck.toml --sink splunk",
            "oktaduck export --config oktaduck.toml --sink splunk --since 2026-11-01T00:00:00Z",
        ),
    )
    p.add_argument(
        "--to", help="file:PATH, stdout, http(s)://URL, syslog://HOST:PORT or relp://HOST:PORT"
    )
    p.add_argument("--sink", help="a sink of --config (needs --config)")
    p.add_argument(
        "--format",
        choices=("raw", "normalized", "ecs", "ocsf"),
        help="event format (default: raw with --to, the sink's with --sink)",
    )
    p.add_argument("--since", help="published from: RFC 3339 or relative (default: 7d)")
    p.add_argument("--until", help="published before: RFC 3339 or relative (default: now)")
    p.add_argument("--filter", help="only events matching this Okta System Log filter expression")
    p.add_argument("--q", help="only events containing all these keywords")
    _add_db(p)
    p.set_defaults(func=cmd_export)

    p = _command(
        sub,
        "status",
        "per source: cursor, events stored, lag, rejects; per sink: lag",
        "Show how each source and sink stands: per source the events stored, pages, duplicates "
        "skipped, open rejects, uuid conflicts, the newest event, the cursor's age and lag; per "
        "sink the events it is behind, its lag and last error (the sinks only in table format). "
        "Works on the database file, or through the daemon's API while it runs.",
        (
            "oktaduck status",
            "oktaduck status --db state/acme.duckdb",
            "oktaduck status --config oktaduck.toml --format json",
        ),
    )
    _add_db(p)
    _add_format(p)
    _add_timeout(p)
    p.set_defaults(func=cmd_status)

    p = _command(
        sub,
        "simulate",
        "serve a simulated Okta org on 127.0.0.1",
        "Serve a simulated Okta org over HTTP: the System Log API with Okta's paging, filters, "
        "rate-limit headers and 429 answers, seeded with --events events over the last --hours, "
        "optionally adding more every minute. Point `oktaduck poll --org` (or any tool) at it to "
        "try things without a real org. It accepts the token in OKTA_API_TOKEN when that is set, "
        "else the demo token it prints at start; it runs until Ctrl-C.",
        (
            "oktaduck simulate --port 8089 --events 20000",
            "# a live org: new events every minute, a tight rate limit",
            "oktaduck simulate --trickle 120 --rate-limit 20 --window-seconds 60",
        ),
    )
    simulate_options.add_arguments(p)
    p.set_defaults(func=cmd_simulate)

    p = _command(
        sub,
        "map",
        "map Okta events from stdin to normalized, ECS or OCSF NDJSON on stdout",
        "Read Okta System Log events from stdin (NDJSON, or one JSON array as the API returns "
        "it) and write each one mapped to the chosen format as NDJSON on stdout, with the "
        "shipped mapping or your own file. An event that cannot be mapped is reported on stderr "
        "with the reason and does not stop the stream; a count of mapped, rejected and "
        "unreadable events ends the run. No database and no network.",
        (
            "oktaduck map --format ecs < events.ndjson > ecs.ndjson",
            "oktaduck map --mapping my-ocsf.toml --strict < events.json",
        ),
    )
    p.add_argument(
        "--format",
        choices=("normalized", "ecs", "ocsf"),
        default="normalized",
        help="the shipped mapping to apply",
    )
    p.add_argument("--mapping", type=Path, help="use this mapping file instead of --format's")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when any event was rejected or unreadable"
    )
    p.set_defaults(func=cmd_map)

    p = _command(
        sub,
        "mappings",
        "check mapping files and measure their coverage",
        "Work with the mapping files that turn Okta events into columns, ECS and OCSF: "
        "`check` validates them, `coverage` measures what they classify and what they leave "
        "unread. `oktaduck mappings ACTION --help` describes each.",
        (
            "oktaduck mappings check",
            "oktaduck mappings coverage --db state/acme.duckdb",
        ),
    )
    msub = p.add_subparsers(dest="mappings_command", required=True, metavar="ACTION")
    q = _command(
        msub,
        "check",
        "validate every mapping file (no network, no database)",
        "Load and validate every mapping file (*.toml) under a folder, as the poller and the "
        "exporter would load them. Prints each file with its mapping name, output, fields and "
        "version; "
        "on a problem prints one line per problem and exits 1. Run it after editing a mapping, "
        "before `oktaduck remap`.",
        (
            "oktaduck mappings check",
            "oktaduck mappings check --dir my-mappings/",
        ),
    )
    q.add_argument(
        "--dir", type=Path, help="mapping folder (default: the mappings shipped with oktaduck)"
    )
    q.set_defaults(func=cmd_mappings_check)
    q = _command(
        msub,
        "coverage",
        "catalog event types classified, and raw fields no mapping reads",
        "Measure the shipped mappings: how many event types of Okta's catalog get a specific "
        "ECS category and OCSF class, and, from the most recent stored events, which raw "
        "fields no mapping reads (with how many events carry each). An installed copy carries "
        "no catalog: pass --catalog, or it reports the raw fields only.",
        (
            "oktaduck mappings coverage --db state/acme.duckdb",
            "oktaduck mappings coverage --catalog event-types.json --sample 10000",
        ),
    )
    q.add_argument(
        "--catalog",
        type=Path,
        help="Okta event-type catalog, event-types.json (default: the checkout's copy, if any)",
    )
    q.add_argument(
        "--db",
        type=Path,
        help=f"database whose events to inspect (default: {DEFAULT_DB}, when it exists)",
    )
    q.add_argument(
        "--sample", type=whole(1, 10**9), default=100_000, help="most recent events to read"
    )
    q.set_defaults(func=cmd_mappings_coverage)

    p = _command(
        sub,
        "remap",
        "re-apply the current mapping to stored events and rejects",
        "After a mapping changes, bring the stored rows up to date: every event mapped by "
        "another mapping version is mapped again from its raw JSON (an event that now fails "
        "moves to rejects), and every rejected event is tried again. Works in batches, one "
        "transaction each, with a progress line per batch; safe to interrupt and run again. "
        "Cursors are not touched. The mapping must make columns (normalized); ECS and OCSF are "
        "for export. Needs the database to itself: stop the daemon first.",
        (
            "oktaduck remap --db state/acme.duckdb",
            "oktaduck remap --config oktaduck.toml --mapping mappings/okta/normalized.toml",
        ),
    )
    _add_db(p)
    p.add_argument(
        "--mapping", type=Path, help="normalized mapping file (default: the shipped one)"
    )
    p.add_argument(
        "--batch", type=whole(1, MAX_GROUP_EVENTS), default=5000, help="events per transaction"
    )
    p.set_defaults(func=cmd_remap)

    p = _command(
        sub,
        "demo",
        "ingest from a built-in simulated org and print a summary",
        "The quickest look at oktaduck: start a simulated Okta org in this process, poll it into "
        "a fresh database (late events and a burst of failed sign-ins included) and print what "
        "was stored. No account, token or network beyond 127.0.0.1 needed. The database "
        "is recreated each time; explore it afterwards with `oktaduck sql --db ...`.",
        (
            "oktaduck demo",
            "oktaduck demo --db /tmp/demo.duckdb --events 50000",
        ),
    )
    p.add_argument("--db", type=Path, default=Path("state/demo.duckdb"), help="demo database")
    p.add_argument(
        "--events",
        type=whole(1, 1_000_000),
        default=3000,
        help="events the simulated org holds, up to 1000000",
    )
    p.set_defaults(func=cmd_demo)

    parser.epilog = (
        commands_overview(parser)
        + "\n\nstart with `oktaduck demo`; `oktaduck COMMAND --help` describes each command."
        + "\n\nexamples:\n  oktaduck demo\n"
        + "  oktaduck poll --org https://acme.okta.com --db state/acme.duckdb\n"
        + '  oktaduck sql --db state/acme.duckdb "SELECT count(*) FROM events"'
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o077)  # database, WAL and exports: private to the service user
    runtime.tune()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "feed":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if args.log_level not in LOG_LEVELS:  # the default comes from OKTADUCK_LOG_LEVEL unchecked
        parser.error(f"OKTADUCK_LOG_LEVEL: choose from {', '.join(LOG_LEVELS)}")
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
    except Exception as err:  # the last line of defence, see _internal_error
        return _internal_error(err, args.log_level == "debug")


INTERNAL_ERROR = 70  # EX_SOFTWARE of sysexits.h


def _internal_error(err: Exception, debug: bool) -> int:
    """An exception no part of oktaduck expected: one line on stderr (the traceback with
    ``--log-level debug``), exit 70. A bug to report, never a way to leak a secret."""
    if debug:  # redacted too: the message, and the source lines, may hold a secret
        print(redact("".join(traceback.format_exception(err))), end="", file=sys.stderr)
    message = redact(" ".join(str(err).split()))[:300]
    hint = "" if debug else " (--log-level debug shows the traceback)"
    print(f"oktaduck: internal error: {type(err).__name__}: {message}{hint}", file=sys.stderr)
    return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())

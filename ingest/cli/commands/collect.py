"""The commands that collect events: ``poll``, ``backfill``, ``run`` (the daemon) and
``config check``. Each imports the modules it works with inside its function: a one-shot poll
then loads neither the daemon nor the simulator."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import signal
import sys
import threading
from datetime import timedelta
from types import FrameType

from ingest.base.clock import SystemClock
from ingest.base.errors import ConfigError, OktaduckError
from ingest.base.timeparse import parse_duration, parse_time
from ingest.collect.settings import SourceConfig
from ingest.config import (
    MAX_LOOKBACK,
    Config,
    StorageConfig,
    load_config,
)
from ingest.okta.urls import OrgURL
from ingest.store.db import DEFAULT_DB, INGEST_MEMORY_LIMIT, INGEST_THREADS


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
    from ingest.collect.pagemap import start_mappers
    from ingest.collect.poll import poll_cycle
    from ingest.collect.progress import PollProgress, ProgressLine
    from ingest.mapping import load_mapping
    from ingest.store.db import Store

    if bool(args.org) == bool(args.config):
        raise ConfigError("give either --org URL or --config FILE")
    config = _config_from_flags(args) if args.org else load_config(args.config)
    if args.db is not None:  # a file, even when the config names a lake
        config = dataclasses.replace(
            config, storage=dataclasses.replace(config.storage, path=args.db, lake=None)
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
            config.storage.target(),
            mapping,
            _ingest_memory(config),
            INGEST_THREADS,
            serves_queries=False,
        ) as store,
        contextlib.ExitStack() as stack,
    ):
        mapper = start_mappers(stack, mapping, args.mappers)
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
    from ingest.base import stacks
    from ingest.service import daemon

    # a crash inside a native library (DuckDB, its extensions) prints every thread's Python
    # stack to stderr before the process dies, and SIGUSR1 prints them while it runs (a
    # daemon that seems stuck; ingest.base.stacks): file, function and line names, never values
    faulthandler.enable()
    stacks.install(signal.SIGUSR1)

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
    from ingest.config_check import lake_secret_problems, transport_warnings

    problems += lake_secret_problems(config)
    for line in problems:
        print(f"{args.config}: warning: {line}", file=sys.stderr)

    weak = transport_warnings(config)  # settings that weaken transport security
    for line in weak:
        print(f"{args.config}: warning: {line}", file=sys.stderr)
    if (problems and args.require_secrets) or ((problems or weak) and args.strict):
        return 2
    lake = config.storage.lake
    if args.connect and lake is not None:
        from ingest.cli.commands.common import _reach_lake

        try:
            print(f"{args.config}: {_reach_lake(lake)}")
        except OktaduckError as err:
            print(f"{args.config}: error: {err}", file=sys.stderr)
            return 2
    print(
        f"{args.config}: OK ({len(config.sources)} sources, {len(config.sinks)} sinks, "
        f"{lake.describe() if lake else f'database {config.storage.path}'})"
    )
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from ingest.collect.backfill import Progress, backfill
    from ingest.collect.connect import open_client
    from ingest.collect.pagemap import start_mappers
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
    target = args.db or config.storage.target()  # --db: a file, even when a lake is set
    with (
        Store(
            target, mapping, _ingest_memory(config), INGEST_THREADS, serves_queries=False
        ) as store,
        contextlib.ExitStack() as stack,
    ):
        mapper = start_mappers(stack, mapping, args.mappers)
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


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)

"""The daemon: scheduled jobs around the units of work, and nothing else.

- one poll job per source (:func:`ingest.collect.poll.poll_cycle`), a failing source backing off
  without slowing the others;
- one export job per sink (:func:`ingest.export.deliver.export_cycle`);
- an optional completeness check per source and a retention job;
- the local HTTP API (health, metrics, status, feeds, read-only SQL).

SIGTERM and SIGINT set a stop flag: no new page is requested, waits end at once, the page
being committed finishes, and the process exits 0. Requests still in flight after a short
grace period are cut off (their page was not committed, so nothing is lost). SIGHUP reloads
the configuration the same way and starts again with it (an invalid new file is reported and
the old configuration keeps running).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from ingest.base.backoff import Backoff
from ingest.base.clock import Clock, SystemClock
from ingest.base.errors import AuthFailed, BadRequest, OktaduckError
from ingest.base.logs import emit
from ingest.base.redact import redact
from ingest.collect.completeness import check_window
from ingest.collect.connect import open_client
from ingest.collect.poll import poll_cycle
from ingest.collect.settings import SourceConfig
from ingest.config import Config
from ingest.export.deliver import export_cycle
from ingest.export.settings import SinkSpec
from ingest.export.sinks.base import Sink
from ingest.mapping import load_mapping
from ingest.okta.client import OktaClient
from ingest.service.api import ApiServer, announce_path, api_token
from ingest.service.metrics import render_metrics
from ingest.store.db import Store
from ingest.store.retention import apply_retention

GRACE_SECONDS = 5.0
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class SourceRunner:
    """The scheduled poll job of one source, with its health and backoff."""

    source: SourceConfig
    store: Store
    clock: Clock
    stop: threading.Event
    client: OktaClient | None = None
    failures: int = 0
    last_error: str | None = field(default=None)
    last_success: datetime | None = None
    retry_at: datetime | None = None
    cycles: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> None:
        if self.stop.is_set() or (self.retry_at and self.clock.now() < self.retry_at):
            return
        with self.lock:  # the poll and the completeness check share the client
            self._poll()

    def _poll(self) -> None:
        try:
            if self.client is None:
                self.client = open_client(self.source, self.clock, self.stop)
            result = poll_cycle(self.source, self.store, self.client, self.clock, self.stop)
        except OktaduckError as err:
            self._failed(err)
            return
        self.failures = 0
        self.retry_at = None
        self.last_error = None
        self.last_success = self.clock.now()
        self.cycles += 1
        emit(
            "poll.cycle_done",
            source=result.source,
            pages=result.pages,
            stored=result.stored,
            duplicates=result.duplicates,
            rejected=result.rejected,
            caught_up=result.caught_up,
        )

    def _failed(self, err: OktaduckError) -> None:
        self.failures += 1
        self.last_error = str(err)
        # configuration-like failures (bad token, no permission, rejected query) back off
        # harder: retrying them every interval only burns the org's rate limit
        base = self.source.poll_interval * (4 if isinstance(err, AuthFailed | BadRequest) else 1)
        backoff = Backoff(base.total_seconds(), MAX_BACKOFF.total_seconds(), jitter=0.0)
        wait = timedelta(seconds=backoff.delay(self.failures))
        self.retry_at = self.clock.now() + wait
        emit(
            "poll.failed",
            logging.ERROR,
            source=self.source.name,
            error=str(err),
            failures=self.failures,
            retry_in_s=int(wait.total_seconds()),
        )

    def check_completeness(self) -> None:
        source = self.source
        if self.stop.is_set() or self.client is None or source.completeness_every is None:
            return
        with self.lock:
            try:
                check_window(
                    source,
                    self.store,
                    self.client,
                    self.clock,
                    source.completeness_window,
                    source.completeness_delay,
                    stop=self.stop,
                )
            except OktaduckError as err:
                emit("completeness.failed", logging.ERROR, source=source.name, error=str(err))

    def close(self) -> None:
        if self.client is not None:
            self.client.http.close()


@dataclass
class SinkRunner:
    """The scheduled export job of one sink."""

    spec: SinkSpec
    store: Store
    clock: Clock
    stop: threading.Event
    sink: Sink | None = None
    last_error: str | None = None

    def __call__(self) -> None:
        if self.stop.is_set():
            return
        try:
            if self.sink is None:
                self.sink = self.spec.build(self.clock)
            result = export_cycle(self.spec.delivery, self.store, self.sink, self.clock, self.stop)
        except OktaduckError as err:
            self.last_error = str(err)
            emit("export.failed", logging.ERROR, sink=self.spec.name, error=str(err))
            return
        except Exception as err:  # a sink's bug: shown like its other failures, not swallowed
            self.last_error = redact(f"internal error: {type(err).__name__}: {err}")
            emit("export.failed", logging.ERROR, sink=self.spec.name, error=self.last_error)
            return
        self.last_error = result.error
        if result.delivered or result.error:
            emit(
                "export.cycle_done",
                sink=result.sink,
                delivered=result.delivered,
                batches=result.batches,
                caught_up=result.caught_up,
                error=result.error,
            )

    def close(self) -> None:
        if self.sink is not None:
            try:
                self.sink.close()
            except OktaduckError as err:
                emit("export.close_failed", logging.WARNING, sink=self.spec.name, error=str(err))


def health(
    runners: list[SourceRunner], started: datetime, clock: Clock, misses: int = 3
) -> tuple[bool, dict[str, Any]]:
    """Healthy when every source completed a poll cycle within ``misses`` poll intervals
    (counted from the daemon's start for a source that has not completed one yet)."""
    now = clock.now()
    sources = {}
    ok = True
    for r in runners:
        since = r.last_success or started
        fresh = now - since <= r.source.poll_interval * misses
        ok = ok and fresh
        sources[r.source.name] = {
            "healthy": fresh,
            "last_success": r.last_success.isoformat() if r.last_success else None,
            "consecutive_failures": r.failures,
            "last_error": r.last_error,
        }
    return ok, {"status": "ok" if ok else "unhealthy", "sources": sources}


class Daemon:
    """One configuration running: the store, the jobs and the API."""

    def __init__(self, config: Config, clock: Clock, stop: threading.Event) -> None:
        self.config = config
        self.clock = clock
        self.stop = stop
        self.mapping = load_mapping(config.mapping_path())
        self.store = Store(config.storage.path, self.mapping, config.storage.memory_limit)
        self.runners = [SourceRunner(s, self.store, clock, stop) for s in config.sources]
        self.exporters = [SinkRunner(s, self.store, clock, stop) for s in config.sinks]
        self.started = clock.now()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(max_workers=min(len(self.runners), 32)),
                "export": ThreadPoolExecutor(max_workers=max(1, min(len(self.exporters), 8))),
                "maintenance": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        self.api: ApiServer | None = None
        self.announce = announce_path(self.store.path)

    def _jobs(self) -> None:
        now = self.clock.now()
        add = self.scheduler.add_job
        for r in self.runners:
            interval = r.source.poll_interval.total_seconds()
            add(r, "interval", seconds=interval, id=f"poll:{r.source.name}", next_run_time=now)
            every = r.source.completeness_every
            if every is not None:
                add(
                    r.check_completeness,
                    "interval",
                    seconds=every.total_seconds(),
                    id=f"completeness:{r.source.name}",
                    executor="maintenance",
                )
        for x in self.exporters:
            add(
                x,
                "interval",
                seconds=x.spec.interval.total_seconds(),
                id=f"export:{x.spec.name}",
                executor="export",
                next_run_time=now,
            )
        storage = self.config.storage
        if storage.retention is not None:
            add(
                self._retention,
                "interval",
                seconds=storage.retention_every.total_seconds(),
                id="retention",
                executor="maintenance",
                next_run_time=now + timedelta(minutes=1),
            )

    def _retention(self) -> None:
        keep = self.config.storage.retention
        if keep is None or self.stop.is_set():
            return
        try:
            apply_retention(self.store, keep, self.clock)
        except OktaduckError as err:
            emit("retention.failed", logging.ERROR, error=str(err))

    def health(self) -> tuple[bool, dict[str, Any]]:
        return health(self.runners, self.started, self.clock)

    def metrics(self) -> str:
        return render_metrics(self.store, self.runners, self.exporters, self.clock)

    def start(self) -> None:
        self._jobs()
        if self.config.api.enabled:
            self.api = ApiServer(
                self.config.api,
                self.store.con,
                self.clock,
                self.health,
                self.mapping,
                api_token(self.config.api, self.store.path),
                metrics=self.metrics,
                limits=self.config.query,
            )
            self.api.start(self.announce)
        emit(
            "daemon.started",
            sources=[s.name for s in self.config.sources],
            sinks=[s.name for s in self.config.sinks],
            db=str(self.store.path),
        )
        self.scheduler.start()

    def shutdown(self) -> bool:
        """Stop the jobs, giving a page in flight GRACE_SECONDS to finish; return True when
        every job ended (False: a request was still hanging; the caller exits regardless,
        and since that page was not committed nothing is lost)."""
        if self.api is not None:
            self.api.stop(self.announce)
        if not self.scheduler.running:  # start() failed (the API could not listen, ...)
            _close_all([*self.runners, *self.exporters])
            self.store.close()
            return True
        self.scheduler.pause()
        waiter = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True})
        waiter.daemon = True
        waiter.start()
        waiter.join(GRACE_SECONDS)
        _close_all([*self.runners, *self.exporters])
        waiter.join(1.0)
        self.store.close()
        return not waiter.is_alive()


def _close_all(runners: list[SourceRunner] | list[SinkRunner] | list[Any]) -> None:
    for runner in runners:
        runner.close()


def run(
    config: Config,
    clock: Clock | None = None,
    stop: threading.Event | None = None,
    reload: Callable[[], Config] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); on SIGHUP, ``reload()`` and go on."""
    clock = clock or SystemClock()
    stop = stop or threading.Event()
    hup = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            hup.set()
        emit("daemon.reloading" if signum == signal.SIGHUP else "daemon.stopping", signal=name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, on_signal)
    while True:
        daemon = Daemon(config, clock, stop)
        try:
            daemon.start()
            while not stop.wait(0.5):  # in slices: a signal is handled at once
                pass
        finally:
            clean = daemon.shutdown()
            emit("daemon.stopped", clean=clean)
        reloading = hup.is_set() and reload is not None
        if not clean and not reloading:
            # a job is stuck in a network read; its page was not committed: leave now rather
            # than wait for its timeout (Python would join the worker thread at exit)
            logging.shutdown()
            os._exit(0)
        if not reloading or reload is None:
            return 0
        hup.clear()
        stop.clear()
        try:
            config = reload()
        except OktaduckError as err:
            emit("daemon.reload_failed", logging.ERROR, error=str(err))

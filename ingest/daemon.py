"""The daemon: one scheduled poll job per source around :func:`ingest.poll.poll_cycle`.

SIGTERM and SIGINT set a stop flag: no new page is requested, waits end at once, the page
being committed finishes, and the process exits 0. Requests still in flight after a short
grace period are cut off (their page was not committed, so nothing is lost).
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from ingest.api import ApiServer, announce_path
from ingest.clock import Clock, SystemClock
from ingest.config import Config, SourceConfig
from ingest.errors import OktaduckError
from ingest.export.deliver import Sink, export_cycle
from ingest.export.settings import SinkSpec
from ingest.logs import emit
from ingest.mapping import load_mapping
from ingest.okta.client import OktaClient
from ingest.okta.session import open_client
from ingest.poll import poll_cycle
from ingest.store.db import Store

GRACE_SECONDS = 5.0


@dataclass
class SourceRunner:
    """The scheduled job of one source."""

    source: SourceConfig
    store: Store
    clock: Clock
    stop: threading.Event
    client: OktaClient | None = None
    failures: int = 0
    last_error: str | None = field(default=None)
    last_success: datetime | None = None

    def __call__(self) -> None:
        if self.stop.is_set():
            return
        try:
            if self.client is None:
                self.client = open_client(self.source, self.clock, self.stop)
            result = poll_cycle(self.source, self.store, self.client, self.clock, self.stop)
        except OktaduckError as err:
            self.failures += 1
            self.last_error = str(err)
            emit("poll.failed", logging.ERROR, source=self.source.name, error=str(err))
            return
        self.failures = 0
        self.last_error = None
        self.last_success = self.clock.now()
        emit(
            "poll.cycle_done",
            source=result.source,
            pages=result.pages,
            stored=result.stored,
            duplicates=result.duplicates,
            rejected=result.rejected,
            caught_up=result.caught_up,
        )

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


def _close_all(runners: list[SourceRunner]) -> None:
    for runner in runners:
        runner.close()


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
        allowed = r.source.poll_interval * misses
        fresh = now - since <= allowed
        ok = ok and fresh
        sources[r.source.name] = {
            "healthy": fresh,
            "last_success": r.last_success.isoformat() if r.last_success else None,
            "consecutive_failures": r.failures,
            "last_error": r.last_error,
        }
    return ok, {"status": "ok" if ok else "unhealthy", "sources": sources}


def run(config: Config, clock: Clock | None = None, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); return the exit code."""
    clock = clock or SystemClock()
    stop = stop or threading.Event()
    mapping = load_mapping(config.mapping_path())
    store = Store(config.storage.path, mapping)
    runners = [SourceRunner(s, store, clock, stop) for s in config.sources]
    exporters = [SinkRunner(s, store, clock, stop) for s in config.sinks]
    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={
            "default": ThreadPoolExecutor(max_workers=min(len(runners), 32)),
            "export": ThreadPoolExecutor(max_workers=max(1, min(len(exporters), 8))),
        },
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
    )
    for runner in runners:
        scheduler.add_job(
            runner,
            "interval",
            seconds=runner.source.poll_interval.total_seconds(),
            id=runner.source.name,
            next_run_time=clock.now(),
        )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        emit("daemon.stopping", signal=signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    for exporter in exporters:
        scheduler.add_job(
            exporter,
            "interval",
            seconds=exporter.spec.interval.total_seconds(),
            id=f"export:{exporter.spec.name}",
            executor="export",
            next_run_time=clock.now(),
        )
    started = clock.now()
    api = None
    announce = announce_path(store.path)
    if config.api.enabled:
        api = ApiServer(
            config.api, store.con, clock, lambda: health(runners, started, clock), mapping
        )
        api.start(announce)
    emit("daemon.started", sources=[s.name for s in config.sources], db=str(store.path))
    scheduler.start()
    try:
        stop.wait()
    finally:
        if api is not None:
            api.stop(announce)
        scheduler.pause()
        closer = threading.Timer(GRACE_SECONDS, _close_all, [runners])
        closer.daemon = True
        closer.start()
        scheduler.shutdown(wait=True)
        closer.cancel()
        for runner in runners:
            runner.close()
        for exporter in exporters:
            exporter.close()
        store.close()
        emit("daemon.stopped")
    return 0

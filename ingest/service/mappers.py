"""The daemon's mapping child: one process that parses and maps the pages of every source.

Parsing and mapping are most of the Python work of a poll, and Python runs one thread at a
time: done in each source's own thread (as the daemon once did), up to 32 of them competed
for the interpreter's lock with the fetching and committing threads, and each held its
parsed pages at once. One ``ProcessMapper`` serves them all instead; it takes bodies from
any thread and answers each in order, so the daemon keeps the transport and DuckDB (which
run without the lock) and the child maps. More children do not pay on the 2 cores this was
measured on (docs/performance.md), so there is one.

A child that dies fails the pages it held: their sources' polls end with a one-line error
(``MapperFailed``), keep what they had committed and try again at their next poll; the
next body handed over starts a new child. ``close`` stops it for good (the daemon's
shutdown, or a reload, which starts a new one: the mapping may have changed).
"""

from __future__ import annotations

import logging
import threading

from ingest.base.errors import MapperFailed
from ingest.base.logs import emit
from ingest.collect.budget import ByteBudget
from ingest.collect.pagemap import PendingPage, ProcessMapper
from ingest.mapping import CompiledMapping


class SharedMapper:
    """A ``ProcessMapper`` shared by the sources of a daemon, started again when it died."""

    def __init__(self, mapping: CompiledMapping) -> None:
        self.mapping = mapping
        self.starts = 0  # children started, the first included
        self._lock = threading.Lock()
        self._mapper: ProcessMapper | None = None
        self._closed = False
        self._busy = 0  # bodies handed over and not yet counted by the child

    def start(self) -> None:
        """Start the child now (at the daemon's start, so that a child that cannot start is
        an error before anything is polled)."""
        with self._lock:
            self._current()

    @property
    def pid(self) -> int | None:
        """The running child's process id (None before it starts and after it stops)."""
        mapper = self._mapper
        return mapper.pid if mapper is not None and mapper.alive() else None

    @property
    def busy(self) -> int:
        """Bodies handed to the child that it has not parsed yet."""
        return self._busy

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)

    def _current(self) -> ProcessMapper:
        """The live child, started when there is none (the caller holds the lock)."""
        if self._closed:
            raise MapperFailed("the daemon is stopping")
        mapper = self._mapper
        if mapper is not None and mapper.alive():
            return mapper
        if mapper is not None:
            self._mapper = None
            emit(
                "daemon.mapper_stopped",
                logging.WARNING,
                pid=mapper.pid,
                error="the mapping process stopped; starting another",
            )
            mapper.close()  # already gone: reaps it
        mapper = ProcessMapper(self.mapping)
        self._mapper = mapper
        self.starts += 1
        emit("daemon.mapper_started", pid=mapper.pid, restarts=self.restarts)
        return mapper

    def decode(self, body: bytes) -> PendingPage:
        """Hand a body to the child (``ProcessMapper.decode``), starting one if needed."""
        with self._lock:
            mapper = self._current()
            self._busy += 1
        try:
            return mapper.decode(body)
        finally:
            with self._lock:
                self._busy -= 1

    def close(self) -> None:
        """Stop the child, once its bodies are answered; later bodies are refused."""
        with self._lock:
            self._closed = True
            mapper, self._mapper = self._mapper, None
        if mapper is not None:
            mapper.close()


def flow_metrics(mapper: SharedMapper, budget: ByteBudget) -> str:
    """``/metrics`` lines for the mapping child and the bytes of pages in flight."""
    lines = [
        "# HELP oktaduck_mapper_restarts_total Mapping processes started again after one died.",
        "# TYPE oktaduck_mapper_restarts_total counter",
        f"oktaduck_mapper_restarts_total {mapper.restarts}",
        "# HELP oktaduck_inflight_bytes Bytes of pages fetched or being fetched and not yet "
        "committed, all sources.",
        "# TYPE oktaduck_inflight_bytes gauge",
        f"oktaduck_inflight_bytes {budget.used}",
        "# HELP oktaduck_inflight_bytes_peak The most bytes of pages in flight at once since "
        "the daemon started.",
        "# TYPE oktaduck_inflight_bytes_peak gauge",
        f"oktaduck_inflight_bytes_peak {budget.peak}",
        "# HELP oktaduck_inflight_budget_bytes daemon.max_inflight_bytes.",
        "# TYPE oktaduck_inflight_budget_bytes gauge",
        f"oktaduck_inflight_budget_bytes {budget.capacity}",
        "# HELP oktaduck_inflight_waits_total Times a source waited for room before a request.",
        "# TYPE oktaduck_inflight_waits_total counter",
        f"oktaduck_inflight_waits_total {budget.waits}",
    ]
    return "\n".join(lines) + "\n"

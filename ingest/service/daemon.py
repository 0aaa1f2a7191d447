"""The daemon: scheduled jobs around the units of work, and nothing else.

- one poll job per source (:func:`ingest.collect.poll.poll_cycle`), a failing source backing off
  without slowing the others;
- one export job per sink (:func:`ingest.export.deliver.export_cycle`);
- an optional completeness check per source and a retention job;
- the local HTTP API (health, metrics, status, feeds, read-only SQL).

On a lake (``[storage] lake``) several daemons share the store. A source is polled, and a
sink delivered, only by the daemon holding its lease (``lakeschema``): a job's first try takes
it, every commit renews it, and a heartbeat every ``lease_ttl / 3`` keeps all the leases held,
so a lease ends only when its daemon stops (which gives it back) or dies (and another daemon
takes it at its next try once ``lease_ttl`` has passed since the last heartbeat). One of
them, the holder of the lease ("housekeeping", "lake"), compacts the lake every
``compact_every`` (``store.housekeeping``).

SIGTERM and SIGINT set a stop flag: no new page is requested, waits end at once, the page
being committed finishes, and the process exits 0. Requests still in flight after a short
grace period are cut off (their page was not committed, so nothing is lost). SIGHUP reloads
the configuration the same way and starts again with it (an invalid new file is reported and
the old configuration keeps running).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import duckdb
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from ingest.base.backoff import Backoff
from ingest.base.clock import Clock, SystemClock
from ingest.base.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    LakeUnavailable,
    LeaseLost,
    OktaduckError,
)
from ingest.base.logs import emit
from ingest.base.redact import redact
from ingest.collect.budget import ByteBudget
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
from ingest.service.mappers import SharedMapper, flow_metrics
from ingest.service.memory import tune_malloc
from ingest.service.metrics import render_metrics
from ingest.store.db import Store
from ingest.store.housekeeping import HousekeepingResult, housekeep
from ingest.store.lake import LAKE, translate_lake
from ingest.store.lakeschema import (
    RELEASED,
    Lease,
    beat,
    end_beat,
    list_leases,
    live_owners,
    owner_alive,
    read_lease,
)
from ingest.store.retention import apply_retention

GRACE_SECONDS = 5.0
MAX_BACKOFF = timedelta(hours=1)
HOUSEKEEPING = ("housekeeping", "lake")  # the lease of the one daemon that compacts a lake
FIRST_TRY_SPREAD = 10.0  # seconds over which a daemon on a lake first tries its sources


@dataclass
class LeaseKeeper:
    """This daemon's hold on the lease of one source, sink or job of a lake: whether it holds
    it, and who else did when it last could not take it (logged once per change)."""

    store: Store
    kind: str
    key: str
    clock: Clock
    owned: bool = False
    elsewhere: str | None = None  # the other owner last seen
    taken_at: datetime | None = None  # when this daemon took it (not renewals)
    renewed_at: datetime | None = None  # when this daemon last took or renewed it
    side: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection | None]] = field(
        default=lambda: contextlib.nullcontext()
    )  # a connection apart from the store's commits (None: the store's own)
    room: Callable[[], bool] = field(default=lambda: True)  # may this daemon take one more
    hold_off: timedelta = timedelta(0)  # how long after giving it back not to take it again
    given_back_at: datetime | None = None

    def take(self) -> bool:
        """Take or renew the lease; True when this daemon holds it now (always in a file
        store). A lake that cannot be reached raises ``LakeUnavailable``.

        The catalog is spared where it can be: a lease renewed less than a third of its
        time ago is taken as held (every commit's fence checks it anyway), and one held
        elsewhere is only read (on a connection apart from commits) until it ends."""
        lake = self.store.lake
        if lake is None:
            return True
        now = self.clock.now()
        if self.owned and self.renewed_at and now - self.renewed_at < lake.lease_ttl / 3:
            return True
        if not self.owned and self.given_back_at and now - self.given_back_at < self.hold_off:
            return False  # given back to even out the daemons' shares: the others first
        with self.side() as con:  # so as not to wait for the store's commits
            if not self.owned:  # a look first: most leases are held, and alive
                lease = self._read(con)
                if lease and lease.owner != self.store.owner:
                    if lease.expires_at > now:
                        self._held_elsewhere(lease)
                        return False
                    self.elsewhere = lease.owner  # whose lease ended: taken over below
                # a dead or stopped daemon's lease is taken whatever the shares; one given
                # back by a live daemon, or never taken, only by a daemon below its share
                orphan = lease is not None and (
                    lease.expires_at > RELEASED
                    or (lease.owner != self.store.owner and not self._alive(con, lease.owner))
                )
                if not orphan and not self.room():
                    return False
            try:
                self.store.hold(self.kind, self.key, now, con)
            except LeaseLost:
                self._held_elsewhere(self._read(con))
                return False
        if not self.owned:
            self.taken_at = now
            emit(
                "lake.lease_taken",
                kind=self.kind,
                key=self.key,
                owner=self.store.owner,
                previous_owner=self.elsewhere,
            )
        self.owned = True
        self.renewed_at = now
        self.elsewhere = None
        return True

    def give_back(self) -> None:
        """Give the lease back so that another daemon takes it (this one holds more than
        its share); it is not taken again for ``hold_off``."""
        self.store.release(self.kind, self.key)
        self.owned = False
        self.given_back_at = self.clock.now()
        emit("lake.lease_given_back", kind=self.kind, key=self.key, owner=self.store.owner)

    def lost(self, err: LeaseLost) -> None:
        """A commit found the lease taken over: this daemon stops using it."""
        self.owned = False
        emit("lake.lease_lost", logging.WARNING, kind=self.kind, key=self.key, error=str(err))

    def _read(self, con: duckdb.DuckDBPyConnection | None) -> Lease | None:
        lake = self.store.lake
        if con is None or lake is None:
            return self.store.lease(self.kind, self.key)
        try:
            return read_lease(con, self.kind, self.key)
        except duckdb.Error as err:
            raise translate_lake(err, lake) from None

    def _alive(self, con: duckdb.DuckDBPyConnection | None, owner: str) -> bool:
        if con is None:
            return False
        try:
            return owner_alive(con, owner, self.clock.now())
        except duckdb.Error as err:
            raise translate_lake(err, self.store.lake or "") from None

    def _held_elsewhere(self, lease: Lease | None) -> None:
        if self.owned:
            emit("lake.lease_lost", logging.WARNING, kind=self.kind, key=self.key,
                 error="taken over while this daemon held it")  # fmt: skip
        self.owned = False
        owner = lease.owner if lease else "another process"
        if owner != self.elsewhere:
            emit(
                "lake.lease_held_elsewhere",
                kind=self.kind,
                key=self.key,
                owner=owner,
                until=lease.expires_at.isoformat() if lease else None,
            )
        self.elsewhere = owner


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
    lease: LeaseKeeper = field(init=False)
    mapper: SharedMapper | None = None  # the daemon's mapping child (None: map inline)
    budget: ByteBudget | None = None  # bytes of pages in flight, shared by the sources
    give_back_after: bool = False  # give the lease back once the poll in progress ends

    def __post_init__(self) -> None:
        self.lease = LeaseKeeper(self.store, "source", self.source.name, self.clock)

    def __call__(self) -> None:
        if self.stop.is_set() or (self.retry_at and self.clock.now() < self.retry_at):
            return
        with self.lock:  # the poll and the completeness check share the client
            self._poll()
            if self.give_back_after:  # the daemon holds more than its share (_even_out)
                self.give_back_after = False
                if self.lease.owned:
                    self.lease.give_back()

    def _poll(self) -> None:
        try:
            if not self.lease.take():
                return  # another daemon polls it
            if self.client is None:
                self.client = open_client(self.source, self.clock, self.stop)
            result = poll_cycle(
                self.source,
                self.store,
                self.client,
                self.clock,
                self.stop,
                mapper=self.mapper,
                budget=self.budget,
            )
        except LeaseLost as err:  # taken over mid-cycle: what was committed stays
            self.lease.lost(err)
            return
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
        if self.store.lake is not None and not self.lease.owned:
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
        if self.mapper is not None:  # shared: the first runner closed stops it for all
            self.mapper.close()


@dataclass
class SinkRunner:
    """The scheduled export job of one sink."""

    spec: SinkSpec
    store: Store
    clock: Clock
    stop: threading.Event
    sink: Sink | None = None
    last_error: str | None = None
    lease: LeaseKeeper = field(init=False)

    def __post_init__(self) -> None:
        self.lease = LeaseKeeper(self.store, "sink", self.spec.name, self.clock)

    def __call__(self) -> None:
        if self.stop.is_set():
            return
        try:
            if not self.lease.take():
                return  # another daemon delivers it
            if self.sink is None:
                self.sink = self.spec.build(self.clock)
            result = export_cycle(self.spec.delivery, self.store, self.sink, self.clock, self.stop)
        except LeaseLost as err:
            self.lease.lost(err)
            return
        except OktaduckError as err:
            self.last_error = str(err)
            emit("export.failed", logging.ERROR, sink=self.spec.name, error=str(err))
            return
        except Exception as err:  # a sink's bug: shown like its other failures, not swallowed
            self.last_error = redact(f"internal error: {type(err).__name__}: {err}")
            emit("export.failed", logging.ERROR, sink=self.spec.name, error=self.last_error)
            return
        if result.owned_elsewhere:  # taken over meanwhile: not this daemon's sink to report down
            self.lease.lost(LeaseLost(result.error or "taken over"))
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
    (counted from the daemon's start, or from when it took the source's lease, for a source
    that has not completed one since). On a lake, a source another daemon holds is that
    daemon's to answer for."""
    now = clock.now()
    sources = {}
    ok = True
    for r in runners:
        since = max(r.last_success or started, r.lease.taken_at or started)
        elsewhere = r.lease.elsewhere is not None and not r.lease.owned
        fresh = elsewhere or now - since <= r.source.poll_interval * misses
        ok = ok and fresh
        sources[r.source.name] = {
            "healthy": fresh,
            "last_success": r.last_success.isoformat() if r.last_success else None,
            "consecutive_failures": r.failures,
            "last_error": r.last_error,
        }
        if r.store.lake is not None:
            sources[r.source.name]["owner"] = r.store.owner if r.lease.owned else r.lease.elsewhere
    return ok, {"status": "ok" if ok else "unhealthy", "sources": sources}


class Daemon:
    """One configuration running: the store, the jobs and the API."""

    def __init__(self, config: Config, clock: Clock, stop: threading.Event) -> None:
        self.config = config
        self.clock = clock
        self.stop = stop
        self.mapping = load_mapping(config.mapping_path())
        storage = config.storage
        # the API's token and address file live next to storage.path, the lake's too
        self.state = storage.path
        if storage.lake is not None:
            _state_folder(self.state)
        self.store = Store(
            storage.lake or storage.path, self.mapping, storage.memory_limit, lease_clock=clock.now
        )
        # one mapping child for every source, and one bound on their pages in flight
        tune_malloc()  # before the jobs' threads start: their arenas are capped
        self.mapper = SharedMapper(self.mapping)
        self.budget = ByteBudget(config.daemon.max_inflight_bytes)
        self.runners = [
            SourceRunner(s, self.store, clock, stop, mapper=self.mapper, budget=self.budget)
            for s in config.sources
        ]
        self.exporters = [SinkRunner(s, self.store, clock, stop) for s in config.sinks]
        for keeper in [*(r.lease for r in self.runners), *(x.lease for x in self.exporters)]:
            keeper.side = self._side
        self._share: int | None = None  # sources this daemon may hold (None: all of them)
        for r in self.runners:
            r.lease.room = self._has_room
            if storage.lake is not None:
                r.lease.hold_off = 2 * max(storage.lake.lease_ttl, r.source.poll_interval)
        self.started = clock.now()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(max_workers=min(len(self.runners), 32)),
                "export": ThreadPoolExecutor(max_workers=max(1, min(len(self.exporters), 8))),
                "maintenance": ThreadPoolExecutor(max_workers=1),
                "leases": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        self.api: ApiServer | None = None
        self.announce = announce_path(self.state)
        self.housekeeping = LeaseKeeper(self.store, *HOUSEKEEPING, clock, side=self._side)
        self.housekept: HousekeepingResult | None = None
        self._lease_con: duckdb.DuckDBPyConnection | None = None  # the heartbeats' own
        # until when the last heartbeat (or, before the first, the leases taken) keeps them
        lease_ttl = storage.lake.lease_ttl if storage.lake else timedelta(0)
        self._alive_until = self.started + lease_ttl
        self._idle = threading.Condition()  # connections in use apart from the store's lock
        self._users = 0
        self._closing = False

    def _jobs(self) -> None:
        now = self.clock.now()
        add = self.scheduler.add_job
        lake = self.store.lake
        for r in self.runners:
            interval = r.source.poll_interval.total_seconds()
            # daemons started together on a lake try the sources in different orders, so
            # that each takes some of them
            spread = min(interval, FIRST_TRY_SPREAD) if lake else 0.0
            first = now + timedelta(seconds=random.uniform(0, spread))
            add(r, "interval", seconds=interval, id=f"poll:{r.source.name}", next_run_time=first)
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

    def _lake_jobs(self) -> None:
        lake = self.store.lake
        if lake is None:
            return
        add = self.scheduler.add_job
        add(
            self._beat,
            "interval",
            seconds=lake.lease_ttl.total_seconds() / 3,
            id="leases",
            executor="leases",
        )
        add(
            self._housekeep,
            "interval",
            seconds=lake.compact_every.total_seconds(),
            id="housekeeping",
            executor="maintenance",
            next_run_time=self.clock.now() + min(lake.compact_every, timedelta(minutes=5)),
        )

    def _beat(self) -> None:
        """Say in the lake that this daemon is alive for another ``lease_ttl``, which keeps
        every lease it holds (``lakeschema.beat``: one insert, on a connection of its own so
        that it never waits behind page commits). When the beat before had run out by the
        time this one landed, other daemons may have taken leases meanwhile: each keeper
        looks at its lease again at its next try. A lake out of reach is logged, and the
        next commit's fence decides whether a lease is still ours."""
        lake = self.store.lake
        if lake is None or self.stop.is_set():
            return
        now = self.clock.now()
        try:
            with self._using():
                if self._lease_con is None:
                    self._lease_con = self.store.con.cursor()
                    self._lease_con.execute(f"USE {LAKE}")
                at = self.clock.now()  # counted from now, not from before any wait
                beat(self._lease_con, self.store.owner, lake.lease_ttl, at)
                live = live_owners(self._lease_con, at)
        except OktaduckError:
            return  # stopping
        except duckdb.Error as err:
            error = str(translate_lake(err, lake))
            emit("lake.lease_renew_failed", logging.WARNING, error=error)
            return
        landed = self.clock.now()
        if landed - now > lake.lease_ttl / 3:  # two such and the leases run out
            emit(
                "lake.lease_renewal_slow",
                logging.WARNING,
                seconds=round((landed - now).total_seconds(), 1),
                lease_ttl_s=lake.lease_ttl.total_seconds(),
            )
        lapsed = landed > self._alive_until
        self._alive_until = at + lake.lease_ttl
        for keeper in self._leases():
            if keeper.owned:
                keeper.renewed_at = None if lapsed else at
        self._even_out(live)

    def _even_out(self, live: int) -> None:
        """Hold no more than a fair share of the sources: all of them divided among the
        ``live`` daemons, rounded up. A daemon started first takes every source; once others
        beat, it gives back its excess (a source in a poll when its poll ends), and each
        takes sources given back only while it is below its share (a dead daemon's,
        always)."""
        share = -(-len(self.runners) // max(live, 1))
        if share != self._share:
            emit("lake.share_changed", daemons=live, share=share, sources=len(self.runners))
        self._share = share
        held = [r for r in self.runners if r.lease.owned]
        for runner in held[: self._share]:
            runner.give_back_after = False
        for runner in held[self._share :]:
            if runner.lock.acquire(blocking=False):
                try:
                    runner.lease.give_back()
                finally:
                    runner.lock.release()
            else:  # in a poll (a busy org's can last minutes): given back when it ends
                runner.give_back_after = True

    def _has_room(self) -> bool:
        share = self._share
        return share is None or sum(r.lease.owned for r in self.runners) < share

    @contextlib.contextmanager
    def _side(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """A connection to the lake of its own, for leases (the store's waits for commits);
        None for a file store."""
        lake = self.store.lake
        if lake is None:
            yield None
            return
        with self._using():
            con = self.store.con.cursor()
            try:
                try:
                    con.execute(f"USE {LAKE}")
                except duckdb.Error as err:
                    raise translate_lake(err, lake) from None
                yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def _using(self) -> Iterator[None]:
        """Count a connection of the store's in use apart from the store's lock: the store
        is closed only once none is (closing a DuckDB connection while a cursor of it runs
        a statement can crash the process). LakeUnavailable once the daemon is stopping."""
        with self._idle:
            if self._closing:
                raise LakeUnavailable("the daemon is stopping")
            self._users += 1
        try:
            yield
        finally:
            with self._idle:
                self._users -= 1
                self._idle.notify_all()

    def leases(self) -> list[dict[str, Any]]:
        """``/api/leases``: every lease of the lake, as the catalog has it now."""
        with self._side() as con:
            assert con is not None  # a lake
            try:
                found = list_leases(con)
            except duckdb.Error as err:
                assert self.store.lake is not None
                raise translate_lake(err, self.store.lake) from None
        return [
            {
                "kind": lease.kind,
                "key": lease.key,
                "owner": lease.owner,
                "expires_at": lease.expires_at.isoformat(),
                "this_daemon": lease.owner == self.store.owner,
            }
            for lease in found
        ]

    def _leases(self) -> list[LeaseKeeper]:
        return [
            *(r.lease for r in self.runners),
            *(x.lease for x in self.exporters),
            self.housekeeping,
        ]

    def _housekeep(self) -> None:
        """Compact the lake, when this daemon holds the housekeeping lease."""
        lake = self.store.lake
        if lake is None or self.stop.is_set():
            return
        try:
            if not self.housekeeping.take():
                return
            with self._side() as con:
                assert con is not None  # a lake
                result = housekeep(con, lake, self.clock.now())
        except OktaduckError as err:
            emit("lake.housekeeping_failed", logging.ERROR, error=str(err))
            return
        self.housekept = result
        emit(
            "lake.housekeeping_done",
            files_before=result.before.files,
            bytes_before=result.before.bytes,
            files_after=result.after.files,
            bytes_after=result.after.bytes,
            cursor_rows_deleted=result.cursor_rows_deleted,
            inlined_rows_flushed=result.inlined_rows_flushed,
            files_merged=result.files_merged,
            snapshots_expired=result.snapshots_expired,
            files_deleted=result.files_deleted,
            skipped=list(result.skipped),
        )

    def _retention(self) -> None:
        keep = self.config.storage.retention
        if keep is None or self.stop.is_set():
            return
        try:
            if not self.housekeeping.take():  # on a lake, one daemon deletes
                return
            apply_retention(self.store, keep, self.clock)
        except OktaduckError as err:
            emit("retention.failed", logging.ERROR, error=str(err))

    def health(self) -> tuple[bool, dict[str, Any]]:
        return health(self.runners, self.started, self.clock)

    def metrics(self) -> str:
        text = render_metrics(self.store, self.runners, self.exporters, self.clock)
        return text + flow_metrics(self.mapper, self.budget) + self._lake_metrics()

    def _lake_metrics(self) -> str:
        """The leases this daemon holds, and what its last housekeeping deleted (the lake's
        files and snapshots are ``render_metrics``'s)."""
        if self.store.lake is None:
            return ""
        lines = [
            "# HELP oktaduck_lease_held 1 while this daemon holds the lease of a source or sink.",
            "# TYPE oktaduck_lease_held gauge",
        ]
        for keeper in self._leases():
            kind, key = _label(keeper.kind), _label(keeper.key)
            lines.append(f'oktaduck_lease_held{{kind="{kind}",key="{key}"}} {int(keeper.owned)}')
        done = self.housekept
        if done is not None:
            lines += [
                "# HELP oktaduck_lake_files_deleted Files the last housekeeping deleted.",
                "# TYPE oktaduck_lake_files_deleted gauge",
                f"oktaduck_lake_files_deleted {done.files_deleted}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        self.mapper.start()  # a child that cannot start stops the daemon before any poll
        self._jobs()
        self._lake_jobs()
        if self.config.api.enabled:
            self.api = ApiServer(
                self.config.api,
                self.store.con,
                self.clock,
                self.health,
                self.mapping,
                api_token(self.config.api, self.state),
                metrics=self.metrics,
                limits=self.config.query,
                leases=self.leases if self.store.lake is not None else None,
            )
            self.api.start(self.announce)
        emit(
            "daemon.started",
            sources=[s.name for s in self.config.sources],
            sinks=[s.name for s in self.config.sinks],
            db=str(self.state) if self.store.lake is None else self.store.lake.describe(),
        )
        self.scheduler.start()

    def invalidated(self) -> bool:
        """Whether a job's statement or a query found the store's connection of no use."""
        return self.store.invalidated or (self.api is not None and self.api.invalidated)

    def _close_store(self) -> None:
        with self._idle:
            self._closing = True
            idle = self._idle.wait_for(lambda: self._users == 0, timeout=GRACE_SECONDS)
        if not idle:  # a lease or housekeeping statement still runs: the exit closes it
            return
        if self._lease_con is not None:
            with contextlib.suppress(duckdb.Error):  # else it runs out by itself
                end_beat(self._lease_con, self.store.owner, self.clock.now())
            self._lease_con.close()
        self.store.close()  # gives back the leases held

    def shutdown(self) -> bool:
        """Stop the jobs, giving a page in flight GRACE_SECONDS to finish; return True when
        every job ended (False: a request was still hanging; the caller exits regardless,
        and since that page was not committed nothing is lost)."""
        if self.api is not None:
            self.api.stop(self.announce)
        if not self.scheduler.running:  # start() failed (the API could not listen, ...)
            _close_all([*self.runners, *self.exporters])
            self._close_store()
            return True
        self.scheduler.pause()
        waiter = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True})
        waiter.daemon = True
        waiter.start()
        waiter.join(GRACE_SECONDS)
        _close_all([*self.runners, *self.exporters])
        waiter.join(1.0)
        if waiter.is_alive():  # a job still runs and may use the store: closing the DuckDB
            return False  # connection under it can crash the process; the exit ends both
        self._close_store()
        return True


REOPEN_REASON = (
    "DuckDB ended the store's connection (an internal error, or an inlined-data table of the "
    "lake dropped under it); the daemon starts again on a new one, nothing committed is lost"
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _state_folder(path: Path) -> None:
    """The folder of the daemon's state files (a file store makes its own)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise ConfigError(
            f"cannot create the folder {path.parent}: {err.strerror or err}"
        ) from None


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
    signalled = threading.Event()  # SIGTERM or SIGINT: no starting again

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            hup.set()
        else:
            signalled.set()
        emit("daemon.reloading" if signum == signal.SIGHUP else "daemon.stopping", signal=name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, on_signal)
    while True:
        daemon = Daemon(config, clock, stop)
        reopen = False
        try:
            daemon.start()
            while not stop.wait(0.5):  # in slices: a signal is handled at once
                if daemon.invalidated():  # only a new connection works: start again
                    emit("daemon.reopening", logging.ERROR, reason=REOPEN_REASON)
                    reopen = True
                    stop.set()
        finally:
            clean = daemon.shutdown()
            emit("daemon.stopped", clean=clean)
        reopen = reopen and not signalled.is_set()
        reloading = hup.is_set() and reload is not None
        if not clean and not reloading:
            # a job is stuck in a network read; its page was not committed: leave now rather
            # than wait for its timeout (Python would join the worker thread at exit); a
            # daemon that should start again exits 1, for its supervisor to restart it
            logging.shutdown()
            os._exit(1 if reopen else 0)
        if reopen:
            stop.clear()
            continue
        if not reloading or reload is None:
            return 0
        hup.clear()
        stop.clear()
        try:
            config = reload()
        except OktaduckError as err:
            emit("daemon.reload_failed", logging.ERROR, error=str(err))

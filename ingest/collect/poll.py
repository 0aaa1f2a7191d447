"""One poll cycle of one source: follow Okta's ``next`` links until caught up.

The CLI's ``poll`` and the daemon's scheduled job both call :func:`poll_cycle`. Pages are
mapped as they arrive and committed in groups, each group in one transaction with the ``next``
URL that follows its last page, so a crash anywhere leaves a group and its cursor, or neither.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

from ingest.base.clock import Clock, rfc3339_ms
from ingest.base.crashpoints import crash_point
from ingest.base.errors import ConfigError
from ingest.base.logs import emit
from ingest.collect.budget import ByteBudget, Holding
from ingest.collect.pagemap import InlineMapper, MappedPage, Mapper
from ingest.collect.settings import DEFAULT_GROUP_BYTES, DEFAULT_GROUP_EVENTS, SourceConfig
from ingest.okta.client import LinkTrail, OktaClient, Stopped
from ingest.store.db import CommitResult, PageRows, Store
from ingest.store.rawtexts import total_size

OKTA_DEFAULT_LIMIT = 100
# after each commit: (pages, events fetched, result)
PageHook = Callable[[int, int, CommitResult], None]


@dataclass(frozen=True)
class PollResult:
    source: str
    pages: int
    fetched: int
    stored: int
    duplicates: int
    rejected: int
    caught_up: bool
    stopped: bool
    cursor: str | None
    newest_published: datetime | None
    conflicts: int = 0  # events whose uuid was stored with other content

    def summary(self) -> str:
        state = "caught up" if self.caught_up else "stopped early" if self.stopped else "partial"
        clashes = f", {self.conflicts} uuid conflicts kept" if self.conflicts else ""
        return (
            f"{self.source}: {self.pages} pages, {self.fetched} events fetched, "
            f"{self.stored} stored, {self.duplicates} duplicates skipped, "
            f"{self.rejected} rejected{clashes}; {state}"
        )


def start_url(source: SourceConfig, now: datetime, since: datetime | None = None) -> str:
    """The cold-start request: a polling query (no ``until``) from ``now - lookback``."""
    query = urlencode(
        {
            "since": rfc3339_ms(since or now - source.lookback),
            "limit": source.page_limit,
            "sortOrder": "ASCENDING",
        }
    )
    return f"{source.org.logs_url}?{query}"


def page_limit(url: str) -> int:
    """The page size a request asked for (Okta's default when absent)."""
    values = parse_qs(urlsplit(url).query).get("limit")
    try:
        return int(values[0]) if values else OKTA_DEFAULT_LIMIT
    except ValueError:
        return OKTA_DEFAULT_LIMIT


def resume_url(
    source: SourceConfig, store: Store, now: datetime, since: datetime | None = None
) -> str:
    state = store.cursor(source.name)
    if state is None or not state.next_url:
        return start_url(source, now, since)
    if state.org_url != source.org.origin:
        raise ConfigError(
            f"source {source.name!r} has a stored cursor for {state.org_url}, not "
            f"{source.org.origin}; use another source name or another database"
        )
    return state.next_url


def group_limits(source: SourceConfig, store: Store) -> tuple[int, int]:
    """The events and bytes after which a group is committed: the source's
    ``group_events`` and ``group_bytes``, or where both are left at their defaults, what
    suits the store (``Store.default_group``: a row group's worth in a one-shot ingest of a
    file)."""
    if (source.group_events, source.group_bytes) == (DEFAULT_GROUP_EVENTS, DEFAULT_GROUP_BYTES):
        return store.default_group(source.group_events, source.group_bytes)
    return source.group_events, source.group_bytes


def page_rows(source: SourceConfig, page: MappedPage, next_url: str | None) -> PageRows:
    """A mapped page as the store commits it."""
    return PageRows(
        source.name, source.org.origin, next_url, page.batch, page.raw, page.uuids, page.bad
    )


def poll_cycle(
    source: SourceConfig,
    store: Store,
    client: OktaClient,
    clock: Clock,
    stop: threading.Event | None = None,
    since: datetime | None = None,
    on_page: PageHook | None = None,
    mapper: Mapper | None = None,
    budget: ByteBudget | None = None,
) -> PollResult:
    """Fetch and commit pages until a short page or ``next == self`` says we are caught up.

    Two things overlap: a fetching thread gets the next page (its URL is the last page's
    ``next`` link) and has ``mapper`` parse and map it, by default in that thread, while a
    writer thread commits the previous group. Pages are committed in groups of up to
    ``source.group_events`` events or ``source.group_bytes`` bytes of events' JSON,
    whichever comes first (both left at their defaults: what suits the store, see
    ``group_limits``), each group in ONE transaction with the ``next`` URL after
    its last page, strictly in order, at most one group in flight. A crash loses at most the
    groups not yet committed and the rerun fetches them again from the stored cursor; a failed
    commit stops the cycle before any later group is committed. ``since`` overrides the cold
    start (backfill); ``on_page`` sees every committed group. A ``next`` link back to a page
    already requested in this cycle fails it with ``BadResponse`` (``LinkTrail``); the pages
    before it are committed, that page is not. On a lake the source's lease is claimed
    before the cursor is read: a source another process owns fails with ``LeaseLost``
    before anything is fetched. ``budget`` bounds the bytes of pages in flight across the
    sources sharing it (``ingest.collect.budget``): with no room for the next page, the
    pages held are committed first and the fetch waits.
    """
    decode = (mapper or InlineMapper(store.mapping)).decode
    store.claim("source", source.name, clock.now())  # on a lake: LeaseLost if another owns it
    url = resume_url(source, store, clock.now(), since)
    group_size, group_bytes = group_limits(source, store)
    tally = _Tally(source, url, on_page)
    trail = LinkTrail(url)
    caught_up = stopped = False
    # pages arrive mapped, so a group costs its rows, never the parsed events
    pending: list[_PageToCommit] = []
    holding = Holding(budget, source.name)  # this cycle's pages in flight, in bytes
    writer = _Writer(store, clock, tally, holding)
    fetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{source.name}")
    reserved = holding.estimate(page_limit(url))  # the bytes taken for the page requested
    try:
        if holding.take(reserved, stop):  # nothing held yet: waiting is safe
            future = fetcher.submit(client.fetch, url, decode)
        else:
            stopped = True
        while not stopped:
            try:
                page = awake_result(future)
            except Stopped:
                stopped = True
                break
            charge = holding.settle(reserved, len(page.decoded), page.body_bytes)
            crash_point("poll.fetched")
            next_url = page.next_url
            if next_url is None:
                emit("poll.no_next_link", logging.WARNING, source=source.name, url=url)
                next_url = url  # re-reading this page later is harmless: uuids decide
            else:
                source.org.check_link(next_url)
            done = len(page.decoded) < page_limit(url) or next_url == url
            halt = stop is not None and stop.is_set()
            if not done:
                trail.follow(next_url)  # a link back to an earlier page: this page is dropped
            later = False  # the budget has no room for the next page yet
            if not done and not halt:
                reserved = holding.estimate(page_limit(next_url))
                if holding.try_take(reserved):
                    future = fetcher.submit(client.fetch, next_url, decode)
                else:
                    later = True
            tally.fetched += len(page.decoded)
            # the next page is on its way; this one may still be being mapped
            rows = page_rows(source, page.decoded.result(), next_url)
            pending.append(_PageToCommit(len(page.decoded), page.request_id, rows, charge))
            del page, rows
            crash_point("poll.mapped")
            # undecodable elements count too: a page of nothing else is still a page to hold
            size = sum(p.events for p in pending)
            nbytes = sum(
                total_size(p.rows.raw) + sum(len(b.raw) for b in p.rows.bad) for p in pending
            )
            full = size >= group_size or nbytes >= group_bytes
            if done or halt or later or full:
                writer.submit(pending)
                pending = []
            if done:
                caught_up = True
                break
            if halt:
                stopped = True
                break
            if later:
                # every page this cycle holds is being committed, which gives its bytes back
                # without this thread: waiting for room cannot wait for itself
                if not holding.take(reserved, stop):
                    stopped = True
                    break
                future = fetcher.submit(client.fetch, next_url, decode)
            url = next_url
    finally:
        fetcher.shutdown(wait=False, cancel_futures=True)
        # pages already fetched are worth keeping, even when the next one failed; but never
        # after a failed commit, whose cursor would be skipped over
        try:
            writer.finish(pending)
        finally:
            holding.release_all()
    return PollResult(
        source.name,
        tally.pages,
        tally.fetched,
        tally.stored,
        tally.duplicates,
        tally.rejected,
        caught_up,
        stopped,
        tally.cursor,
        tally.newest,
        tally.conflicts,
    )


class _PageToCommit(NamedTuple):
    """A fetched page, mapped into rows, waiting in its group to be committed."""

    events: int  # events on the page, as Okta sent them
    request_id: str | None
    rows: PageRows
    charge: int = 0  # its bytes in the budget, given back once committed


_T = TypeVar("_T")


def awake_result(future: Future[_T]) -> _T:
    """``future.result()``, waking twice a second. Python runs a signal handler on the main
    thread only, once it is out of a blocking wait; a SIGTERM that arrives just before such a
    wait begins would otherwise sit in it until the request ends."""
    while not future.done():
        wait([future], timeout=0.5)
    return future.result()


@dataclass
class _Tally:
    """What a cycle has fetched and committed so far."""

    source: SourceConfig
    cursor: str
    on_page: PageHook | None
    pages: int = 0
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    conflicts: int = 0
    newest: datetime | None = None

    def committed(self, group: _Group, result: CommitResult) -> None:
        self.cursor = group.next_url or self.cursor
        self.pages += group.pages
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.rejected += group.rejected
        self.conflicts += result.conflicts
        if result.newest_published is not None:
            newest = result.newest_published
            self.newest = max(self.newest or newest, newest)
        if self.on_page is not None:
            self.on_page(group.pages, group.events, result)
        emit(
            "poll.pages_stored",
            source=self.source.name,
            pages=group.pages,
            events=group.events,
            stored=result.stored,
            duplicates=result.duplicates,
            conflicts=result.conflicts,
            request_id=group.request_id,
        )


class _Group(NamedTuple):
    """What the tally needs of a group being committed (not its rows, which the commit
    lets go of as soon as it is written)."""

    pages: int
    events: int
    rejected: int
    next_url: str | None
    request_id: str | None

    @classmethod
    def of(cls, group: list[_PageToCommit]) -> _Group:
        rejected = sum(len(p.rows.batch.rejected) + len(p.rows.bad) for p in group)
        events = sum(p.events for p in group)
        return cls(len(group), events, rejected, group[-1].rows.next_url, group[-1].request_id)


class _Writer:
    """Commits groups of pages on one thread, in order, with at most one group in flight.

    DuckDB does its work without Python's lock, so the next group is mapped meanwhile. The
    results are accounted for on the caller's thread; a failed commit is raised there and
    nothing after it is committed.
    """

    def __init__(self, store: Store, clock: Clock, tally: _Tally, holding: Holding) -> None:
        self.store = store
        self.clock = clock
        self.tally = tally
        self.holding = holding
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        self.inflight: tuple[Future[CommitResult], _Group] | None = None
        self.failed = False

    def submit(self, group: list[_PageToCommit]) -> None:
        self.settle()
        if group:
            summary = _Group.of(group)
            future = self.pool.submit(self._commit, group, self.clock.now())
            self.inflight = (future, summary)

    def _commit(self, group: list[_PageToCommit], now: datetime) -> CommitResult:
        """On the commit thread: the group's bytes are given back as soon as it is written
        (or failed), not when the caller next looks."""
        try:
            return self.store.commit_pages([page.rows for page in group], now)
        finally:
            self.holding.release(sum(page.charge for page in group))

    def settle(self) -> None:
        """Wait for the group in flight and account for it."""
        if self.inflight is None:
            return
        future, group = self.inflight
        self.inflight = None
        try:
            result = future.result()
        except BaseException:
            self.failed = True
            raise
        self.tally.committed(group, result)

    def finish(self, rest: list[_PageToCommit]) -> None:
        """Commit what is left (unless a commit failed) and stop the thread."""
        try:
            if not self.failed:
                self.submit(rest)
                self.settle()
        finally:
            self.pool.shutdown(wait=True)

"""Backfill: fill a source's history, with progress, and hand over to polling.

For a source that has no cursor yet, backfill IS the first poll cycle, started further back:
a polling query from ``since`` whose ``next`` links are followed and stored page by page, so
when it is caught up the stored cursor is exactly where normal polling continues (no gap, no
duplicate). For a source that already has a cursor, the history before its first stored event
is read with bounded queries (``since`` + ``until``); those pages are committed through the
normal path (duplicates skipped by uuid) and the cursor is not touched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from ingest.base.clock import Clock, rfc3339_ms
from ingest.collect.pagemap import InlineMapper, Mapper
from ingest.collect.poll import page_rows, poll_cycle
from ingest.collect.settings import SourceConfig
from ingest.okta.client import LinkTrail, OktaClient, Stopped
from ingest.store.db import CommitResult, Store
from ingest.store.lake import open_cursor


@dataclass(frozen=True)
class Progress:
    pages: int
    fetched: int
    stored: int
    rate_limit_waits: int
    position: datetime | None  # newest published time reached
    fraction: float  # 0..1 of the time range covered
    eta_seconds: float | None


@dataclass(frozen=True)
class BackfillResult:
    mode: str  # "cold-start" or "history"
    pages: int
    fetched: int
    stored: int
    caught_up: bool


class _Tracker:
    def __init__(
        self,
        client: OktaClient,
        clock: Clock,
        since: datetime,
        until: datetime,
        report: Callable[[Progress], None] | None,
    ) -> None:
        self.client, self.clock, self.since, self.until = client, clock, since, until
        self.report = report
        self.started = clock.now()
        self.pages = self.fetched = self.stored = 0
        self.position: datetime | None = None

    def __call__(self, pages: int, events: int, result: CommitResult) -> None:
        self.pages += pages
        self.fetched += events
        self.stored += result.stored
        if result.newest_published is not None:
            self.position = max(self.position or result.newest_published, result.newest_published)
        if self.report is None:
            return
        span = (self.until - self.since).total_seconds() or 1.0
        done = ((self.position or self.since) - self.since).total_seconds()
        fraction = min(1.0, max(0.0, done / span))
        elapsed = (self.clock.now() - self.started).total_seconds()
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.001 else None
        self.report(
            Progress(
                self.pages,
                self.fetched,
                self.stored,
                self.client.stats.rate_limited,
                self.position,
                fraction,
                eta,
            )
        )


def backfill(
    source: SourceConfig,
    store: Store,
    client: OktaClient,
    clock: Clock,
    since: datetime,
    report: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
    mapper: Mapper | None = None,
) -> BackfillResult:
    now = clock.now()
    store.claim("source", source.name, now)  # on a lake: LeaseLost if another owns it
    state = store.cursor(source.name)
    if state is None or not state.next_url:
        tracker = _Tracker(client, clock, since, now, report)
        result = poll_cycle(
            source, store, client, clock, stop, since=since, on_page=tracker, mapper=mapper
        )
        return BackfillResult(
            "cold-start", result.pages, result.fetched, result.stored, result.caught_up
        )
    first = (
        open_cursor(store.con)
        .execute("SELECT min(published) FROM events WHERE source = ?", [source.name])
        .fetchall()[0][0]
    )
    until = first or now
    tracker = _Tracker(client, clock, since, until, report)
    caught_up = fetch_range(source, store, client, clock, since, until, tracker, stop, mapper)
    return BackfillResult("history", tracker.pages, tracker.fetched, tracker.stored, caught_up)


def bounded_url(source: SourceConfig, since: datetime, until: datetime) -> str:
    query = urlencode(
        {
            "since": rfc3339_ms(since),
            "until": rfc3339_ms(until),
            "limit": source.page_limit,
            "sortOrder": "ASCENDING",
        }
    )
    return f"{source.org.logs_url}?{query}"


def fetch_range(
    source: SourceConfig,
    store: Store,
    client: OktaClient,
    clock: Clock,
    since: datetime,
    until: datetime,
    on_page: Callable[[int, int, CommitResult], None],
    stop: threading.Event | None = None,
    mapper: Mapper | None = None,
) -> bool:
    """Commit every event Okta returns for a bounded query (cursor untouched); True when
    the last page was reached. A ``next`` link back to a page already read fails with
    ``BadResponse`` before that page is committed."""
    decode = (mapper or InlineMapper(store.mapping)).decode
    first = bounded_url(source, since, until)
    trail = LinkTrail(first)
    url: str | None = first
    while url is not None:
        if stop is not None and stop.is_set():
            return False
        try:
            page = client.fetch(url, decode)
        except Stopped:
            return False
        if page.next_url is not None and page.next_url != url:
            source.org.check_link(page.next_url)
            trail.follow(page.next_url)  # a link back: this page is not committed either
        rows = page_rows(source, page.decoded.result(), None)
        on_page(1, len(page.decoded), store.commit_page(rows, clock.now()))
        if page.next_url == url:
            break  # no further page: said the way a caught-up poll says it
        url = page.next_url
    return True

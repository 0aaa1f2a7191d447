"""One poll cycle of one source: follow Okta's ``next`` links until caught up.

The CLI's ``poll`` and the daemon's scheduled job both call :func:`poll_cycle`. Each page is
mapped and committed together with the ``next`` URL that follows it, and the next page is
requested only after that commit, so a crash anywhere leaves the page and its cursor, or
neither.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from ingest.clock import Clock, rfc3339
from ingest.config import SourceConfig
from ingest.errors import ConfigError
from ingest.faults import crash_point
from ingest.logs import emit
from ingest.mapping import CompiledMapping
from ingest.okta.client import OktaClient, Page, Stopped
from ingest.store.db import CommitResult, PageRows, Store

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

    def summary(self) -> str:
        state = "caught up" if self.caught_up else "stopped early" if self.stopped else "partial"
        return (
            f"{self.source}: {self.pages} pages, {self.fetched} events fetched, "
            f"{self.stored} stored, {self.duplicates} duplicates skipped, "
            f"{self.rejected} rejected; {state}"
        )


def start_url(source: SourceConfig, now: datetime, since: datetime | None = None) -> str:
    """The cold-start request: a polling query (no ``until``) from ``now - lookback``."""
    query = urlencode(
        {
            "since": rfc3339(since or now - source.lookback),
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


def _rows(
    source: SourceConfig, mapping: CompiledMapping, page: Page, next_url: str | None
) -> PageRows:
    events = page.events
    raw = [orjson.dumps(event).decode() for event in events]
    uuids = [
        e.get("uuid") if isinstance(e, dict) and isinstance(e.get("uuid"), str) else None
        for e in events
    ]
    batch = mapping.apply_batch(events)
    return PageRows(source.name, source.org.origin, next_url, batch, raw, uuids)


def poll_cycle(
    source: SourceConfig,
    store: Store,
    client: OktaClient,
    clock: Clock,
    stop: threading.Event | None = None,
    since: datetime | None = None,
    on_page: PageHook | None = None,
) -> PollResult:
    """Fetch and commit pages until a short page or ``next == self`` says we are caught up.

    While one group of pages is mapped and committed, the next page is already being fetched
    (its URL is the last page's ``next`` link, known before the commit); pages are committed
    in groups of up to ``source.group_events`` events, each group in one transaction with the
    ``next`` URL after its last page. A crash loses at most the group not yet committed, and
    the rerun fetches it again from the stored cursor. ``since`` overrides the cold start
    (backfill); ``on_page`` sees every committed group.
    """
    url = resume_url(source, store, clock.now(), since)
    pages = fetched = stored = duplicates = rejected = 0
    newest: datetime | None = None
    caught_up = stopped = False
    cursor = url
    # (events on the page, its request id, its rows): the parsed events themselves are
    # dropped as soon as they are mapped, so a group costs its rows, not its dicts
    pending: list[tuple[int, str | None, PageRows]] = []

    def commit() -> None:
        nonlocal pages, stored, duplicates, rejected, newest, cursor
        if not pending:
            return
        result = store.commit_pages([rows for _, _, rows in pending], clock.now())
        cursor = pending[-1][2].next_url or cursor
        pages += len(pending)
        stored += result.stored
        duplicates += result.duplicates
        rejected += sum(len(rows.batch.rejected) for _, _, rows in pending)
        if result.newest_published is not None:
            newest = max(newest or result.newest_published, result.newest_published)
        events = sum(count for count, _, _ in pending)
        if on_page is not None:
            on_page(len(pending), events, result)
        emit(
            "poll.pages_stored",
            source=source.name,
            pages=len(pending),
            events=events,
            stored=result.stored,
            duplicates=result.duplicates,
            request_id=pending[-1][1],
        )
        pending.clear()

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{source.name}")
    future = pool.submit(client.fetch, url)
    try:
        while True:
            try:
                page = future.result()
            except Stopped:
                stopped = True
                break
            crash_point("poll.fetched")
            next_url = page.next_url
            if next_url is None:
                emit("poll.no_next_link", logging.WARNING, source=source.name, url=url)
                next_url = url  # re-reading this page later is harmless: uuids decide
            else:
                source.org.check_link(next_url)
            done = len(page.events) < page_limit(url) or next_url == url
            halt = stop is not None and stop.is_set()
            if not done and not halt:
                future = pool.submit(client.fetch, next_url)
            fetched += len(page.events)
            rows = _rows(source, store.mapping, page, next_url)
            pending.append((len(page.events), page.request_id, rows))
            del page
            crash_point("poll.mapped")
            size = sum(len(rows.raw) for _, _, rows in pending)
            if done or halt or size >= source.group_events:
                commit()
            if done:
                caught_up = True
                break
            if halt:
                stopped = True
                break
            url = next_url
    finally:
        commit()  # pages already fetched are worth keeping, even when the next one failed
        pool.shutdown(wait=False, cancel_futures=True)
    return PollResult(
        source.name,
        pages,
        fetched,
        stored,
        duplicates,
        rejected,
        caught_up,
        stopped,
        cursor,
        newest,
    )

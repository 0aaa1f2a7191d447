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
PageHook = Callable[[Page, CommitResult], None]


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

    ``since`` overrides the cold start (backfill); ``on_page`` sees every committed page.
    """
    url = resume_url(source, store, clock.now(), since)
    pages = fetched = stored = duplicates = rejected = 0
    newest: datetime | None = None
    caught_up = stopped = False
    cursor = url
    while True:
        if stop is not None and stop.is_set():
            stopped = True
            break
        try:
            page = client.fetch(url)
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
        rows = _rows(source, store.mapping, page, next_url)
        crash_point("poll.mapped")
        result = store.commit_page(rows, clock.now())
        cursor = next_url
        pages += 1
        fetched += len(page.events)
        stored += result.stored
        duplicates += result.duplicates
        rejected += len(rows.batch.rejected)
        if result.newest_published is not None:
            newest = max(newest or result.newest_published, result.newest_published)
        if on_page is not None:
            on_page(page, result)
        emit(
            "poll.page_stored",
            source=source.name,
            events=len(page.events),
            stored=result.stored,
            duplicates=result.duplicates,
            rejected=len(rows.batch.rejected),
            request_id=page.request_id,
        )
        if len(page.events) < page_limit(url) or next_url == url:
            caught_up = True
            break
        url = next_url
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

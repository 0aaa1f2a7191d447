"""Completeness check: re-read a recent, closed window and fetch anything the store lacks.

Polling by Okta's ``next`` links should miss nothing; this job proves it, and repairs it if
not. It runs a bounded query (``since``/``until``, ordered by ``published``) over a window that
ended ``delay`` ago, commits every page through the normal path (events already stored are
skipped by uuid, so what gets stored is exactly what was missing), and reports how many were
missing and how many in the window had arrived late (stored more than ``late_after`` after
their ``published`` time).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.base.clock import Clock
from ingest.base.logs import emit
from ingest.collect.backfill import fetch_range
from ingest.collect.settings import SourceConfig
from ingest.okta.client import OktaClient
from ingest.store.db import CommitResult, Store
from ingest.store.lake import open_cursor


@dataclass(frozen=True)
class CompletenessResult:
    since: datetime
    until: datetime
    fetched: int
    missing: int
    late: int
    complete: bool  # the bounded query was read to its end


def check_window(
    source: SourceConfig,
    store: Store,
    client: OktaClient,
    clock: Clock,
    window: timedelta,
    delay: timedelta,
    late_after: timedelta = timedelta(minutes=5),
    stop: threading.Event | None = None,
) -> CompletenessResult:
    until = clock.now() - delay
    since = until - window
    counts = {"fetched": 0, "missing": 0}

    def on_page(pages: int, events: int, result: CommitResult) -> None:
        counts["fetched"] += events
        counts["missing"] += result.stored

    # counted before the repair: events that polling itself collected late
    late = (
        open_cursor(store.con)
        .execute(
            "SELECT count(*) FROM events WHERE source = $s AND published >= $a "
            "AND published < $b AND ingested_at - published > $late",
            {"s": source.name, "a": since, "b": until, "late": late_after},
        )
        .fetchall()[0][0]
    )
    complete = fetch_range(source, store, client, clock, since, until, on_page, stop)
    result = CompletenessResult(since, until, counts["fetched"], counts["missing"], late, complete)
    emit(
        "completeness.checked",
        logging.WARNING if result.missing else logging.INFO,
        source=source.name,
        since=since.isoformat(),
        until=until.isoformat(),
        fetched=result.fetched,
        missing=result.missing,
        late=result.late,
        complete=complete,
    )
    return result

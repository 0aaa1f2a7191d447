"""Retention: delete events older than the configured age, a day at a time.

Each slice is its own short transaction under the store's lock, so polling commits slip in
between slices and are never held up for long. DuckDB reuses the space freed by deleted rows
after a checkpoint, so with retention on the file stops growing once it holds one retention
period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.base.clock import Clock
from ingest.base.logs import emit
from ingest.store.db import Store

SLICE = timedelta(days=1)


@dataclass(frozen=True)
class RetentionResult:
    events_deleted: int
    rejects_deleted: int
    cutoff: datetime


def apply_retention(store: Store, keep: timedelta, clock: Clock) -> RetentionResult:
    cutoff = clock.now() - keep
    oldest = store.con.cursor().execute("SELECT min(published) FROM events").fetchall()[0][0]
    deleted = 0
    start = oldest
    while start is not None and start < cutoff:
        end = min(start + SLICE, cutoff)
        with store.transaction() as tx:
            rows = tx.execute(
                "DELETE FROM events WHERE published >= $a AND published < $b",
                {"a": start, "b": end},
            ).fetchall()
        deleted += int(rows[0][0]) if rows else 0
        start = end
    with store.transaction() as tx:
        rows = tx.execute(
            "DELETE FROM rejects WHERE first_seen < $cut AND resolved_at IS NOT NULL",
            {"cut": cutoff},
        ).fetchall()
    rejects = int(rows[0][0]) if rows else 0
    if deleted or rejects:
        with store.transaction_lock():
            store.con.execute("CHECKPOINT")
    emit(
        "retention.applied",
        logging.INFO,
        events_deleted=deleted,
        rejects_deleted=rejects,
        cutoff=cutoff.isoformat(),
    )
    return RetentionResult(deleted, rejects, cutoff)

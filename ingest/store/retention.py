"""Retention: delete events older than the configured age, a day at a time.

Each slice is its own short transaction under the store's lock, so polling commits slip in
between slices and are never held up for long. DuckDB reuses the space freed by deleted rows
after a checkpoint, so with retention on the file stops growing once it holds one retention
period.

On a lake, events are partitioned by day of ``published``, and retention deletes whole UTC
days only: the cutoff is rounded down to midnight (a lake keeps up to a day more than
``retention``), so each slice empties the day's files and they leave the snapshot outright
instead of gaining delete files; housekeeping removes them from the data path once their
snapshots expire. A slice that loses a race with another writer's delete (another daemon's
retention, a remap) is run again; nothing is checkpointed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from ingest.base.clock import Clock
from ingest.base.logs import emit
from ingest.store.db import Store
from ingest.store.lake import open_cursor

SLICE = timedelta(days=1)


@dataclass(frozen=True)
class RetentionResult:
    events_deleted: int
    rejects_deleted: int
    cutoff: datetime


def apply_retention(store: Store, keep: timedelta, clock: Clock) -> RetentionResult:
    cutoff = clock.now() - keep
    table = store.events_table
    if store.lake is not None:  # whole days: each day is its own files
        cutoff = _midnight(cutoff)
    oldest = open_cursor(store.con).execute("SELECT min(published) FROM events").fetchall()[0][0]
    deleted = 0
    start = oldest
    if start is not None and store.lake is not None:
        start = _midnight(start)
    while start is not None and start < cutoff:
        end = min(start + SLICE, cutoff)
        deleted += _delete(
            store,
            f"DELETE FROM {table} WHERE published >= $a AND published < $b",
            {"a": start, "b": end},
        )
        start = end
    rejects = _delete(
        store,
        "DELETE FROM rejects WHERE first_seen < $cut AND resolved_at IS NOT NULL",
        {"cut": cutoff},
    )
    if (deleted or rejects) and store.lake is None:
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


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _delete(store: Store, sql: str, params: dict[str, Any]) -> int:
    """Run one DELETE in a transaction of its own (again if it lost a race); rows deleted."""

    def work(tx: duckdb.DuckDBPyConnection) -> int:
        rows = tx.execute(sql, params).fetchall()
        return int(rows[0][0]) if rows else 0

    return store.retrying(work)

"""Deliver stored events to one sink, at least once, moving its cursor only on acceptance.

Each sink has a cursor over ``events.ingest_seq`` in ``export_cursors``. One export cycle
reads the next batch after the cursor (bounded in events and bytes), formats it, hands it to
the sink, and moves the cursor in a transaction only after the sink accepted the batch. A
crash between the two re-sends that one batch: duplicates are bounded by one batch and carry
the event's uuid. A sink that keeps failing is retried with capped, jittered backoff for
``retry_for`` seconds, then the cycle ends and the next scheduled cycle tries again; polling
and other sinks are never held up.

On a lake the sink has one owner at a time: the cycle takes (or renews) the sink's lease
before it reads, and every move of the cursor renews it in the same transaction, so a second
process delivering to the same sink cannot move the cursor (it stops with the lease's owner
named, and its last batch may reach the sink once more, as after a crash). The lake keeps the
cursor as an append-only log (``export_cursor_log``, running totals in each row) behind the
``export_cursors`` view, so sinks of several daemons never conflict.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from ingest.base.backoff import Backoff
from ingest.base.clock import Clock
from ingest.base.crashpoints import crash_point
from ingest.base.errors import ExportError, LeaseLost, SinkRejected
from ingest.base.logs import emit
from ingest.base.timeparse import parse_time
from ingest.export.formats import Formatter, columns_for, format_batch, formatter
from ingest.export.reader import last_seq, read_after, seq_before
from ingest.export.sinks.base import Sink
from ingest.store.db import Store
from ingest.store.lake import open_cursor


@dataclass(frozen=True)
class Delivery:
    """How one sink is fed: format, start, batch bounds, retries."""

    sink: str
    format: str = "raw"
    start: str = "beginning"  # beginning | now | an RFC 3339 time
    batch_events: int = 1000
    batch_bytes: int = 4 << 20
    fields: dict[str, Any] = field(default_factory=dict)
    retry_for: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0


@dataclass(frozen=True)
class ExportResult:
    sink: str
    delivered: int
    batches: int
    caught_up: bool
    error: str | None = None
    owned_elsewhere: bool = False  # a lake's sink whose lease another process holds


def cursor(store: Store, delivery: Delivery, now: datetime) -> int:
    """The sink's cursor, created at its configured start the first time."""
    con = open_cursor(store.con)
    try:
        rows = con.execute(
            "SELECT last_seq FROM export_cursors WHERE sink = ?", [delivery.sink]
        ).fetchall()
    finally:
        con.close()
    if rows:
        return int(rows[0][0])
    con = open_cursor(store.con)
    start = delivery.start.strip().lower()
    if start == "beginning":
        seq = 0
    elif start == "now":
        seq = last_seq(con)
    else:
        seq = seq_before(con, parse_time(delivery.start, now, f"sinks.{delivery.sink}.start"))
    con.close()
    if store.lake is None:
        with store.transaction() as tx:
            tx.execute(
                "INSERT INTO export_cursors (sink, last_seq, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (sink) DO NOTHING",
                [delivery.sink, seq, now],
            )
        return seq

    def create(tx: duckdb.DuckDBPyConnection) -> int:
        store.fence(tx, "sink", delivery.sink, now)
        found = tx.execute(
            "SELECT last_seq FROM export_cursors WHERE sink = ?", [delivery.sink]
        ).fetchall()
        if found:  # a process that held the sink before created it meanwhile
            return int(found[0][0])
        tx.execute(
            "INSERT INTO export_cursor_log (sink, last_seq, delivered, batches, created_at, "
            "owner) VALUES (?, ?, 0, 0, ?, ?)",
            [delivery.sink, seq, now, store.owner],
        )
        return seq

    return store.retrying(create)


def export_cycle(
    delivery: Delivery,
    store: Store,
    sink: Sink,
    clock: Clock,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> ExportResult:
    """Send everything after the cursor; return when caught up, stopped, or the sink is down."""
    rng = rng or random.Random()
    fmt = formatter(delivery.format, delivery.fields)
    columns = columns_for(delivery.format, store.mapping)
    try:
        store.hold("sink", delivery.sink, clock.now())  # a lake's sink: one owner at a time
        after = cursor(store, delivery, clock.now())
    except LeaseLost as err:
        emit("export.not_owner", logging.INFO, sink=delivery.sink, error=str(err))
        return ExportResult(delivery.sink, 0, 0, False, str(err), owned_elsewhere=True)
    reader = open_cursor(store.con)
    try:
        return _deliver(delivery, store, sink, clock, stop, rng, fmt, columns, after, reader)
    finally:
        reader.close()


def _deliver(
    delivery: Delivery,
    store: Store,
    sink: Sink,
    clock: Clock,
    stop: threading.Event | None,
    rng: random.Random,
    fmt: Formatter,
    columns: Sequence[str],
    after: int,
    reader: duckdb.DuckDBPyConnection,
) -> ExportResult:
    delivered = batches = 0
    while not (stop is not None and stop.is_set()):
        stored = read_after(reader, after, delivery.batch_events, columns)
        if not stored:
            sink.flush()
            return ExportResult(delivery.sink, delivered, batches, True)
        lines = format_batch(fmt, stored)
        lines, stored = _bound_bytes(lines, stored, delivery.batch_bytes)
        error = _send(delivery, sink, lines, clock, stop, rng)
        try:
            if error is not None:
                _record_error(store, delivery.sink, error, clock.now())
                return ExportResult(delivery.sink, delivered, batches, False, error)
            crash_point("export.sent")
            after = stored[-1].seq
            _advance(store, delivery.sink, after, len(lines), clock.now())
        except LeaseLost as err:  # the batch went out; the new owner sends it again
            emit("export.lease_lost", logging.WARNING, sink=delivery.sink, error=str(err))
            return ExportResult(delivery.sink, delivered, batches, False, str(err))
        crash_point("export.advanced")
        delivered += len(lines)
        batches += 1
    return ExportResult(delivery.sink, delivered, batches, False)


def _bound_bytes(
    lines: list[bytes], stored: list[Any], limit: int
) -> tuple[list[bytes], list[Any]]:
    """Cut the batch at ``limit`` bytes (at least one line) so one POST stays bounded."""
    total = 0
    for i, line in enumerate(lines):
        total += len(line) + 1
        if total > limit and i > 0:
            return lines[:i], stored[:i]
    return lines, stored


def _send(
    delivery: Delivery,
    sink: Sink,
    lines: list[bytes],
    clock: Clock,
    stop: threading.Event | None,
    rng: random.Random,
) -> str | None:
    """Send with retries; None on success, else the last error (the cycle gives up)."""
    backoff = Backoff(delivery.backoff_initial, delivery.backoff_max, rng=rng)
    started = clock.now()
    attempt = 0
    while True:
        try:
            sink.send(lines)
            return None
        except SinkRejected as err:
            emit("export.rejected", logging.ERROR, sink=delivery.sink, error=str(err))
            return str(err)
        except ExportError as err:  # SinkUnavailable, or anything else a sink raised
            attempt += 1
            elapsed = (clock.now() - started).total_seconds()
            if elapsed >= delivery.retry_for:
                emit("export.gave_up", logging.ERROR, sink=delivery.sink, error=str(err))
                return str(err)
            delay = backoff.delay(attempt)
            hinted = getattr(err, "retry_after", None)
            if isinstance(hinted, int | float) and hinted > 0:
                delay = min(float(hinted), delivery.retry_for)
            emit(
                "export.retry",
                logging.WARNING,
                sink=delivery.sink,
                attempt=attempt,
                wait_s=round(delay, 3),
                error=str(err),
            )
            if clock.wait(delay, stop):
                return "stopped"


# The lake's cursor moves by a new row of ``export_cursor_log`` made from the newest one.
_LAKE_CURSOR_ROW = """
INSERT INTO export_cursor_log (sink, last_seq, delivered, batches, last_success, last_error,
                               last_error_at, created_at, owner)
SELECT sink, {last_seq}, delivered + {delivered}, batches + {batches}, {last_success},
       {last_error}, {last_error_at}, created_at, $owner
FROM export_cursors WHERE sink = $sink
"""


def _advance(store: Store, sink: str, seq: int, count: int, now: datetime) -> None:
    if store.lake is None:
        with store.transaction() as tx:
            tx.execute(
                "UPDATE export_cursors SET last_seq = ?, delivered = delivered + ?, "
                "batches = batches + 1, last_success = ?, last_error = NULL WHERE sink = ?",
                [seq, count, now, sink],
            )
        return
    sql = _LAKE_CURSOR_ROW.format(
        last_seq="$seq",
        delivered="$count",
        batches="1",
        last_success="$now",
        last_error="NULL",
        last_error_at="last_error_at",
    )
    params = {"seq": seq, "count": count, "now": now, "sink": sink, "owner": store.owner}
    store.retrying(lambda tx: _lake_cursor_row(store, tx, sink, now, sql, params))


def _record_error(store: Store, sink: str, error: str, now: datetime) -> None:
    if store.lake is None:
        with store.transaction() as tx:
            tx.execute(
                "UPDATE export_cursors SET last_error = ?, last_error_at = ? WHERE sink = ?",
                [error[:500], now, sink],
            )
        return
    sql = _LAKE_CURSOR_ROW.format(
        last_seq="last_seq",
        delivered="0",
        batches="0",
        last_success="last_success",
        last_error="$error",
        last_error_at="$now",
    )
    params = {"error": error[:500], "now": now, "sink": sink, "owner": store.owner}
    store.retrying(lambda tx: _lake_cursor_row(store, tx, sink, now, sql, params))


def _lake_cursor_row(
    store: Store,
    tx: duckdb.DuckDBPyConnection,
    sink: str,
    now: datetime,
    sql: str,
    params: dict[str, Any],
) -> None:
    store.fence(tx, "sink", sink, now)
    tx.execute(sql, params)

"""Read-only, bounded access to the store for ``sql``, feeds, ``status`` and the API.

Every query runs on a cursor of its own (never the writer's connection object) inside
``BEGIN TRANSACTION READ ONLY``: DuckDB itself then refuses any write, including those hidden
behind ``EXPLAIN ANALYZE``; a data-modifying CTE (``WITH d AS (DELETE ... RETURNING 1)``) does
not even parse on DuckDB 1.5.5, the version oktaduck pins, and is refused as a write. Settings
cannot be changed from a query either: the store's configuration is locked once it is open (see
``ingest.store.db.lock_configuration``).

A watchdog interrupts the query (``interrupt()``) once its time limit has passed, while it
executes or while its rows are fetched, and ``Result.cancel()`` does the same at once from any
thread. The cursor and its transaction end when the rows are exhausted, on an error, and on
``Result.close()``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ingest.base.errors import (
    OktaduckError,
    QueryCancelled,
    QueryRefused,
    QueryTimeout,
    StoreError,
    StoreInvalidated,
)
from ingest.store.db import DEFAULT_MEMORY_LIMIT, connect, lock_configuration
from ingest.store.guard import check_read_only
from ingest.store.lake import LakeConfig, connect_lake, open_cursor, stale, translate_lake
from ingest.store.limits import DEFAULT_LIMITS, QueryLimits, shown_seconds

__all__ = [
    "Cancel",
    "QueryLimits",
    "ReadOnlyCursor",
    "Result",
    "cancelled_by_ctrl_c",
    "open_read_only",
    "run_query",
    "run_user_query",
    "sink_status",
    "status",
]

_BATCH = 1000
# After its deadline the watchdog interrupts again at this interval until the query is gone
# (an interrupt that lands between two steps would otherwise be lost), for at most _REPEATS
# times: the reader checks before every step as well, so nothing new starts after that.
_REINTERRUPT = 0.05
_REPEATS = 200
# What DuckDB says when the read-only transaction, the locked configuration or the disabled
# file access refuses a statement the guard let through, and when its parser refuses a
# data-modifying CTE.
_REFUSALS = (
    "transaction is launched in read-only mode",
    "the configuration has been locked",
    "file system operations are disabled",
    "attached in read-only mode",
    "A CTE needs a SELECT",
)


def open_read_only(target: Path | LakeConfig) -> duckdb.DuckDBPyConnection:
    """The store opened for reading only, with its settings locked: a database file opened
    read-only with file access off, or a lake attached READ_ONLY to a DuckDB of its own (no
    daemon needed; file access is limited to its data path, and each query sees the snapshot
    committed when its transaction began, whatever the writers commit meanwhile)."""
    if not isinstance(target, LakeConfig):
        return connect(target, read_only=True)
    con = connect_lake(target, read_only=True)
    try:
        con.execute(f"SET memory_limit = '{DEFAULT_MEMORY_LIMIT}'")
        lock_configuration(con)
    except duckdb.Error as err:
        con.close()
        raise translate_lake(err, target) from None
    return con


class ReadOnlyCursor:
    """A cursor of ``con``'s database inside a READ ONLY transaction, interrupted when
    ``limits.timeout`` has passed or ``cancel()`` is called, from any thread.

    ``close()`` ends the transaction and the cursor; it is idempotent and may race with
    ``cancel()`` and the watchdog.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, limits: QueryLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._reason: str | None = None  # "timeout" or "cancelled", once stopped
        self._closed = False
        self._wake = threading.Event()
        try:
            self.cursor = open_cursor(con)
        except duckdb.Error as err:
            raise _translate(err) from None
        try:
            self.cursor.execute("BEGIN TRANSACTION READ ONLY")
        except duckdb.Error as err:
            self.cursor.close()
            raise _translate(err) from None
        self._watchdog = threading.Thread(target=self._watch, name="query-timer", daemon=True)
        self._watchdog.start()

    def cancel(self) -> None:
        """Interrupt the query now; what it does next raises QueryCancelled."""
        with self._lock:
            if self._reason is None:
                self._reason = "cancelled"
        self._wake.set()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        # Whatever still runs stops first: when Ctrl-C reaches DuckDB 1.5.5's client during a
        # query, it raises "Query interrupted" but may leave the query running, and ROLLBACK
        # would wait for it to finish (a huge join: for ever). Nothing running: a no-op.
        with contextlib.suppress(duckdb.Error):
            self.cursor.interrupt()
        with contextlib.suppress(duckdb.Error):
            self.cursor.execute("ROLLBACK")  # a read-only transaction has nothing to keep
        with contextlib.suppress(duckdb.Error):
            self.cursor.close()

    def stopped(self) -> OktaduckError | None:
        """The error for a query that was interrupted (timeout or cancel), else None."""
        if self._reason == "timeout":
            limit = shown_seconds(self.limits.timeout)
            return QueryTimeout(
                f"query stopped after its time limit of {limit}; narrow it, or raise the "
                "limit with --timeout or `timeout` under [query] in the config file"
            )
        if self._reason == "cancelled":
            return QueryCancelled("query cancelled")
        return None

    def check(self) -> None:
        """Raise QueryTimeout or QueryCancelled once the query has been stopped."""
        if (stopped := self.stopped()) is not None:
            raise stopped

    def error(self, err: duckdb.Error) -> OktaduckError:
        """One error for a DuckDB exception raised while this cursor's query ran."""
        return self.stopped() or _translate(err)

    def _watch(self) -> None:
        if not self._wake.wait(min(self.limits.timeout, threading.TIMEOUT_MAX)):
            with self._lock:
                if self._reason is None:
                    self._reason = "timeout"
        for _ in range(_REPEATS):
            with self._lock:
                if self._closed or self._reason is None:
                    return
                with contextlib.suppress(duckdb.Error):
                    self.cursor.interrupt()
            self._wake.clear()
            self._wake.wait(_REINTERRUPT)

    def __enter__(self) -> ReadOnlyCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Cancel:
    """Hand one to ``run_query``/``run_user_query``/``run_feed`` to stop the query from
    another thread even before its Result exists (while DuckDB still executes it, e.g. an
    aggregate over a huge join): ``cancel()`` interrupts it at once and the call raises
    QueryCancelled. Cancelling before the query starts stops it as it starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers: list[ReadOnlyCursor] = []
        self.cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            readers = list(self._readers)
        for reader in readers:
            reader.cancel()

    def attach(self, reader: ReadOnlyCursor) -> None:
        with self._lock:
            if not self.cancelled:
                self._readers.append(reader)
                return
        reader.cancel()


@contextlib.contextmanager
def cancelled_by_ctrl_c(cancel: Cancel) -> Iterator[None]:
    """While the block runs, Ctrl-C (SIGINT) cancels the query at once.

    Python runs its signal handlers between bytecodes, which the main thread never reaches
    while DuckDB executes a query; the signal's byte on a wakeup pipe is seen by a thread
    that cancels the query, and KeyboardInterrupt then follows as usual. Only in the main
    thread (elsewhere the block just runs).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:
        os.close(read_end)
        os.close(write_end)
        yield
        return

    def watch() -> None:
        while data := os.read(read_end, 64):  # empty once the block is over
            if signal.SIGINT in data:
                cancel.cancel()

    watcher = threading.Thread(target=watch, name="query-ctrl-c", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write_end)
        watcher.join(5)
        os.close(read_end)


class Result:
    """A query's columns and its rows, streamed in batches so a large answer is never held
    at once. ``rows`` ends the transaction and closes the cursor when exhausted or on an
    error; callers that stop early call ``close()`` (in a ``finally``)."""

    def __init__(
        self,
        columns: list[str],
        json_columns: frozenset[str],
        rows: Iterator[tuple[Any, ...]],
        reader: ReadOnlyCursor | None = None,
    ) -> None:
        self.columns = columns
        self.json_columns = json_columns
        self.rows = rows
        self._reader = reader

    def cancel(self) -> None:
        """Interrupt the query now, from any thread; ``rows`` then raises QueryCancelled."""
        if self._reader is not None:
            self._reader.cancel()

    def close(self) -> None:
        """End the read-only transaction and close the cursor (idempotent)."""
        if self._reader is not None:
            self._reader.close()


def run_user_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    limits: QueryLimits = DEFAULT_LIMITS,
    *,
    cancel: Cancel | None = None,
) -> Result:
    """Run SQL typed by a person: one read-only SELECT (or EXPLAIN of one), never touching
    files or settings, within ``limits``."""
    return _run(con, sql, None, limits, cancel, guard=True)


def run_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any] | None = None,
    limits: QueryLimits = DEFAULT_LIMITS,
    *,
    cancel: Cancel | None = None,
) -> Result:
    """Run ``sql`` with ``params`` (the program's own SQL: feeds, status) in a read-only
    transaction on a cursor of its own, within ``limits``."""
    return _run(con, sql, params, limits, cancel, guard=False)


def _run(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any] | None,
    limits: QueryLimits,
    cancel: Cancel | None,
    *,
    guard: bool,
) -> Result:
    reader = ReadOnlyCursor(con, limits)
    if cancel is not None:
        cancel.attach(reader)
    try:
        reader.check()
        if guard:
            check_read_only(reader.cursor, sql)
        reader.check()
        cur = reader.cursor.execute(sql, params or {})
        description = cur.description or []
        reader.check()
    except duckdb.Error as err:
        reader.close()
        raise reader.error(err) from None
    except RuntimeError as err:
        reader.close()
        if _interrupted(err):
            raise reader.stopped() or QueryCancelled("query cancelled") from None
        raise
    except BaseException:
        reader.close()
        raise
    columns = [d[0] for d in description]
    json_columns = frozenset(d[0] for d in description if str(d[1]) == "JSON")
    return Result(columns, json_columns, _rows(reader), reader)


def _rows(reader: ReadOnlyCursor) -> Iterator[tuple[Any, ...]]:
    try:
        while True:
            reader.check()
            try:
                batch = reader.cursor.fetchmany(_BATCH)
            except duckdb.Error as err:
                raise reader.error(err) from None
            except RuntimeError as err:
                if _interrupted(err):
                    raise reader.stopped() or QueryCancelled("query cancelled") from None
                raise
            reader.check()
            if not batch:
                return
            yield from batch
    finally:
        reader.close()


def _interrupted(err: RuntimeError) -> bool:
    """DuckDB's Python client raises a bare RuntimeError("Query interrupted") when it sees a
    signal (Ctrl-C) while the query runs, instead of its InterruptException."""
    return "interrupted" in str(err).lower()


def _translate(err: duckdb.Error) -> OktaduckError:
    text = str(err)
    first = text.splitlines()[0] if text else type(err).__name__
    if any(refusal in text for refusal in _REFUSALS):
        return QueryRefused(f"queries only read the store: {first}")
    if isinstance(err, duckdb.InterruptException):
        return QueryCancelled("query cancelled")
    if stale(err):
        return StoreInvalidated(f"query failed: {first} (the connection must be opened again)")
    return StoreError(f"query failed: {first}")


STATUS_SQL = """
SELECT c.source,
       c.org_url,
       c.events AS events_stored,
       c.pages,
       c.duplicates,
       coalesce(r.open_rejects, 0) AS rejects,
       coalesce(k.conflicts, 0) AS conflicts,
       c.newest_published,
       c.last_commit,
       date_diff('second', c.last_commit, $now) AS cursor_age_s,
       date_diff('second', c.newest_published, $now) AS lag_s,
       regexp_extract(c.next_url, '[?&]after=([^&]*)', 1) AS after
FROM cursors c
LEFT JOIN (
    SELECT source, count(*) AS open_rejects FROM rejects
    WHERE resolved_at IS NULL GROUP BY source
) r USING (source)
LEFT JOIN (SELECT source, count(*) AS conflicts FROM conflicts GROUP BY source) k USING (source)
ORDER BY c.source
"""


def status(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    limits: QueryLimits = DEFAULT_LIMITS,
    *,
    cancel: Cancel | None = None,
) -> Result:
    sql = STATUS_SQL
    # a database last written before the conflicts table (schema 3) is read as it is
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'conflicts'")
    if not found.fetchall()[0][0]:
        sql = "WITH conflicts AS (SELECT NULL::VARCHAR AS source WHERE false)" + STATUS_SQL
    return run_query(con, sql, {"now": now}, limits, cancel=cancel)


def sink_status(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    limits: QueryLimits = DEFAULT_LIMITS,
    *,
    cancel: Cancel | None = None,
) -> Result:
    return run_query(con, SINK_STATUS_SQL, {"now": now}, limits, cancel=cancel)


# Each sink's place in the events: what ``sink_status`` and ``/metrics`` report.
SINK_STATUS_SQL = """
SELECT x.sink,
       x.last_seq,
       m.max_seq - x.last_seq AS events_behind,
       coalesce(date_diff('second', (SELECT min(ingested_at) FROM events e
                                     WHERE e.ingest_seq > x.last_seq), $now), 0) AS seconds_behind,
       x.delivered,
       x.last_success,
       x.last_error,
       x.last_error_at
FROM export_cursors x, (SELECT coalesce(max(ingest_seq), 0) AS max_seq FROM events) m
ORDER BY x.sink
"""

"""The store: open, commit pages with their cursor in one transaction, read cursors.

One class for both stores: a DuckDB file (the default) or a DuckLake lake (``lake``,
``lakeschema``). They differ in a few statements only, each marked where it is: the lake
has no ``ingest_seq`` column to fill (its ``events`` view derives it), keeps cursors as an
append-only log, fences every commit with its source's lease, needs no CHECKPOINT, and
tries a commit again when it lost a race with another writer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import duckdb
import orjson
from nanoarrow.c_array import CArray

from ingest.base.backoff import Backoff
from ingest.base.crashpoints import crash_point
from ingest.base.errors import (
    ConfigError,
    DatabaseLocked,
    LeaseLost,
    StoreError,
    StoreInvalidated,
)
from ingest.base.logs import emit
from ingest.mapping import CompiledMapping, MappedBatch
from ingest.mapping.arrow import Table, column, repeated, strings
from ingest.okta.elements import BadEvent
from ingest.store.lake import (
    STORE,
    LakeConfig,
    connect_lake,
    is_conflict,
    sql_literal,
    stale,
    translate_lake,
)
from ingest.store.lakeschema import (
    Lease,
    fence,
    migrate_lake,
    read_lease,
    release_lease,
    rollback,
    settle_inlined_tables,
    take_lease,
)
from ingest.store.rawtexts import (
    RawTexts,
    raw_array,
    same_content,
    text_bytes,
    text_size,
    total_size,
)
from ingest.store.schema import ensure_mapping_columns, migrate

DEFAULT_DB = Path("state/oktaduck.duckdb")
STORAGE_VERSION = "v1.5.0"  # the storage format new database files are written in
# The rows of a row group the writer makes. A transaction's appends that fill a row group go
# straight to the file, compressed, without a copy in the WAL; with DuckDB's 122,880 a
# one-shot ingest's rows all went through the WAL first and each checkpoint compressed the
# table's last row group again. 9000-event commits of 8192-row groups took the commits from
# 40-43 to 22-24 µs of CPU an event (docs/performance.md, "the write path"); 4096 costs the
# same CPU and a one-shot poll holds 5 pages per group instead of 9 (peak RSS 275 against 295
# MB at 100k events), for a larger file (435 against 365 bytes an event; 304 before). Files
# written before keep their 122,880-row groups; new ones follow them. The daemon keeps
# DuckDB's 122,880: its commits of two pages go through the WAL whatever the size, and with
# 4096-row groups its 50 orgs catching up peaked at 855-1008 MB against 672-695.
ROW_GROUP_SIZE = 4096
# DuckDB's own default is 80% of the machine's memory, kept as buffer cache; a collector
# needs far less, and a bounded cache keeps the daemon's footprint flat as tables grow. The
# daemon's feeds want room (30-day detections over 5M rows slow down 2-3x at 128MB); a
# one-shot `poll` or `backfill` serves no queries and runs in the smaller INGEST budget:
# 100k events took as long at 48MB as at 128MB and peaked 80MB lower (tests/perf). Its
# commits of a row group's worth of events (``Store.default_group``) ran out of 48MB at
# COMMIT now and then (1 run in 4 of tests/test_poll.py's twenty pages), never at 64MB in
# six. A one-shot ingest's statement that runs out of its limit before COMMIT is run again
# with twice the limit (``retrying``); a failed COMMIT never is (``transaction``).
DEFAULT_MEMORY_LIMIT = "512MB"
INGEST_MEMORY_LIMIT = "64MB"
# A one-shot ingest's pages are mapped by a child process on the other core; DuckDB working
# on one thread leaves it that core (100k events: 3% faster than on two).
INGEST_THREADS = 1
# DuckDB checkpoints once the WAL holds this much (its default is 16MB). Each checkpoint
# rewrites the table's last, partly filled row group with zstd, so while catching up frequent
# checkpoints compress the same raw JSON over and over: at 16MB, storing 100k events cost
# 10.0 CPU s; at 256MB, 5.8 (tests/perf). A larger WAL only costs disk and replay time.
CHECKPOINT_THRESHOLD = "256MB"
# What a one-shot ingest of a file commits at a time when its source leaves ``group_events``
# and ``group_bytes`` at their defaults: a row group's worth of events (``ROW_GROUP_SIZE``),
# which goes to the file without the WAL, in up to this many bytes of their JSON (4096 events
# of 8 KB; larger events make smaller groups, whose rows go through the WAL)
ONE_SHOT_GROUP_BYTES = 32 << 20
# DuckDB keeps a string this long or longer in an overflow block, which stays in memory
# from the insert until the next checkpoint whatever the memory limit: a commit holding
# more than the limit of such strings fails ("failed to pin block"). A group's large raw
# texts are therefore committed in parts of at most a quarter of the memory limit each,
# with a CHECKPOINT (which writes them out) whenever the parts since the last one would
# pass that quarter (``Store._chunks``, ``Store._make_room``).
OVERFLOW_STRING = 4096
# A checkpoint rewrites the table's last row group a vector (2048 rows) at a time and cannot
# spill those rows' long strings: it needs the text of up to 2048 consecutive large events
# in memory at once. A store that is not serving queries (a one-shot ingest) therefore
# raises its memory limit, when large events arrive, to twice the bytes of the last 2048 of
# them on top of its base limit (at most MAX_MEMORY_LIMIT): 50 KB events at the one-shot
# 64MB get ~260MB; ordinary Okta events (~2.6 KB, under OVERFLOW_STRING) change nothing.
CHECKPOINT_VECTOR = 2048
MAX_MEMORY_LIMIT = 4 * 2**30
# A lake commit that lost an optimistic-concurrency race is tried again from the start (the
# uuid lookup included, so nothing is stored twice), this many times at most.
LAKE_COMMIT_ATTEMPTS = 20
# ...after a pause that lets the winner finish: a few milliseconds, doubling, drawn at random
# so that the losers do not meet again (under 2 s over all the attempts)
LAKE_RACE_BACKOFF = Backoff(initial=0.005, maximum=0.1, jitter=1.0)
# A lake writer's memory limit is at least this. A commit writes its rows to Parquet, one
# writer per day partition, and those buffers cannot spill: a group of three 100-event pages
# failed at the one-shot 48MB, 5000 events over 30 days passed at 128MB. The data lives in
# the Parquet files, not in a buffer cache, so the higher limit costs only what a commit uses.
LAKE_MEMORY_LIMIT = "256MiB"
_T = TypeVar("_T")
_SIZE = re.compile(r"\s*([0-9.]+)\s*([KMGT]?i?B)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PageRows:
    """One Okta page, mapped, ready to be committed with the cursor that follows it."""

    source: str
    org_url: str
    next_url: str | None
    batch: MappedBatch
    raw: Sequence[str] | RawTexts  # every input event's JSON text, by input index
    uuids_in: Sequence[str | None]  # every input event's uuid where it had one, by input index
    bad: Sequence[BadEvent] = ()  # the page's elements that could not be decoded


@dataclass(frozen=True)
class _Part:
    """Rows of one mapped batch to insert: those at ``positions``, with the batch's input
    ``raw`` text (indexed like its input)."""

    batch: MappedBatch
    positions: Sequence[int]
    raw: Sequence[str] | RawTexts


@dataclass(frozen=True)
class CommitResult:
    stored: int
    duplicates: int  # the same uuid with the same content, stored already or earlier
    rejected: int
    newest_published: datetime | None
    conflicts: int = 0  # the same uuid with other content: kept in ``conflicts``


@dataclass(frozen=True)
class CursorState:
    source: str
    org_url: str
    next_url: str | None
    pages: int
    events: int
    duplicates: int
    rejects: int
    newest_published: datetime | None
    last_commit: datetime | None
    created_at: datetime


def translate(err: duckdb.Error, path: Path | str) -> StoreError:
    """One-line StoreError for a DuckDB exception, naming the lock holder where DuckDB does."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "Unique file handle conflict" in str(err):  # a writer of this process attached it
        return DatabaseLocked(f"database {path} is open for writing in this process")
    if "Could not set lock" in str(err) or "Conflicting lock" in str(err):
        pid = re.search(r"PID (\d+)", str(err))
        holder = f" (PID {pid.group(1)})" if pid else ""
        return DatabaseLocked(
            f"database {path} is in use by another process{holder}; "
            "only one oktaduck writer can open it at a time"
        )
    if stale(err):
        return StoreInvalidated(f"database {path}: {text} (the connection must be opened again)")
    return StoreError(f"database {path}: {text}")


def connect(
    path: Path, read_only: bool = False, row_group_size: int | None = None
) -> duckdb.DuckDBPyConnection:
    """The database file ``path``: opened read-only as it is, or for writing attached as
    ``STORE`` (see ``_attach_file``), in UTC with file access off either way.
    ``row_group_size``: of the row groups a writer makes (DuckDB's 122,880 when None)."""
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        why = "a file is in the way" if isinstance(err, FileExistsError) else err.strerror
        raise StoreError(
            f"database {path}: cannot create the folder {path.parent}: {why or err}"
        ) from None
    except ValueError:  # a NUL character
        raise StoreError(f"database {path!r}: not a valid path") from None
    try:
        if read_only and not path.exists():
            raise StoreError(f"database {path} does not exist; run `oktaduck poll` first")
        if path.is_dir():
            raise StoreError(f"database {path} is a directory; give a file name")
    except OSError as err:  # a name too long, a folder that may not be searched
        raise StoreError(f"database {path}: {err.strerror or err}") from None
    except ValueError:
        raise StoreError(f"database {path!r}: not a valid path") from None
    try:
        if not read_only:
            con = _attach_file(path, row_group_size)
        else:
            # No SQL run here may read or write files: the database is its only file.
            con = duckdb.connect(
                str(path),
                read_only=True,
                config={
                    "enable_external_access": False,
                    "storage_compatibility_version": STORAGE_VERSION,
                },
            )
            if not configuration_locked(con):  # else another handle in this process did it
                _settle(con)
                con.execute(f"SET memory_limit = '{DEFAULT_MEMORY_LIMIT}'")
                lock_configuration(con)
    except duckdb.Error as err:
        raise translate(err, path) from None
    if not read_only:
        with contextlib.suppress(OSError):
            path.chmod(0o600)
    return con


def _settle(con: duckdb.DuckDBPyConnection) -> None:
    """What every connection to a store runs under. GLOBAL: every cursor of this database
    (each query has one) is in UTC too, and after the configuration is locked a cursor could
    not set it for itself."""
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")


@dataclass
class _Attached:
    """A writer's in-memory DuckDB with a database file attached, and the handles on it that
    this process has open (``connect``, ``disconnect``)."""

    root: duckdb.DuckDBPyConnection
    users: int = 0


_attached: dict[str, _Attached] = {}
_attached_lock = threading.Lock()


def _attach_file(path: Path, row_group_size: int | None) -> duckdb.DuckDBPyConnection:
    """A handle on ``path`` for writing: a cursor of an in-memory DuckDB with the file
    attached as ``STORE`` and in use, shared by every writer's handle on it in this process
    (DuckDB refuses to attach one file twice; the first handle's ``row_group_size`` holds).
    The file is attached rather than opened so that new row groups can hold fewer rows
    (``ROW_GROUP_SIZE``: an ATTACH option only, DuckDB keeps no row group size in the file).
    Give each handle back with ``disconnect``."""
    key = str(path.resolve())
    with _attached_lock:
        held = _attached.get(key)
        if held is None:
            # A new file is written in 1.5's storage format: the default (0.10's, readable by
            # old versions) has no zstd for strings, and the raw events would take ~7x the room.
            # Buffers DuckDB must spill go next to the file, as for a file opened directly
            # (an in-memory database would use ".tmp" in the working directory).
            root = duckdb.connect(
                ":memory:",
                config={
                    "storage_compatibility_version": STORAGE_VERSION,
                    "temp_directory": f"{path}.tmp",
                },
            )
            try:
                options = [f"STORAGE_VERSION {sql_literal(STORAGE_VERSION)}"]
                if row_group_size is not None:
                    options.append(f"ROW_GROUP_SIZE {int(row_group_size)}")
                root.execute(f"ATTACH {sql_literal(str(path))} AS {STORE} ({', '.join(options)})")
                # after the ATTACH: no SQL run from here may read or write another file
                root.execute("SET enable_external_access = false")
                _settle(root)
            except BaseException:
                root.close()
                raise
            held = _attached[key] = _Attached(root)
        con = held.root.cursor()
        try:
            con.execute(f"USE {STORE}")
        except BaseException:
            con.close()
            if not held.users:
                held.root.close()
                del _attached[key]
            raise
        held.users += 1
        return con


def disconnect(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Close a writer's handle from ``connect``; the last one of a file detaches it (DuckDB
    checkpoints it then)."""
    try:
        con.close()
    finally:
        _let_go(str(path.resolve()))


def _let_go(key: str) -> None:
    """One handle on the attached file ``key`` fewer; the root goes with the last."""
    with _attached_lock:
        held = _attached.get(key)
        if held is None:
            return
        held.users -= 1
        if held.users <= 0:
            del _attached[key]
            held.root.close()


def lock_configuration(con: duckdb.DuckDBPyConnection) -> None:
    """From now on no statement can change a setting of this database, on any connection or
    cursor: a query cannot raise ``memory_limit``, turn file access back on or unlock it
    (``SET``, ``SET GLOBAL``, ``RESET``, ``PRAGMA`` and ``EXPLAIN ANALYZE SET`` all fail).
    Everything that configures the database (``connect()``, ``Store()``) runs before it."""
    con.execute("SET lock_configuration = true")


def configuration_locked(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute("SELECT current_setting('lock_configuration')").fetchall()
    return bool(rows and rows[0][0])


class _Conflict(Exception):
    """A lake commit lost a race with another writer; ``commit_pages`` tries it again."""


class _OutOfMemory(Exception):
    """A one-shot ingest's transaction ran out of its memory limit; ``retrying`` raises the
    limit and runs it again."""


def out_of_memory(err: duckdb.Error) -> bool:
    """DuckDB could not get a buffer within its memory limit (at COMMIT it says so inside a
    TransactionException)."""
    text = str(err)
    return isinstance(err, duckdb.OutOfMemoryException) or (
        "could not allocate block" in text or "failed to pin block" in text
    )


StoreTarget = Path | LakeConfig


def describe(target: StoreTarget) -> str:
    """The store for messages: a file's path, or the lake's catalog and data path."""
    return target.describe() if isinstance(target, LakeConfig) else f"database {target}"


class Store:
    """The writer's handle on the store. Commits are serialized by a lock."""

    def __init__(
        self,
        target: StoreTarget,
        mapping: CompiledMapping,
        memory_limit: str | None = None,
        threads: int | None = None,
        serves_queries: bool = True,
        lease_clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``target``: the DuckDB file, or a lake. ``serves_queries``: lock the configuration
        once set up (the daemon, whose API runs people's queries on this database). A one-shot
        ingest runs none and keeps the freedom to raise its memory limit for large events
        (``CHECKPOINT_VECTOR``). ``lease_clock``: the time a lease's new expiry counts from
        when it is written (see ``_lease_time``)."""
        if mapping.output != "columns":  # ECS, OCSF: documents for export, not the table
            raise ConfigError(
                f"mapping {mapping.name} makes {mapping.output}s; the events table needs a "
                'mapping with output = "columns" (mappings/okta/normalized.toml)'
            )
        self.lake = target if isinstance(target, LakeConfig) else None
        self.target: StoreTarget = target
        self.path = Path(target.catalog) if isinstance(target, LakeConfig) else target
        self.mapping = mapping
        self.owner = self.lake.owner_name() if self.lake else ""
        self._held: set[tuple[str, str]] = set()  # leases this store took (lake)
        self._lease_clock = lease_clock
        # the table events are written to: the lake's ``events`` is a view of ``event_rows``
        self.events_table = "event_rows" if self.lake else "events"
        self.invalidated = False  # a statement left the connection of no use (_translate)
        if self.lake:
            self.con = connect_lake(self.lake, read_only=False)
        else:  # a one-shot ingest's commits fill row groups (``default_group``)
            self.con = connect(self.path, row_group_size=None if serves_queries else ROW_GROUP_SIZE)
        self._lock = threading.Lock()
        try:
            locked = configuration_locked(self.con)  # by another Store of this process
            if not locked:
                self.con.execute(f"SET memory_limit = '{memory_limit or DEFAULT_MEMORY_LIMIT}'")
                if self.lake and memory_bytes(self.con) < size_bytes(LAKE_MEMORY_LIMIT):
                    self.con.execute(f"SET memory_limit = '{LAKE_MEMORY_LIMIT}'")
                if not self.lake:
                    self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
                if not self.lake and not serves_queries:
                    # A one-shot ingest's commits leave a row group and a part of one each;
                    # merging those at every checkpoint cost 15-18 µs an event and made the
                    # file larger (docs/performance.md, "the write path").
                    self.con.execute("SET max_vacuum_tasks = 0")
                    # a full row group goes to the file at once, not after five (memory)
                    self.con.execute("SET write_buffer_row_group_count = 1")
            if threads is not None and not locked:
                self.con.execute(f"SET threads = {int(threads)}")
            if self.lake:
                self._migrate_lake()
                row = [(0,)]
            else:
                migrate(self.con)
                ensure_mapping_columns(self.con, mapping.columns)
                row = self.con.execute("SELECT coalesce(max(ingest_seq), 0) FROM events").fetchall()
            self._room = overflow_room(self.con)
            self._base_limit = memory_bytes(self.con)
            if not locked and serves_queries:
                lock_configuration(self.con)
            self._adaptive = not locked and not serves_queries and not self.lake
            self._one_shot = not serves_queries
        except duckdb.Error as err:
            self._disconnect()
            raise self._translate(err) from None
        except BaseException:
            self._disconnect()
            raise
        self._next_seq = int(row[0][0]) + 1 if row else 1
        self._large = 0  # bytes of large texts committed since the last checkpoint
        self._recent: deque[int] = deque(maxlen=CHECKPOINT_VECTOR)  # sizes of the last large
        self._recent_bytes = 0

    def default_group(self, events: int, nbytes: int) -> tuple[int, int]:
        """The events and bytes after which a source catching up commits, when it leaves
        ``group_events`` and ``group_bytes`` at their defaults (given): in a one-shot ingest
        of a file, enough to fill a row group (see ``ROW_GROUP_SIZE``); the defaults
        otherwise (the daemon's commits stay small: its API's queries wait for them)."""
        if self._one_shot and not self.lake:
            return max(events, ROW_GROUP_SIZE), max(nbytes, ONE_SHOT_GROUP_BYTES)
        return events, nbytes

    def _translate(self, err: duckdb.Error) -> StoreError:
        """One line for ``err``; a connection it leaves of no use is marked ``invalidated``
        (the daemon then opens the store again)."""
        error = translate_lake(err, self.lake) if self.lake else translate(err, self.path)
        if isinstance(error, StoreInvalidated):
            self.invalidated = True
        return error

    def _migrate_lake(self) -> None:
        """Create the lake's tables and the mapping's columns; a writer starting at the same
        moment may win the race to create them, and then this finds them there."""
        assert self.lake is not None
        for attempt in range(LAKE_COMMIT_ATTEMPTS):
            try:
                # a lake made or upgraded gets the columns in that transaction
                made = migrate_lake(self.con, self._add_mapping_columns)
                added = [] if made else self._add_mapping_columns_at_once()
                if made == "upgraded" or added:
                    settle_inlined_tables(self.con)
                return
            except duckdb.Error as err:
                if not is_conflict(err) or attempt == LAKE_COMMIT_ATTEMPTS - 1:
                    raise

    def _add_mapping_columns(self) -> list[str]:
        """Inside a transaction: a column of ``event_rows`` for every mapping field it lacks."""
        return ensure_mapping_columns(self.con, self.mapping.columns, "event_rows")

    def _add_mapping_columns_at_once(self) -> list[str]:
        """The missing columns in one commit: each ALTER on its own is a catalog commit
        (~60 ms)."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            added = self._add_mapping_columns()
            self.con.execute("COMMIT")
        except BaseException:
            rollback(self.con)
            raise
        return added

    def hold(
        self,
        kind: str,
        key: str,
        now: datetime,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        """Take (or renew) the lease of a source or sink of the lake for ``lease_ttl``;
        LeaseLost when another process holds it. Nothing to hold in a file store, which one
        process opens at a time. ``con``: a cursor of this store's connection, in the lake,
        to take it on without waiting for the commits on the store's own (the daemon)."""
        if self.lake is None:
            return
        with self._lock if con is None else contextlib.nullcontext():
            con = con or self.con
            for attempt in range(1, LAKE_COMMIT_ATTEMPTS + 1):
                try:
                    take_lease(
                        con, kind, key, self.owner, self.lake.lease_ttl, self._lease_time(now)
                    )
                    break
                except duckdb.Error as err:
                    if not is_conflict(err):
                        raise self._translate(err) from None
                # another process took it, or wrote to the catalog, in the same moment: the
                # next try sees which (LeaseLost names the owner)
                time.sleep(LAKE_RACE_BACKOFF.delay(attempt))
            else:
                holder = read_lease(con, kind, key)
                who = holder.owner if holder else "another process"
                raise LeaseLost(f"{kind} {key}: could not take its lease; {who} holds it")
        self._held.add((kind, key))

    def lease(self, kind: str, key: str) -> Lease | None:
        """Who holds the lease of a source or sink of the lake, and until when (None in a
        file store, or when no process ever took it)."""
        if self.lake is None:
            return None
        with self._lock:
            try:
                return read_lease(self.con, kind, key)
            except duckdb.Error as err:
                raise self._translate(err) from None

    def claim(self, kind: str, key: str, now: datetime) -> None:
        """Take the lease of a source or sink unless this store holds it already (``hold``
        renews it); a poll claims its source before it reads the cursor, so that it fetches
        nothing for a source another process owns and resumes from a cursor no other
        process moves meanwhile."""
        if self.lake is not None and (kind, key) not in self._held:
            self.hold(kind, key, now)

    def release(self, kind: str, key: str) -> None:
        """Give up a lease this store holds, so that another process may take it at once."""
        if self.lake is None or (kind, key) not in self._held:
            return
        self._held.discard((kind, key))
        with self._lock:
            try:
                release_lease(self.con, kind, key, self.owner)
            except duckdb.Error as err:  # the lease runs out by itself; say so in one line
                error = str(self._translate(err))
                emit("lake.release_failed", logging.WARNING, kind=kind, key=key, error=error)

    def fence(self, con: duckdb.DuckDBPyConnection, kind: str, key: str, now: datetime) -> None:
        """Inside a transaction on the lake: renew this store's lease of a source or sink, or
        LeaseLost when another process took it over (see ``lakeschema``)."""
        if self.lake is None:
            return
        if (kind, key) not in self._held:
            raise LeaseLost(f"{kind} {key}: this process ({self.owner}) does not hold its lease")
        try:
            fence(con, kind, key, self.owner, self.lake.lease_ttl, self._lease_time(now))
        except LeaseLost:
            self._held.discard((kind, key))
            raise

    def _lease_time(self, now: datetime) -> datetime:
        """The time a lease written now counts its ``lease_ttl`` from: the ``lease_clock``'s
        time when the store has one (the daemon's). A page's commit is handed its ``now``
        when the page is ready, then waits for the store's lock behind the other sources'
        commits: on a busy daemon with many sources, seconds. Counted from that ``now``, the
        lease it renews would end that much early, and another daemon would take over a
        source whose owner is alive."""
        return max(now, self._lease_clock()) if self._lease_clock else now

    def close(self) -> None:
        for kind, key in list(self._held):
            self.release(kind, key)
        with self._lock:
            self._disconnect()

    def _disconnect(self) -> None:
        if self.lake:
            self.con.close()
        else:
            disconnect(self.path, self.con)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction_lock(self) -> Iterator[None]:
        """Hold the writer lock without a transaction (for CHECKPOINT)."""
        with self._lock:
            try:
                yield
            except duckdb.Error as err:
                raise self._translate(err) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction on the writer's connection. On the lake, a COMMIT that lost a race
        with another writer raises ``_Conflict`` (see ``retrying``)."""
        with self._lock:
            con = self.con
            next_seq = self._next_seq  # back to it if the transaction does not commit
            committing = False
            try:
                con.execute("BEGIN TRANSACTION")
                yield con
                committing = True
                con.execute("COMMIT")
            except duckdb.Error as err:
                self._next_seq = next_seq
                rollback(con)
                if self.lake and is_conflict(err):
                    raise _Conflict() from None
                # Not after a failed COMMIT: DuckDB 1.5.5 may have applied part of it (a
                # rerun stored a group twice, or a checkpoint found a column longer than its
                # row group), so only a new connection, reading the WAL, knows what is stored
                if (
                    self._adaptive
                    and not committing
                    and out_of_memory(err)
                    and memory_bytes(con) < MAX_MEMORY_LIMIT
                ):
                    raise _OutOfMemory() from None
                raise self._translate(err) from None
            except BaseException:
                self._next_seq = next_seq
                rollback(con)
                raise

    def cursor(self, source: str) -> CursorState | None:
        with self._lock:
            try:
                return read_cursor(self.con, source)
            except duckdb.Error as err:  # a lake's catalog that went away, say
                raise self._translate(err) from None

    def commit_page(self, page: PageRows, now: datetime) -> CommitResult:
        """Store a page's new events, its rejects and its ``next`` URL in ONE transaction."""
        return self.commit_pages([page], now)

    def commit_pages(
        self,
        pages: Sequence[PageRows],
        now: datetime,
        record: Callable[[duckdb.DuckDBPyConnection, CommitResult], None] | None = None,
    ) -> CommitResult:
        """Store consecutive pages of one source and the ``next`` URL that follows the last
        one, in ONE transaction: all of them with the cursor, or none.

        ``record``, when given, takes the cursor's place: the source's cursor is not touched
        (the pages' ``next_url`` is ignored), and the last transaction calls ``record`` with
        its connection and the whole group's result, for a progress row that must commit
        with the events (an import's, ``ingest.store.imports``).

        The pages' new events go in with one statement. Events already stored, or earlier in
        the group, are skipped by ``uuid``: as duplicates when their content is the same, in
        ``conflicts`` when it is not; see ``_existing`` for why that lookup stays cheap
        however large the table grows.

        A group whose large texts would not fit the memory limit is the exception (see
        ``OVERFLOW_STRING``): its events go in over several transactions, all but the last
        leaving the cursor's URL where it was. A crash between them leaves some of the
        events stored and the cursor before their pages; the pages are fetched again and
        those events are then duplicates.
        """
        if not pages:
            return CommitResult(0, 0, 0, None)
        source = pages[0].source
        self.claim("source", source, now)  # a one-shot ingest: the daemon holds it already
        self._fit_large_texts(pages)
        chunks = self._chunks(pages)
        total = CommitResult(0, 0, 0, None)
        for number, (positions, large) in enumerate(chunks, start=1):
            last = number == len(chunks)
            if number > 1:
                crash_point("store.part_committed")  # not in faults.POINTS: split groups only
            self._make_room(large)
            part = self.retrying(
                functools.partial(
                    self._commit_part,
                    pages=pages,
                    positions=positions,
                    last=last,
                    newest=total.newest_published,
                    now=now,
                    prior=total,
                    record=record,
                )
            )
            total = CommitResult(
                total.stored + part.stored,
                total.duplicates + part.duplicates,
                total.rejected + part.rejected,
                part.newest_published,
                total.conflicts + part.conflicts,
            )
        crash_point("store.committed")
        return total

    def retrying(self, work: Callable[[duckdb.DuckDBPyConnection], _T]) -> _T:
        """``work(con)`` in one transaction; on the lake, run again from the start when its
        commit lost a race with another writer (each run reads what the winner stored, so a
        page is never stored twice). A file store has one writer and runs it once, or again
        with twice the memory limit when a one-shot ingest's statements ran out of it before
        COMMIT (rolled back, nothing stored); never after a failed COMMIT (``transaction``)."""
        for attempt in range(1, LAKE_COMMIT_ATTEMPTS + 1):
            try:
                with self.transaction() as con:
                    return work(con)
            except _OutOfMemory:
                self._raise_memory_limit(2 * memory_bytes(self.con), "a commit ran out of it")
            except _Conflict:
                emit("lake.commit_conflict", logging.DEBUG, attempt=attempt)
                time.sleep(LAKE_RACE_BACKOFF.delay(attempt))  # let the winner finish
        raise StoreError(
            f"{describe(self.target)}: a commit lost {LAKE_COMMIT_ATTEMPTS} races with other "
            "writers in a row; it is tried again at the next poll"
        )

    def _commit_part(
        self,
        con: duckdb.DuckDBPyConnection,
        pages: Sequence[PageRows],
        positions: list[Sequence[int]],
        last: bool,
        newest: datetime | None,
        now: datetime,
        prior: CommitResult | None = None,
        record: Callable[[duckdb.DuckDBPyConnection, CommitResult], None] | None = None,
    ) -> CommitResult:
        """One transaction of ``commit_pages``: the rows at ``positions`` of each page, and
        when ``last``, the pages' rejects and the cursor after them (or ``record`` with the
        group's result, ``prior`` holding the parts before). ``newest`` is the newest
        ``published`` stored by the parts before; the result carries the newest after."""
        source = pages[0].source
        self.fence(con, "source", source, now)
        if last:
            crash_point("store.begun")
        parts = [
            _Part(page.batch, rows, page.raw) for page, rows in zip(pages, positions, strict=True)
        ]
        kept, clashes = self._insert_parts(con, source, parts, now)
        stored = sum(map(len, kept))
        duplicates = sum(map(len, positions)) - stored - clashes
        for page, keep in zip(pages, kept, strict=True):
            published: list[datetime] = page.batch.columns["published"]
            page_newest = max((published[i] for i in keep), default=None)
            if page_newest is not None:
                newest = max(newest or page_newest, page_newest)
        if not last and record is not None:  # an import's progress: with the last part
            return CommitResult(stored, duplicates, 0, newest, clashes)
        if not last:  # events only: the cursor's URL stays before these pages
            self._update_cursor(
                con,
                dataclasses.replace(pages[-1], next_url=None),
                0,
                stored,
                duplicates,
                0,
                newest,
                now,
            )
            return CommitResult(stored, duplicates, 0, newest, clashes)
        crash_point("store.events_inserted")
        rejected = sum(self._insert_rejects(con, page, now) for page in pages)
        crash_point("store.rejects_inserted")
        result = CommitResult(stored, duplicates, rejected, newest, clashes)
        if record is not None:
            before = prior or CommitResult(0, 0, 0, None)
            record(
                con,
                CommitResult(
                    before.stored + stored,
                    before.duplicates + duplicates,
                    rejected,
                    newest,
                    before.conflicts + clashes,
                ),
            )
            return result
        self._update_cursor(con, pages[-1], len(pages), stored, duplicates, rejected, newest, now)
        crash_point("store.cursor_updated")
        return result

    def _chunks(self, pages: Sequence[PageRows]) -> list[tuple[list[Sequence[int]], int]]:
        """The group's accepted rows split so that each part holds at most ``self._room``
        bytes of large texts (but at least one row): per part, the row positions of each
        page and the large texts' bytes. One part, the whole group, nearly always."""
        whole: list[Sequence[int]] = [range(len(page.batch.accepted)) for page in pages]
        if sum(total_size(page.raw) for page in pages) <= self._room:
            large = sum(
                size
                for page in pages
                for size in (text_size(page.raw, index) for index in page.batch.accepted)
                if size >= OVERFLOW_STRING
            )
            return [(whole, large)]
        chunks: list[tuple[list[Sequence[int]], int]] = []
        current: list[list[int]] = [[] for _ in pages]
        large = 0
        for p, page in enumerate(pages):
            for i, index in enumerate(page.batch.accepted):
                size = text_size(page.raw, index)
                if size >= OVERFLOW_STRING:
                    if large and large + size > self._room:
                        chunks.append((list(current), large))
                        current = [[] for _ in pages]
                        large = 0
                    large += size
                current[p].append(i)
        chunks.append((list(current), large))
        return chunks

    def _fit_large_texts(self, pages: Sequence[PageRows]) -> None:
        """Raise the memory limit, where this store may, so that a checkpoint can hold the
        last ``CHECKPOINT_VECTOR`` large texts (see there)."""
        if not self._adaptive:
            return
        for page in pages:
            if total_size(page.raw) < OVERFLOW_STRING:
                continue
            for index in page.batch.accepted:
                size = text_size(page.raw, index)
                if size >= OVERFLOW_STRING:
                    if len(self._recent) == CHECKPOINT_VECTOR:
                        self._recent_bytes -= self._recent[0]
                    self._recent.append(size)
                    self._recent_bytes += size
        need = self._base_limit + 2 * self._recent_bytes
        if need > memory_bytes(self.con):
            self._raise_memory_limit(need, "large events")

    def _raise_memory_limit(self, need: int, reason: str) -> None:
        """Raise a one-shot ingest's memory limit to ``need`` bytes (at most
        MAX_MEMORY_LIMIT)."""
        megabytes = -(-min(MAX_MEMORY_LIMIT, need) // 2**20)
        with self._lock:
            try:
                self.con.execute(f"SET memory_limit = '{megabytes}MiB'")
            except duckdb.Error as err:
                raise translate(err, self.path) from None
            self._room = overflow_room(self.con)
        emit("store.memory_raised", memory_limit_mb=megabytes, reason=reason)

    def _make_room(self, large: int) -> None:
        """Checkpoint before a commit of ``large`` bytes of large texts if, with those
        committed since the last checkpoint, they would pass ``self._room``. A lake writes
        each commit's rows out to Parquet: nothing to do there."""
        if not large or self.lake:
            return
        if self._large and self._large + large > self._room:
            with self._lock:
                try:
                    self.con.execute("CHECKPOINT")
                    self._large = 0
                except duckdb.Error as err:  # a reader's transaction in the way: next time
                    emit("store.checkpoint_failed", logging.WARNING, error=str(err))
        self._large += large

    def insert_mapped(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        batch: MappedBatch,
        positions: Sequence[int],
        raw: Sequence[str],
        now: datetime,
    ) -> list[int]:
        """Insert the mapped rows at ``positions`` of ``batch`` whose uuid is not stored yet
        (``raw`` is indexed like the batch's input; one with other content than the stored
        event goes to ``conflicts``); return the positions inserted."""
        return self._insert_parts(con, source, [_Part(batch, positions, raw)], now)[0][0]

    def _insert_parts(
        self, con: duckdb.DuckDBPyConnection, source: str, parts: Sequence[_Part], now: datetime
    ) -> tuple[list[list[int]], int]:
        """Insert, in one statement, each part's rows whose uuid is neither stored nor met
        earlier in the parts; return the positions inserted, part by part, and how many rows
        had a uuid already stored or met with other content (they go to ``conflicts``)."""
        seen: dict[str, tuple[int, int]] = {}  # uuid: (part, position) where first met
        firsts: list[list[int]] = []
        repeats: list[tuple[int, int, str]] = []  # (part, position, uuid) met again
        uuids: list[str] = []
        published: list[datetime] = []
        texts: list[tuple[_Part, int]] = []
        for k, part in enumerate(parts):
            part_uuids: list[str] = part.batch.columns["uuid"]
            part_published: list[datetime] = part.batch.columns["published"]
            first = []
            for i in part.positions:
                if part_uuids[i] in seen:
                    repeats.append((k, i, part_uuids[i]))
                    continue
                seen[part_uuids[i]] = (k, i)
                first.append(i)
                uuids.append(part_uuids[i])
                published.append(part_published[i])
                texts.append((part, i))
            firsts.append(first)
        # uuid: None when stored with the same content, else the stored content's hash and text
        existing = self._existing(con, uuids, published, texts)
        clashes: list[tuple[int, int, str]] = []  # (part, position, the stored one's hash)
        kept = firsts
        if existing:
            kept = []
            for k, (part, first) in enumerate(zip(parts, firsts, strict=True)):
                keep = []
                for i in first:
                    uuid = part.batch.columns["uuid"][i]
                    if uuid not in existing:
                        keep.append(i)
                    elif (stored := existing[uuid]) is not None:
                        clashes.append((k, i, stored[0]))
                kept.append(keep)
        for k, i, uuid in repeats:  # against what is stored, or stored now
            stored = existing.get(uuid)
            mine = _text(parts[k], i)
            if stored is None:  # what is stored is the first one met
                met_part, met_position = seen[uuid]
                first_text = _text(parts[met_part], met_position)
                if not same_content(mine, first_text):
                    clashes.append((k, i, _sha256(first_text)))
            elif not same_content(mine, stored[1]):
                clashes.append((k, i, stored[0]))
        if any(kept):
            self._insert_rows(con, source, parts, kept, now)
        if clashes:
            self._insert_conflicts(con, source, parts, clashes, now)
        return kept, len(clashes)

    def _existing(
        self,
        con: duckdb.DuckDBPyConnection,
        uuids: list[str],
        published: list[datetime],
        texts: list[tuple[_Part, int]],
    ) -> dict[str, tuple[str, bytes] | None]:
        """The given uuids that are stored already: each with None when its stored ``raw``
        is the given text (at the same index in ``texts``) or the same JSON in other bytes
        (``same_content``), else with the SHA-256 of the stored text and the text.

        An event's uuid always comes with the same ``published`` time, so only stored rows in
        the batch's own published range can match, and the lookup's cost does not grow with
        the table. While catching up every batch is newer than anything stored; the first
        query, answered from the newest rows alone, says so and the lookup is skipped. The
        texts are compared by DuckDB, for the rows found only: a stored text comes to Python
        only when its bytes differ.

        The one thing this trusts: Okta gives an event's uuid with the same ``published``
        every time. A server that sends a stored uuid again under another ``published`` gets
        a second row, not a conflict; finding those would need a lookup by uuid over the
        whole table, which is what keeps this flat. ``SELECT uuid FROM events GROUP BY uuid
        HAVING count(*) > 1`` lists them.
        """
        if not uuids:
            return {}
        lo = min(published)
        rows = con.execute(
            f"SELECT max(published) FROM {self.events_table} WHERE published >= $lo", {"lo": lo}
        ).fetchall()
        newest: datetime | None = rows[0][0] if rows else None
        if newest is None:
            return {}
        candidates = [
            (u, p, t) for u, p, t in zip(uuids, published, texts, strict=True) if p <= newest
        ]
        if not candidates:
            return {}
        mine = {u: _text(part, i) for u, _, (part, i) in candidates}
        page_uuids = Table.of(
            {
                "uuid": strings([u for u, _, _ in candidates]),
                "raw": strings([mine[u].decode() for u, _, _ in candidates]),
            }
        )
        with registered(con, "page_uuids", page_uuids):
            rows = con.execute(
                "SELECT e.uuid, CASE WHEN e.raw::VARCHAR = p.raw THEN NULL "
                "ELSE e.raw::VARCHAR END "
                f"FROM {self.events_table} e JOIN page_uuids p ON e.uuid = p.uuid "
                "WHERE e.published BETWEEN $lo AND $hi",
                {"lo": lo, "hi": max(p for _, p, _ in candidates)},
            ).fetchall()
        found: dict[str, tuple[str, bytes] | None] = {}
        for uuid, other in rows:
            stored = None if other is None else other.encode()
            if stored is None or same_content(stored, mine[uuid]):
                found[uuid] = None
            else:
                found[uuid] = (_sha256(stored), stored)
        return found

    def _insert_conflicts(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        parts: Sequence[_Part],
        clashes: list[tuple[int, int, str]],
        now: datetime,
    ) -> None:
        """Keep each other content of a stored uuid once (by uuid and content hash)."""
        rows: dict[tuple[str, str], tuple[datetime, str, str]] = {}
        for k, i, stored_hash in clashes:
            part = parts[k]
            text = _text(part, i)
            uuid: str = part.batch.columns["uuid"][i]
            when: datetime = part.batch.columns["published"][i]
            rows.setdefault((uuid, _sha256(text)), (when, text.decode(), stored_hash))
        count = len(rows)
        table = Table.of(
            {
                "source": repeated(source, count, "string"),
                "uuid": strings([u for u, _ in rows]),
                "published": column([r[0] for r in rows.values()], "timestamp"),
                "raw_hash": strings([h for _, h in rows]),
                "raw": strings([r[1] for r in rows.values()]),
                "stored_hash": strings([r[2] for r in rows.values()]),
                "seen_at": repeated(now, count, "timestamp"),
            }
        )
        with registered(con, "page_conflicts", table):
            con.execute(
                "INSERT INTO conflicts BY NAME SELECT * FROM page_conflicts p WHERE NOT EXISTS "
                "(SELECT 1 FROM conflicts c WHERE c.uuid = p.uuid AND c.raw_hash = p.raw_hash)"
            )

    def _insert_rows(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        parts: Sequence[_Part],
        kept: list[list[int]],
        now: datetime,
    ) -> None:
        names = [c.name for c in self.mapping.columns]
        next_seq = self._next_seq
        batches: list[dict[str, CArray]] = []
        for part, keep in zip(parts, kept, strict=True):
            if not keep:
                continue
            # every accepted row goes to DuckDB, with ``keep_`` false on those left out
            size = len(part.batch.accepted)
            wanted = set(keep)
            seqs = dict(zip(keep, range(next_seq, next_seq + len(keep)), strict=True))
            next_seq += len(keep)
            extra = {
                "keep_": column([i in wanted for i in range(size)], "bool"),
                "source": repeated(source, size, "string"),
                "mapping_version": repeated(self.mapping.version, size, "string"),
                "mapping_issues": column([i or None for i in part.batch.issues], "list[string]"),
                "ingested_at": repeated(now, size, "timestamp"),
                "raw": raw_array(part.raw, part.batch.accepted),
            }
            if not self.lake:  # the lake's ingest_seq is its row id (``lakeschema``)
                extra["ingest_seq"] = column([seqs.get(i) for i in range(size)], "int")
            columns = dict(zip(names, part.batch.arrow_columns(self.mapping), strict=True))
            batches.append({**columns, **extra})
        table = Table.of(*batches)
        with registered(con, "page_rows", table):
            con.execute(
                f"INSERT INTO {self.events_table} BY NAME "
                "SELECT * EXCLUDE (keep_) FROM page_rows WHERE keep_"
            )
        self._next_seq = next_seq

    def _insert_rejects(self, con: duckdb.DuckDBPyConnection, page: PageRows, now: datetime) -> int:
        """Keep the page's rejected events, each once (by source and content hash): those the
        mapping refused, and the elements that could not be decoded (see ``schema``)."""
        rejected = page.batch.rejected
        if not rejected and not page.bad:
            return 0
        rows: dict[str, tuple[str | None, str, str]] = {}
        for index, reason in rejected:
            raw = page.raw[index]
            digest = hashlib.sha256(raw.encode()).hexdigest()
            rows.setdefault(digest, (page.uuids_in[index], reason, raw))
        before = _count(con, "SELECT count(*) FROM rejects WHERE source = ?", [page.source])
        if rows:
            count = len(rows)
            table = Table.of(
                {
                    "source": repeated(page.source, count, "string"),
                    "uuid": strings([r[0] for r in rows.values()]),
                    "reason": strings([r[1] for r in rows.values()]),
                    "raw_hash": strings(list(rows)),
                    "raw": strings([r[2] for r in rows.values()]),
                    "mapping_version": repeated(self.mapping.version, count, "string"),
                    "first_seen": repeated(now, count, "timestamp"),
                }
            )
            with registered(con, "page_rejects", table):
                con.execute(
                    "INSERT INTO rejects BY NAME SELECT * FROM page_rejects p WHERE NOT EXISTS "
                    "(SELECT 1 FROM rejects r "
                    "WHERE r.source = p.source AND r.raw_hash = p.raw_hash)"
                )
        undecoded: dict[str, tuple[str, bytes]] = {}
        for bad in page.bad:
            undecoded.setdefault(hashlib.sha256(bad.raw).hexdigest(), (bad.reason, bad.raw))
        if undecoded:  # one statement for all of them, however many a page holds
            con.execute(
                "INSERT INTO rejects (source, reason, raw_hash, raw, raw_bytes, "
                "mapping_version, first_seen) "
                "SELECT $source, b.reason, b.raw_hash, b.raw, b.raw_bytes, $version, $now "
                "FROM (SELECT unnest($reasons) AS reason, unnest($hashes) AS raw_hash, "
                "unnest($texts) AS raw, unnest($bytes) AS raw_bytes) b "
                "WHERE NOT EXISTS (SELECT 1 FROM rejects r "
                "WHERE r.source = $source AND r.raw_hash = b.raw_hash)",
                {
                    "source": page.source,
                    "reasons": [reason for reason, _ in undecoded.values()],
                    "hashes": list(undecoded),
                    "texts": [
                        orjson.dumps(raw.decode("utf-8", "backslashreplace")).decode()
                        for _, raw in undecoded.values()
                    ],
                    "bytes": [raw for _, raw in undecoded.values()],
                    "version": self.mapping.version,
                    "now": now,
                },
            )
        after = _count(con, "SELECT count(*) FROM rejects WHERE source = ?", [page.source])
        return after - before

    def _update_cursor(
        self,
        con: duckdb.DuckDBPyConnection,
        page: PageRows,
        pages: int,
        stored: int,
        duplicates: int,
        rejected: int,
        newest: datetime | None,
        now: datetime,
    ) -> None:
        params = {
            "source": page.source,
            "org": page.org_url,
            "next": page.next_url,
            "pages": pages,
            "stored": stored,
            "dups": duplicates,
            "rejected": rejected,
            "newest": newest,
            "now": now,
        }
        if self.lake:  # an append-only log: the ``cursors`` view shows each source's newest
            con.execute(
                """
                INSERT INTO cursor_log
                SELECT $source, $org, coalesce($next, c.next_url),
                       coalesce(c.pages, 0) + $pages, coalesce(c.events, 0) + $stored,
                       coalesce(c.duplicates, 0) + $dups, coalesce(c.rejects, 0) + $rejected,
                       greatest(c.newest_published, $newest), $now,
                       coalesce(c.created_at, $now), $owner
                FROM (SELECT 1) LEFT JOIN cursors c ON c.source = $source
                """,
                {**params, "owner": self.owner},
            )
            return
        # An UPDATE, and an INSERT only for a source's first commit: DuckDB 1.5.5 spent twice
        # the CPU on the same change as INSERT ... ON CONFLICT DO UPDATE (4.1 against 2.0 ms,
        # once a commit)
        updated = con.execute(
            """
            UPDATE cursors SET
                org_url = $org,
                next_url = coalesce($next, next_url),
                pages = pages + $pages,
                events = events + $stored,
                duplicates = duplicates + $dups,
                rejects = rejects + $rejected,
                newest_published = greatest(newest_published, $newest),
                last_commit = $now
            WHERE source = $source
            """,
            params,
        ).fetchall()
        if updated and updated[0][0]:
            return
        con.execute(
            """
            INSERT INTO cursors (source, org_url, next_url, pages, events, duplicates, rejects,
                                 newest_published, last_commit, created_at)
            VALUES ($source, $org, $next, $pages, $stored, $dups, $rejected, $newest, $now, $now)
            """,
            params,
        )


def memory_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """DuckDB's memory limit in bytes (48 MiB where it cannot be read)."""
    rows = con.execute("SELECT current_setting('memory_limit')").fetchall()
    return size_bytes(str(rows[0][0])) if rows else 48 * 2**20


def size_bytes(text: str) -> int:
    """A size as DuckDB writes one ("48.0 MiB", "256MB") in bytes (48 MiB where it is none)."""
    m = _SIZE.match(text)
    if m is None:
        return 48 * 2**20
    unit = (m.group(2) or "B").upper().replace("I", "")
    scale = 1024 ** "BKMGT".index(unit[0])
    return int(float(m.group(1)) * scale)


def overflow_room(con: duckdb.DuckDBPyConnection) -> int:
    """How many bytes of large texts a commit may hold: a quarter of the memory limit."""
    return max(2**20, memory_bytes(con) // 4)


def _text(part: _Part, position: int) -> bytes:
    """The JSON text of a part's row at ``position``."""
    return text_bytes(part.raw, part.batch.accepted[position])


def _sha256(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: Table) -> Iterator[None]:
    """``table`` readable by SQL on ``con`` as ``name`` for the block, unregistered after it
    whatever happens (a page's rows are inserted from such a view)."""
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> int:
    rows = con.execute(sql, params).fetchall()
    return int(rows[0][0]) if rows else 0


def read_cursor(con: duckdb.DuckDBPyConnection, source: str) -> CursorState | None:
    row = con.execute(
        "SELECT source, org_url, next_url, pages, events, duplicates, rejects, "
        "newest_published, last_commit, created_at FROM cursors WHERE source = ?",
        [source],
    ).fetchall()
    return CursorState(*row[0]) if row else None

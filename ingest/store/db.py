"""The DuckDB store: open, commit a page with its cursor in one transaction, read cursors."""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from nanoarrow.c_array import CArray

from ingest.errors import DatabaseLocked, StoreError
from ingest.faults import crash_point
from ingest.mapping import CompiledMapping, MappedBatch
from ingest.mapping.arrow import Table, column, repeated, strings
from ingest.store.rawtexts import RawTexts, raw_array
from ingest.store.schema import ensure_mapping_columns, migrate

DEFAULT_DB = Path("state/oktaduck.duckdb")
# DuckDB's own default is 80% of the machine's memory, kept as buffer cache; a collector
# needs far less, and a bounded cache keeps the daemon's footprint flat as tables grow. The
# daemon's feeds want room (30-day detections over 5M rows slow down 2-3x at 128MB); a
# one-shot `poll` or `backfill` serves no queries and runs in the smaller INGEST budget:
# 100k events took as long at 48MB as at 128MB and peaked 80MB lower (tests/perf).
DEFAULT_MEMORY_LIMIT = "512MB"
INGEST_MEMORY_LIMIT = "48MB"
# A one-shot ingest's pages are mapped by a child process on the other core; DuckDB working
# on one thread leaves it that core (100k events: 3% faster than on two).
INGEST_THREADS = 1
# DuckDB checkpoints once the WAL holds this much (its default is 16MB). Each checkpoint
# rewrites the table's last, partly filled row group with zstd, so while catching up frequent
# checkpoints compress the same raw JSON over and over: at 16MB, storing 100k events cost
# 10.0 CPU s; at 256MB, 5.8 (tests/perf). A larger WAL only costs disk and replay time.
CHECKPOINT_THRESHOLD = "256MB"


@dataclass(frozen=True)
class PageRows:
    """One Okta page, mapped, ready to be committed with the cursor that follows it."""

    source: str
    org_url: str
    next_url: str | None
    batch: MappedBatch
    raw: Sequence[str] | RawTexts  # every input event's JSON text, by input index
    uuids_in: Sequence[str | None]  # every input event's uuid where it had one, by input index


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
    duplicates: int
    rejected: int
    newest_published: datetime | None


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
    if "Could not set lock" in str(err) or "Conflicting lock" in str(err):
        pid = re.search(r"PID (\d+)", str(err))
        holder = f" (PID {pid.group(1)})" if pid else ""
        return DatabaseLocked(
            f"database {path} is in use by another process{holder}; "
            "only one oktaduck writer can open it at a time"
        )
    return StoreError(f"database {path}: {text}")


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    elif not path.exists():
        raise StoreError(f"database {path} does not exist; run `oktaduck poll` first")
    try:
        # No SQL run here may read or write files: the database is its only file.
        con = duckdb.connect(
            str(path), read_only=read_only, config={"enable_external_access": False}
        )
        if not configuration_locked(con):  # else another handle in this process did it
            # GLOBAL: every cursor of this database (each query has one) is in UTC too, and
            # after the lock below a cursor could not set it for itself.
            con.execute("SET GLOBAL TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            if read_only:
                con.execute(f"SET memory_limit = '{DEFAULT_MEMORY_LIMIT}'")
                lock_configuration(con)
    except duckdb.Error as err:
        raise translate(err, path) from None
    if not read_only:
        with contextlib.suppress(OSError):
            path.chmod(0o600)
    return con


def lock_configuration(con: duckdb.DuckDBPyConnection) -> None:
    """From now on no statement can change a setting of this database, on any connection or
    cursor: a query cannot raise ``memory_limit``, turn file access back on or unlock it
    (``SET``, ``SET GLOBAL``, ``RESET``, ``PRAGMA`` and ``EXPLAIN ANALYZE SET`` all fail).
    Everything that configures the database (``connect()``, ``Store()``) runs before it."""
    con.execute("SET lock_configuration = true")


def configuration_locked(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute("SELECT current_setting('lock_configuration')").fetchall()
    return bool(rows and rows[0][0])


class Store:
    """The writer's handle on the database. Commits are serialized by a lock."""

    def __init__(
        self,
        path: Path,
        mapping: CompiledMapping,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = path
        self.mapping = mapping
        self.con = connect(path)
        self._lock = threading.Lock()
        try:
            locked = configuration_locked(self.con)  # by another Store of this process
            if not locked:
                self.con.execute(f"SET memory_limit = '{memory_limit or DEFAULT_MEMORY_LIMIT}'")
                self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
            if threads is not None and not locked:
                self.con.execute(f"SET threads = {int(threads)}")
            migrate(self.con)
            ensure_mapping_columns(self.con, mapping.columns)
            row = self.con.execute("SELECT coalesce(max(ingest_seq), 0) FROM events").fetchall()
            if not locked:
                lock_configuration(self.con)
        except duckdb.Error as err:
            self.con.close()
            raise translate(err, path) from None
        self._next_seq = int(row[0][0]) + 1 if row else 1

    def close(self) -> None:
        with self._lock:
            self.con.close()

    def __enter__(self) -> Store:
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
                raise translate(err, self.path) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            con = self.con
            try:
                con.execute("BEGIN TRANSACTION")
                yield con
                con.execute("COMMIT")
            except duckdb.Error as err:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise translate(err, self.path) from None
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise

    def cursor(self, source: str) -> CursorState | None:
        with self._lock:
            return read_cursor(self.con, source)

    def commit_page(self, page: PageRows, now: datetime) -> CommitResult:
        """Store a page's new events, its rejects and its ``next`` URL in ONE transaction."""
        return self.commit_pages([page], now)

    def commit_pages(self, pages: Sequence[PageRows], now: datetime) -> CommitResult:
        """Store consecutive pages of one source and the ``next`` URL that follows the last
        one, in ONE transaction: all of them with the cursor, or none.

        The pages' new events go in with one statement. Events already stored, or earlier in
        the group, are skipped by ``uuid``; see ``_existing`` for why that lookup stays cheap
        however large the table grows.
        """
        stored = duplicates = rejected = 0
        newest: datetime | None = None
        with self.transaction() as con:
            crash_point("store.begun")
            parts = [_Part(page.batch, range(len(page.batch.accepted)), page.raw) for page in pages]
            kept = self._insert_parts(con, pages[0].source, parts, now) if pages else []
            for page, keep in zip(pages, kept, strict=True):
                published: list[datetime] = page.batch.columns["published"]
                stored += len(keep)
                duplicates += len(page.batch.accepted) - len(keep)
                page_newest = max((published[i] for i in keep), default=None)
                if page_newest is not None:
                    newest = max(newest or page_newest, page_newest)
            crash_point("store.events_inserted")
            for page in pages:
                rejected += self._insert_rejects(con, page, now)
            crash_point("store.rejects_inserted")
            if pages:
                self._update_cursor(
                    con, pages[-1], len(pages), stored, duplicates, rejected, newest, now
                )
            crash_point("store.cursor_updated")
        crash_point("store.committed")
        return CommitResult(stored, duplicates, rejected, newest)

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
        (``raw`` is indexed like the batch's input); return the positions inserted."""
        return self._insert_parts(con, source, [_Part(batch, positions, raw)], now)[0]

    def _insert_parts(
        self, con: duckdb.DuckDBPyConnection, source: str, parts: Sequence[_Part], now: datetime
    ) -> list[list[int]]:
        """Insert, in one statement, each part's rows whose uuid is neither stored nor met
        earlier in the parts; return the positions inserted, part by part."""
        seen: set[str] = set()
        firsts: list[list[int]] = []
        uuids: list[str] = []
        published: list[datetime] = []
        for part in parts:
            part_uuids: list[str] = part.batch.columns["uuid"]
            part_published: list[datetime] = part.batch.columns["published"]
            first = []
            for i in part.positions:
                if part_uuids[i] not in seen:
                    seen.add(part_uuids[i])
                    first.append(i)
                    uuids.append(part_uuids[i])
                    published.append(part_published[i])
            firsts.append(first)
        existing = self._existing(con, uuids, published)
        kept = [
            [i for i in first if part.batch.columns["uuid"][i] not in existing]
            if existing
            else first
            for part, first in zip(parts, firsts, strict=True)
        ]
        if any(kept):
            self._insert_rows(con, source, parts, kept, now)
        return kept

    def _existing(
        self, con: duckdb.DuckDBPyConnection, uuids: list[str], published: list[datetime]
    ) -> set[str]:
        """The given uuids that are stored already.

        An event's uuid always comes with the same ``published`` time, so only stored rows in
        the batch's own published range can match, and the lookup's cost does not grow with
        the table. While catching up every batch is newer than anything stored; the first
        query, answered from the newest rows alone, says so and the lookup is skipped.
        """
        if not uuids:
            return set()
        lo = min(published)
        rows = con.execute(
            "SELECT max(published) FROM events WHERE published >= $lo", {"lo": lo}
        ).fetchall()
        newest: datetime | None = rows[0][0] if rows else None
        if newest is None:
            return set()
        candidates = [(u, p) for u, p in zip(uuids, published, strict=True) if p <= newest]
        if not candidates:
            return set()
        page_uuids = Table.of({"uuid": strings([u for u, _ in candidates])})
        con.register("page_uuids", page_uuids)
        try:
            rows = con.execute(
                "SELECT e.uuid FROM events e WHERE e.published BETWEEN $lo AND $hi "
                "AND e.uuid IN (SELECT uuid FROM page_uuids)",
                {"lo": lo, "hi": max(p for _, p in candidates)},
            ).fetchall()
        finally:
            con.unregister("page_uuids")
        return {r[0] for r in rows}

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
                "ingest_seq": column([seqs.get(i) for i in range(size)], "int"),
                "source": repeated(source, size, "string"),
                "mapping_version": repeated(self.mapping.version, size, "string"),
                "mapping_issues": column([i or None for i in part.batch.issues], "list[string]"),
                "ingested_at": repeated(now, size, "timestamp"),
                "raw": raw_array(part.raw, part.batch.accepted),
            }
            columns = dict(zip(names, part.batch.arrow_columns(self.mapping), strict=True))
            batches.append({**columns, **extra})
        table = Table.of(*batches)
        con.register("page_rows", table)
        try:
            con.execute(
                "INSERT INTO events BY NAME SELECT * EXCLUDE (keep_) FROM page_rows WHERE keep_"
            )
        finally:
            con.unregister("page_rows")
        self._next_seq = next_seq

    def _insert_rejects(self, con: duckdb.DuckDBPyConnection, page: PageRows, now: datetime) -> int:
        rejected = page.batch.rejected
        if not rejected:
            return 0
        rows: dict[str, tuple[str | None, str, str]] = {}
        for index, reason in rejected:
            raw = page.raw[index]
            digest = hashlib.sha256(raw.encode()).hexdigest()
            rows.setdefault(digest, (page.uuids_in[index], reason, raw))
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
        con.register("page_rejects", table)
        try:
            before = _count(con, "SELECT count(*) FROM rejects WHERE source = ?", [page.source])
            con.execute(
                "INSERT INTO rejects BY NAME SELECT * FROM page_rejects p WHERE NOT EXISTS "
                "(SELECT 1 FROM rejects r WHERE r.source = p.source AND r.raw_hash = p.raw_hash)"
            )
            after = _count(con, "SELECT count(*) FROM rejects WHERE source = ?", [page.source])
        finally:
            con.unregister("page_rejects")
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
        con.execute(
            """
            INSERT INTO cursors (source, org_url, next_url, pages, events, duplicates, rejects,
                                 newest_published, last_commit, created_at)
            VALUES ($source, $org, $next, $pages, $stored, $dups, $rejected, $newest, $now, $now)
            ON CONFLICT (source) DO UPDATE SET
                org_url = excluded.org_url,
                next_url = coalesce(excluded.next_url, cursors.next_url),
                pages = cursors.pages + excluded.pages,
                events = cursors.events + excluded.events,
                duplicates = cursors.duplicates + excluded.duplicates,
                rejects = cursors.rejects + excluded.rejects,
                newest_published = greatest(cursors.newest_published, excluded.newest_published),
                last_commit = excluded.last_commit
            """,
            {
                "source": page.source,
                "org": page.org_url,
                "next": page.next_url,
                "pages": pages,
                "stored": stored,
                "dups": duplicates,
                "rejected": rejected,
                "newest": newest,
                "now": now,
            },
        )


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

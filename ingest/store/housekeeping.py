"""Housekeeping of a lake: small commits make small files, and snapshots keep old ones.

Each commit of a few events writes them into the catalog (data inlining, ``inline_rows``) or
into a small Parquet file, and every commit is a snapshot that keeps the files it saw. One
daemon (the holder of the lease ("housekeeping", "lake")) runs :func:`housekeep` every
``compact_every``:

1. the append-only cursor logs lose the rows that are neither the newest of their source (or
   sink) nor younger than ``keep_snapshots`` (the ``cursors`` and ``export_cursors`` views show
   the newest only, so nothing a query reads changes), and the heartbeat log likewise;
2. ``ducklake_flush_inlined_data``: rows kept in the catalog go to Parquet files;
3. ``ducklake_merge_adjacent_files``: small files of one partition (a day of events) become
   one;
4. ``ducklake_expire_snapshots``: snapshots older than ``keep_snapshots`` are forgotten (time
   travel reaches back that far, no further);
5. ``ducklake_cleanup_old_files``: the files only those snapshots used are deleted once they
   have been unused for ``keep_snapshots`` as well, so a reader in the middle of a query on an
   old snapshot does not lose its files.

Row ids (the ``events`` view's ``ingest_seq``) survive all of it. Writers only insert, so the
steps rarely meet them; a step that loses a race with another writer (the cursor logs' DELETE
can) is skipped and runs again next time. Each step was tried on a lake with its views: DuckDB
1.5.5 crashes in ``ducklake_set_option`` once a view exists, and none of these does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from ingest.base.errors import LakeUnavailable
from ingest.store.lake import LAKE, LakeConfig, translate_lake
from ingest.store.lakeschema import rollback


@dataclass(frozen=True)
class LakeFiles:
    """The data files the lake's current snapshot uses (delete files included)."""

    files: int
    bytes: int


@dataclass(frozen=True)
class HousekeepingResult:
    before: LakeFiles
    after: LakeFiles
    cursor_rows_deleted: int  # from cursor_log and export_cursor_log
    inlined_rows_flushed: int
    files_merged: int  # small files replaced by larger ones
    snapshots_expired: int
    files_deleted: int  # from the data path
    skipped: tuple[str, ...] = ()  # steps that failed (a race with a writer): next time


def lake_files(con: duckdb.DuckDBPyConnection) -> LakeFiles:
    """How many data files (and bytes) the current snapshot of the lake's tables uses (the
    leases' tables left out: a few rows each, kept in the catalog)."""
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = $db "
            "AND NOT starts_with(table_name, 'lease_') ORDER BY 1",
            {"db": LAKE},
        ).fetchall()
    ]
    files = size = 0
    for table in tables:
        rows = con.execute(
            "SELECT count(*) + count(delete_file), "
            "coalesce(sum(data_file_size_bytes), 0) + coalesce(sum(delete_file_size_bytes), 0) "
            f"FROM ducklake_list_files('{LAKE}', $table)",
            {"table": table},
        ).fetchall()
        files += int(rows[0][0])
        size += int(rows[0][1])
    return LakeFiles(files, size)


# The rows of a log that no view shows any more: not the newest of their source or sink, and
# written before the cutoff. ``written`` is the time a row was added.
_COMPACT_LOG = """
DELETE FROM {lake}.{table}
WHERE {written} < $cutoff
  AND rowid NOT IN (SELECT max(rowid) FROM {lake}.{table} GROUP BY {key})
"""
_LOGS = (
    ("cursor_log", "source", "last_commit"),
    ("export_cursor_log", "sink", "coalesce(greatest(last_success, last_error_at), created_at)"),
    ("heartbeat_log", "owner", "beat_at"),  # only each daemon's newest heartbeat counts
)


def compact_logs(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> int:
    """Delete the rows of the cursor and heartbeat logs that are superseded and older than
    ``cutoff``, in one transaction; how many. A conflict with a writer raises DuckDB's
    error."""
    deleted = 0
    con.execute("BEGIN TRANSACTION")
    try:
        for table, key, written in _LOGS:
            rows = con.execute(
                _COMPACT_LOG.format(lake=LAKE, table=table, key=key, written=written),
                {"cutoff": cutoff},
            ).fetchall()
            deleted += int(rows[0][0]) if rows else 0
        con.execute("COMMIT")
    except BaseException:
        rollback(con)  # a COMMIT that lost has rolled back; its error is the one to see
        raise
    return deleted


def housekeep(
    con: duckdb.DuckDBPyConnection, lake: LakeConfig, now: datetime
) -> HousekeepingResult:
    """Run the steps of the module's docstring on a writer's connection to the lake (not the
    one commits use: merging files can take a while). A step that lost a race is named in
    ``skipped``; any other DuckDB error is translated (``LakeUnavailable`` when the catalog
    or the data path cannot be reached) and ends the run."""
    cutoff = now - lake.keep_snapshots
    skipped: list[str] = []

    def step(name: str, sql: str, params: dict[str, object] | None = None) -> list[Any]:
        """One step; a step that fails while the lake is reachable (it lost a race with
        a writer, or PostgreSQL aborted it) is skipped, and runs again next time."""
        try:
            return con.execute(sql, params or {}).fetchall()
        except duckdb.Error as err:
            if isinstance(translate_lake(err, lake), LakeUnavailable):
                raise
            skipped.append(name)
            return []

    try:
        before = lake_files(con)
        try:
            compacted = compact_logs(con, cutoff)
        except duckdb.Error as err:
            if isinstance(translate_lake(err, lake), LakeUnavailable):
                raise
            skipped.append("compact_cursor_logs")
            compacted = 0
        flushed = step("flush_inlined_data", f"CALL ducklake_flush_inlined_data('{LAKE}')")
        merged = step("merge_adjacent_files", f"CALL ducklake_merge_adjacent_files('{LAKE}')")
        expired = step(
            "expire_snapshots",
            f"CALL ducklake_expire_snapshots('{LAKE}', older_than => $cutoff)",
            {"cutoff": cutoff},
        )
        deleted = step(
            "cleanup_old_files",
            f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => $cutoff)",
            {"cutoff": cutoff},
        )
        after = lake_files(con)
    except duckdb.Error as err:
        raise translate_lake(err, lake) from None
    return HousekeepingResult(
        before=before,
        after=after,
        cursor_rows_deleted=compacted,
        inlined_rows_flushed=sum(int(str(r[2])) for r in flushed),
        files_merged=sum(int(str(r[2])) for r in merged),
        snapshots_expired=len(expired),
        files_deleted=len(deleted),
        skipped=tuple(skipped),
    )

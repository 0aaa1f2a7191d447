"""The lake's schema, and the leases that give each source and sink one owner at a time.

The same tables and columns as the file store (``schema``), shaped for many writers under
DuckLake's optimistic concurrency, where two transactions conflict when they change the same
rows (an UPDATE is a delete and an insert; DELETEs of rows in one table conflict even when the
rows differ) and never when they only insert:

- ``event_rows`` holds the events, partitioned by day of ``published`` (a day's feed reads
  that day's files; retention drops whole files). ``events`` is a view of it that adds
  ``ingest_seq``: DuckLake's row id plus one. Row ids are handed out at commit, in commit
  order, and stay with a row through updates and compaction, so ``ingest_seq`` grows in
  commit order across every daemon, as an export cursor needs.
- ``cursor_log`` and ``export_cursor_log`` are append-only: a commit adds its source's (or
  sink's) new cursor as a row, with running totals. The views ``cursors`` and
  ``export_cursors`` show the newest row of each, so queries read them as in the file store.
- ``rejects``, ``conflicts``: as in the file store, only ever inserted into by a writer.
- ``import_log`` is append-only too: each commit of ``oktaduck import`` adds its file's
  progress as a row; the ``imports`` view shows the newest row of each import.
- ``lease_<kind>_<hash>``: one small table per source or sink, holding its owner and when the
  lease ends. Every commit of a page updates its source's lease row, so two processes that
  both believe they own a source cannot both commit: the later one conflicts, and after a
  takeover the old owner's update finds no row of its own (``LeaseLost``). The lease is the
  fence; one table each keeps the sources from conflicting with one another.
- ``heartbeat_log`` is append-only: a daemon adds a row every third of ``lease_ttl`` saying
  it is alive until then. A lease lasts while its own end or its owner's newest heartbeat is
  ahead (``alive_until``), so one small insert keeps every lease of a daemon, however many
  sources it holds, and never conflicts with a commit. Renewing each lease row instead took
  one UPDATE per source in a transaction that conflicted with the daemon's own commits:
  10-25 s for 20 sources on a loaded machine, longer than short leases last. A lease given
  back (its end set to 1970) is free whatever the heartbeat says.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from ingest.base.errors import LeaseLost

SCHEMA_VERSION = 4  # the file store's version this lake schema matches
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)  # the end of a lease its owner gave back

LAKE_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS event_rows (
    source VARCHAR NOT NULL,
    uuid VARCHAR NOT NULL,
    published TIMESTAMPTZ NOT NULL,
    event_type VARCHAR,
    mapping_version VARCHAR NOT NULL,
    mapping_issues VARCHAR[],
    ingested_at TIMESTAMPTZ NOT NULL,
    raw JSON NOT NULL
);
ALTER TABLE event_rows SET PARTITIONED BY (year(published), month(published), day(published));
CREATE OR REPLACE VIEW events AS SELECT rowid + 1 AS ingest_seq, * FROM event_rows;
CREATE TABLE IF NOT EXISTS cursor_log (
    source VARCHAR NOT NULL,
    org_url VARCHAR NOT NULL,
    next_url VARCHAR,
    pages BIGINT NOT NULL,
    events BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    rejects BIGINT NOT NULL,
    newest_published TIMESTAMPTZ,
    last_commit TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    owner VARCHAR
);
CREATE OR REPLACE VIEW cursors AS
SELECT source, org_url, next_url, pages, events, duplicates, rejects, newest_published,
       last_commit, created_at
FROM (SELECT *, row_number() OVER (PARTITION BY source ORDER BY rowid DESC) AS newest_
      FROM cursor_log)
WHERE newest_ = 1;
CREATE TABLE IF NOT EXISTS rejects (
    source VARCHAR NOT NULL,
    uuid VARCHAR,
    reason VARCHAR NOT NULL,
    raw_hash VARCHAR NOT NULL,
    raw JSON NOT NULL,
    mapping_version VARCHAR NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    raw_bytes BLOB
);
CREATE TABLE IF NOT EXISTS conflicts (
    source VARCHAR NOT NULL,
    uuid VARCHAR NOT NULL,
    published TIMESTAMPTZ NOT NULL,
    raw_hash VARCHAR NOT NULL,
    raw JSON NOT NULL,
    stored_hash VARCHAR NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS export_cursor_log (
    sink VARCHAR NOT NULL,
    last_seq BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    batches BIGINT NOT NULL,
    last_success TIMESTAMPTZ,
    last_error VARCHAR,
    last_error_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    owner VARCHAR
);
CREATE OR REPLACE VIEW export_cursors AS
SELECT sink, last_seq, delivered, batches, last_success, last_error, last_error_at, created_at
FROM (SELECT *, row_number() OVER (PARTITION BY sink ORDER BY rowid DESC) AS newest_
      FROM export_cursor_log)
WHERE newest_ = 1;
CREATE TABLE IF NOT EXISTS import_log (
    id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime TIMESTAMPTZ,
    head_sha256 VARCHAR NOT NULL,
    unwrap VARCHAR NOT NULL,
    position BIGINT NOT NULL,
    line BIGINT NOT NULL,
    records BIGINT NOT NULL,
    stored BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    owner VARCHAR
);
CREATE TABLE IF NOT EXISTS heartbeat_log (
    owner VARCHAR NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    beat_at TIMESTAMPTZ NOT NULL
);
CREATE OR REPLACE VIEW imports AS
SELECT * EXCLUDE (owner, newest_)
FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY rowid DESC) AS newest_
      FROM import_log)
WHERE newest_ = 1;
"""


def migrate_lake(
    con: duckdb.DuckDBPyConnection, columns: Callable[[], object] = lambda: None
) -> str:
    """Create the lake's tables where they are missing (one transaction): "" when they were
    up to date, "new" when this made them, "upgraded" when it brought an older lake's up to
    date. ``columns`` runs in the same transaction once the tables are there (the mapping's
    columns): a new lake's tables then change once, so each starts with a single inlined-data
    table and none is left behind for a flush to drop (``settle_inlined_tables``).

    Two writers creating a new lake at once conflict: the loser's error reaches the caller,
    which tries again and then finds the tables there. Nothing here calls
    ``ducklake_set_option``, which crashes DuckDB 1.5.5 once a view exists in the lake: the
    writer that lost the race would call it after the winner created the views (the inlining
    limit is an ATTACH option instead, ``lake.connect_lake``)."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND table_name = 'schema_migrations'"
    ).fetchall()
    existed = bool(rows and rows[0][0])
    if existed:
        found = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
        if found and found[0][0] >= SCHEMA_VERSION:
            return ""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(LAKE_SCHEMA)
        columns()
        con.execute(
            "INSERT INTO schema_migrations VALUES ($version, now())", {"version": SCHEMA_VERSION}
        )
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return "upgraded" if existed else "new"


def settle_inlined_tables(con: duckdb.DuckDBPyConnection, attempts: int = 5) -> bool:
    """Right after a change of an existing lake's tables (a column added, an upgrade), drop
    the inlined tables the change superseded, so that no reader ever sees one; whether that
    was done.

    DuckLake keeps a table's small commits in a catalog table named after the table's schema
    version, and a change of the table starts a new one. The old, empty one is dropped by
    the next ``ducklake_flush_inlined_data``, and every connection attached between the
    change and that flush keeps naming it: its reads of the table fail from then on until it
    attaches again (DuckDB 1.5.5 raises "Attempting to fetch from an unsuccessful query
    result" or an INTERNAL error that ends the connection; duckdb/ducklake issues 1305 and
    1413). Flushing here, a few milliseconds after the change, leaves nothing for the
    housekeeping's flush to drop; a connection attached within those milliseconds is caught
    all the same (a new lake is made without any, ``migrate_lake``). A flush that loses a
    race with a writer is tried again; when it never gets through, the housekeeping's flush
    drops them later."""
    for _ in range(attempts):
        try:
            con.execute("CALL ducklake_flush_inlined_data(current_database())").fetchall()
            return True
        except duckdb.Error:
            rollback(con)
    return False


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back what is left of a transaction: a COMMIT that lost a race has rolled it
    back already, and a second ROLLBACK would hide the conflict behind its own error."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def lease_table(kind: str, key: str) -> str:
    """The lease table of a source (``kind`` "source") or a sink ("sink")."""
    return f"lease_{kind}_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


@dataclass(frozen=True)
class Lease:
    kind: str
    key: str
    owner: str
    expires_at: datetime


def beat(con: duckdb.DuckDBPyConnection, owner: str, ttl: timedelta, now: datetime) -> None:
    """Say that ``owner`` is alive, and so holds its leases, until ``now + ttl``: one row
    appended in a transaction of its own (an insert never conflicts)."""
    con.execute(
        "INSERT INTO heartbeat_log VALUES ($owner, $expires, $now)",
        {"owner": owner, "expires": now + ttl, "now": now},
    )


def end_beat(con: duckdb.DuckDBPyConnection, owner: str, now: datetime) -> None:
    """Say that ``owner`` stopped: its newest heartbeat ends at once."""
    con.execute(
        "INSERT INTO heartbeat_log VALUES ($owner, $ended, $now)",
        {"owner": owner, "ended": RELEASED, "now": now},
    )


def owner_alive(con: duckdb.DuckDBPyConnection, owner: str, now: datetime) -> bool:
    """Whether ``owner``'s newest heartbeat is ahead of ``now``."""
    return alive_until(con, owner, RELEASED + timedelta(microseconds=1)) > now


def live_owners(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """How many owners' newest heartbeat is ahead of ``now``: the daemons sharing the lake."""
    rows = con.execute(
        "SELECT count(*) FROM (SELECT expires_at, row_number() OVER "
        "(PARTITION BY owner ORDER BY rowid DESC) AS newest_ FROM heartbeat_log) "
        "WHERE newest_ = 1 AND expires_at > $now",
        {"now": now},
    ).fetchall()
    return int(rows[0][0]) if rows else 0


def alive_until(con: duckdb.DuckDBPyConnection, owner: str, expires_at: datetime) -> datetime:
    """When a lease of ``owner`` whose own end is ``expires_at`` ends: that end, or the
    owner's newest heartbeat if later; a lease given back ends at once."""
    if expires_at <= RELEASED:
        return expires_at
    rows = con.execute(
        "SELECT expires_at FROM heartbeat_log WHERE owner = $owner ORDER BY rowid DESC LIMIT 1",
        {"owner": owner},
    ).fetchall()
    return max(expires_at, rows[0][0]) if rows else expires_at


def read_lease(con: duckdb.DuckDBPyConnection, kind: str, key: str) -> Lease | None:
    """The current lease of a source or sink, if any was ever taken (its end as
    ``alive_until`` has it)."""
    table = lease_table(kind, key)
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND table_name = $t",
        {"t": table},
    ).fetchall()
    if not exists or not exists[0][0]:
        return None
    rows = con.execute(f"SELECT owner, expires_at FROM {table} WHERE key = $k", {"k": key})
    found = rows.fetchall()
    if not found:
        return None
    return Lease(kind, key, found[0][0], alive_until(con, found[0][0], found[0][1]))


def take_lease(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    key: str,
    owner: str,
    ttl: timedelta,
    now: datetime,
) -> Lease:
    """Take (or renew) the lease of a source or sink for ``ttl`` in one transaction of its
    own; LeaseLost when another owner holds it and it has not ended. A commit that conflicts
    with another taker's raises the DuckDB error: the caller tries again later."""
    table = lease_table(kind, key)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (key VARCHAR NOT NULL, owner VARCHAR NOT NULL, "
            "expires_at TIMESTAMPTZ NOT NULL, taken_at TIMESTAMPTZ NOT NULL, "
            "commits BIGINT NOT NULL)"
        )
        found = con.execute(
            f"SELECT owner, expires_at, taken_at FROM {table} WHERE key = $k", {"k": key}
        ).fetchall()
        until = alive_until(con, found[0][0], found[0][1]) if found else None
        if found and found[0][0] != owner and until is not None and until > now:
            raise LeaseLost(f"{kind} {key} is owned by {found[0][0]} until {until.isoformat()}")
        taken = found[0][2] if found and found[0][0] == owner else now
        con.execute(f"DELETE FROM {table}")
        con.execute(
            f"INSERT INTO {table} VALUES ($k, $owner, $expires, $taken, 0)",
            {"k": key, "owner": owner, "expires": now + ttl, "taken": taken},
        )
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return Lease(kind, key, owner, now + ttl)


def fence(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    key: str,
    owner: str,
    ttl: timedelta,
    now: datetime,
) -> None:
    """Inside a commit's transaction: renew the lease it holds, or LeaseLost when another
    process has taken it over. Two processes that both pass this for one source conflict at
    COMMIT, so only one of their commits lands."""
    table = lease_table(kind, key)
    try:
        rows = con.execute(
            f"UPDATE {table} SET expires_at = $expires, commits = commits + 1 "
            "WHERE key = $k AND owner = $owner",
            {"k": key, "owner": owner, "expires": now + ttl},
        ).fetchall()
    except duckdb.CatalogException:
        rows = [(0,)]
    if not rows or not rows[0][0]:
        raise LeaseLost(f"{kind} {key}: this process ({owner}) does not hold its lease")


def release_lease(con: duckdb.DuckDBPyConnection, kind: str, key: str, owner: str) -> None:
    """End this owner's lease now, so another process may take the source or sink at once."""
    table = lease_table(kind, key)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"UPDATE {table} SET expires_at = TIMESTAMPTZ '1970-01-01 00:00:00+00' "
            "WHERE key = $k AND owner = $owner",
            {"k": key, "owner": owner},
        )
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


def list_leases(con: duckdb.DuckDBPyConnection) -> list[Lease]:
    """Every lease ever taken in the lake (sources, sinks, housekeeping), by kind and key."""
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND starts_with(table_name, 'lease_') ORDER BY 1"
    ).fetchall()
    leases = []
    for (table,) in tables:
        kind = str(table).split("_")[1]
        for key, owner, expires in con.execute(
            f"SELECT key, owner, expires_at FROM {table}"
        ).fetchall():
            leases.append(Lease(kind, key, owner, alive_until(con, owner, expires)))
    return sorted(leases, key=lambda lease: (lease.kind, lease.key))

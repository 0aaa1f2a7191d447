"""The DuckDB schema: numbered migrations, plus the mapping's columns added as they appear.

The ``events`` table holds a few system columns and one column per output field of the
normalized mapping. When a mapping gains a field, ``ensure_mapping_columns`` adds the column;
nothing is rewritten. Columns a mapping no longer declares are left in place.

``rejects`` keeps the events that could not be stored, with why (``reason``). ``raw`` is
always JSON: the event as decoded and written back (like ``events.raw``) when it was JSON,
or, for a page element that could not be decoded at all (bytes that are not UTF-8, nested
too deeply, cut short), a JSON string of its text with each byte that is not UTF-8 written
as ``\\xNN``; its exact bytes are then in ``raw_bytes`` (NULL otherwise) and ``raw_hash``
is their SHA-256. Such rows are never retried by ``remap``: no mapping can make them an
event.

``conflicts`` keeps an event whose uuid is stored already (or met earlier in the same
commit) with other content: ``raw`` and ``raw_hash`` are the newcomer's, ``stored_hash``
the SHA-256 of the stored event's ``raw``. The stored event stays as it is; the same
conflicting content delivered again is kept once.

``imports`` records, per archive file given to ``oktaduck import``, how far it was read and
committed (``ingest.store.imports`` describes its columns).
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from ingest.mapping import Column

# (column, DuckDB type) owned by the store rather than by a mapping.
SYSTEM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ingest_seq", "BIGINT NOT NULL"),
    ("source", "VARCHAR NOT NULL"),
    ("uuid", "VARCHAR NOT NULL"),
    ("published", "TIMESTAMPTZ NOT NULL"),
    ("event_type", "VARCHAR"),
    ("mapping_version", "VARCHAR NOT NULL"),
    ("mapping_issues", "VARCHAR[]"),
    ("ingested_at", "TIMESTAMPTZ NOT NULL"),
    ("raw", "JSON NOT NULL"),
)

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE events (
        ingest_seq BIGINT NOT NULL,
        source VARCHAR NOT NULL,
        uuid VARCHAR NOT NULL,
        published TIMESTAMPTZ NOT NULL,
        event_type VARCHAR,
        mapping_version VARCHAR NOT NULL,
        mapping_issues VARCHAR[],
        ingested_at TIMESTAMPTZ NOT NULL,
        -- zstd: the raw events take about a tenth of their JSON size instead of two thirds
        raw JSON NOT NULL USING COMPRESSION zstd
    );
    CREATE TABLE cursors (
        source VARCHAR PRIMARY KEY,
        org_url VARCHAR NOT NULL,
        next_url VARCHAR,
        pages BIGINT NOT NULL DEFAULT 0,
        events BIGINT NOT NULL DEFAULT 0,
        duplicates BIGINT NOT NULL DEFAULT 0,
        rejects BIGINT NOT NULL DEFAULT 0,
        newest_published TIMESTAMPTZ,
        last_commit TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE rejects (
        source VARCHAR NOT NULL,
        uuid VARCHAR,
        reason VARCHAR NOT NULL,
        raw_hash VARCHAR NOT NULL,
        raw JSON NOT NULL USING COMPRESSION zstd,
        mapping_version VARCHAR NOT NULL,
        first_seen TIMESTAMPTZ NOT NULL,
        resolved_at TIMESTAMPTZ
    );
    """,
    # 2: export cursors, one per configured sink.
    """
    CREATE TABLE export_cursors (
        sink VARCHAR PRIMARY KEY,
        last_seq BIGINT NOT NULL,
        delivered BIGINT NOT NULL DEFAULT 0,
        batches BIGINT NOT NULL DEFAULT 0,
        last_success TIMESTAMPTZ,
        last_error VARCHAR,
        last_error_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 3: the exact bytes of page elements that could not be decoded; second contents of a
    # stored uuid.
    """
    ALTER TABLE rejects ADD COLUMN raw_bytes BLOB;
    CREATE TABLE conflicts (
        source VARCHAR NOT NULL,
        uuid VARCHAR NOT NULL,
        published TIMESTAMPTZ NOT NULL,
        raw_hash VARCHAR NOT NULL,
        raw JSON NOT NULL USING COMPRESSION zstd,
        stored_hash VARCHAR NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 4: what `oktaduck import` read from which archive file (``ingest.store.imports``).
    """
    CREATE TABLE imports (
        id VARCHAR PRIMARY KEY,
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
        finished_at TIMESTAMPTZ
    );
    """,
)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply the migrations this database has not seen; return its schema version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
    current = int(row[0][0]) if row else 0
    for version, ddl in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(ddl)
            con.execute("INSERT INTO schema_migrations (version) VALUES (?)", [version])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        current = version
    return current


def ensure_mapping_columns(
    con: duckdb.DuckDBPyConnection, columns: Iterable[Column], table: str = "events"
) -> list[str]:
    """Add a column to ``table`` (the lake's is ``event_rows``) for every mapping field it
    lacks; return the added names."""
    existing = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = $table AND table_catalog = current_database()",
            {"table": table},
        ).fetchall()
    }
    added = []
    for column in columns:
        if column.name in existing:
            continue
        con.execute(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {column.duckdb_type}')
        added.append(column.name)
    return added

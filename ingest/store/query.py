"""Read-only access to the store for ``sql`` and ``status``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ingest.errors import StoreError
from ingest.store.db import connect, translate
from ingest.store.guard import check_read_only

_BATCH = 1000


@dataclass
class Result:
    columns: list[str]
    json_columns: frozenset[str]
    rows: Iterator[tuple[Any, ...]]


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    return connect(path, read_only=True)


def run_user_query(con: duckdb.DuckDBPyConnection, sql: str) -> Result:
    """Run SQL typed by a person: one read-only SELECT, never touching files."""
    check_read_only(con, sql)
    return run_query(con, sql)


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> Result:
    """Run ``sql``; rows stream in batches so a large answer is never held at once."""
    try:
        cur = con.execute(sql, params or {})
    except duckdb.Error as err:
        raise StoreError(f"query failed: {str(err).splitlines()[0]}") from None
    description = cur.description or []
    columns = [d[0] for d in description]
    json_columns = frozenset(d[0] for d in description if str(d[1]) == "JSON")

    def rows() -> Iterator[tuple[Any, ...]]:
        while True:
            try:
                batch = cur.fetchmany(_BATCH)
            except duckdb.Error as err:
                raise translate(err, "query") from None
            if not batch:
                return
            yield from batch

    return Result(columns, json_columns, rows())


STATUS_SQL = """
SELECT c.source,
       c.org_url,
       c.events AS events_stored,
       c.pages,
       c.duplicates,
       coalesce(r.open_rejects, 0) AS rejects,
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
ORDER BY c.source
"""


def status(con: duckdb.DuckDBPyConnection, now: datetime) -> Result:
    return run_query(con, STATUS_SQL, {"now": now})


def sink_status(con: duckdb.DuckDBPyConnection, now: datetime) -> Result:
    from ingest.export.deliver import SINK_STATUS_SQL

    return run_query(con, SINK_STATUS_SQL, {"now": now})

"""Run a feed against a DuckDB connection: bound parameters, a read-only transaction, limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from ingest.feeds.feedfile import bind, get_feed
from ingest.store.limits import DEFAULT_LIMITS
from ingest.store.query import Cancel, QueryLimits, Result, run_query


def run_feed(
    con: duckdb.DuckDBPyConnection,
    name: str,
    given: dict[str, Any],
    now: datetime,
    limits: QueryLimits = DEFAULT_LIMITS,
    *,
    cancel: Cancel | None = None,
) -> Result:
    """Run feed ``name`` with the parameters ``given`` on a read-only cursor of ``con``'s
    database, interrupted after ``limits.timeout`` or by ``cancel``; the caller closes the
    Result."""
    bound = bind(get_feed(name), given, now)
    return run_query(con, bound.sql, bound.params, limits, cancel=cancel)

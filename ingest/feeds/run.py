"""Run a feed or SQL against a DuckDB connection, with the read-only guard applied."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from ingest.feeds.catalog import bind, get_feed
from ingest.store.query import Result, run_query


def run_feed(
    con: duckdb.DuckDBPyConnection, name: str, given: dict[str, Any], now: datetime
) -> Result:
    bound = bind(get_feed(name), given, now)
    return run_query(con, bound.sql, bound.params)

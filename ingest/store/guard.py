"""Only one read-only SELECT at a time reaches the database from ``sql``, feeds and the API.

Two layers: the statement must parse as exactly one SELECT (or EXPLAIN), which refuses
INSERT, UPDATE, DELETE, COPY, ATTACH, SET, PRAGMA, CALL, INSTALL and the rest; and every
connection is opened with ``enable_external_access = false``, so table functions such as
``read_csv('/etc/passwd')`` cannot touch the file system either.
"""

from __future__ import annotations

import duckdb

from ingest.errors import QueryRefused

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as err:
        raise QueryRefused(f"query does not parse: {str(err).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryRefused(f"send one statement at a time (got {len(statements)})")
    kind = statements[0].type
    if kind not in ALLOWED:
        raise QueryRefused(f"only SELECT queries are allowed here (got {kind.name})")

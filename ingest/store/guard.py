"""The friendly first line in front of every query a person sends (``sql``, the API).

It explains a refusal in a sentence before DuckDB is asked to run anything. It is not what
keeps the store safe: ``ingest.store.query`` runs every query on a cursor of its own inside
``BEGIN TRANSACTION READ ONLY`` (DuckDB refuses any write there, EXPLAIN ANALYZE and
data-modifying CTEs included), the configuration is locked once the store is open (no
``SET``/``RESET``/``PRAGMA`` can raise the memory limit or reopen file access), and every
connection has ``enable_external_access = false`` (no ``read_csv('/etc/passwd')``, COPY,
ATTACH, INSTALL or LOAD). The guard only has to be right for what it lets through:

- exactly one statement, a SELECT (``FROM t``, ``VALUES``, ``DESCRIBE``, ``SHOW`` and
  ``SUMMARIZE`` parse as one), or ``EXPLAIN [ANALYZE] <a SELECT>``;
- none of the table or scalar functions that change the database or its settings rather than
  read it (``checkpoint()``, ``enable_logging()``...), nor those that run SQL given as a
  string (``query('...')``), which the guard could not see into.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import orjson

from ingest.errors import QueryRefused

# Functions a SELECT may call that act instead of read: they checkpoint or truncate, switch
# logging or profiling, register resources or grammar, or run SQL handed over as text.
REFUSED_FUNCTIONS = frozenset(
    {
        "checkpoint",
        "force_checkpoint",
        "enable_logging",
        "disable_logging",
        "truncate_duckdb_logs",
        "enable_profiling",
        "disable_profiling",
        "add_grammar_extension",
        "remove_grammar_extension",
        "register_external_resource",
        "register_external_resource_type",
        "create_external_resource",
        "deregister_external_resource",
        "destroy_external_resource",
        "query",
        "json_execute_serialized_sql",
    }
)
# What may stand between EXPLAIN and the statement it explains.
_EXPLAIN_WORDS = {"ANALYZE", "ANALYSE", "VERBOSE"}


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse, with a one-line QueryRefused, anything but one SELECT (or EXPLAIN of one)."""
    statement = _one_statement(con, sql)
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        inner_sql = _explained(statement.query)
        inner = _one_statement(con, inner_sql) if inner_sql else None
        if inner is None or inner.type != duckdb.StatementType.SELECT:
            what = inner.type.name if inner is not None else "nothing"
            raise QueryRefused(f"EXPLAIN is allowed for SELECT queries only (got {what})")
        statement = inner
    elif kind != duckdb.StatementType.SELECT:
        raise QueryRefused(f"only SELECT queries are allowed here (got {kind.name})")
    _check_functions(con, statement.query)


def _one_statement(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as err:
        raise QueryRefused(f"query does not parse: {_first_line(err)}") from None
    if len(statements) != 1:
        raise QueryRefused(f"send one statement at a time (got {len(statements)})")
    return statements[0]


def _explained(sql: str) -> str:
    """The statement an ``EXPLAIN [ANALYZE] [(options)]`` explains, comments skipped."""
    every = duckdb.tokenize(sql)
    ends = [pos for pos, _ in every[1:]] + [len(sql)]
    tokens = [
        (pos, sql[pos:end].strip())
        for (pos, kind), end in zip(every, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]
    words = [word for _, word in tokens]
    if not words or words[0].upper() != "EXPLAIN":
        return ""
    i = 1
    if i < len(words) and words[i] == "(":
        depth = 0
        while i < len(words):
            depth += words[i].count("(") - words[i].count(")")
            i += 1
            if depth <= 0:
                break
    while i < len(words) and words[i].upper() in _EXPLAIN_WORDS:
        i += 1
    return sql[tokens[i][0] :] if i < len(tokens) else ""


def _check_functions(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        rows = con.execute("SELECT json_serialize_sql($sql)", {"sql": sql}).fetchall()
        tree = orjson.loads(rows[0][0])
    except duckdb.InterruptException:
        raise  # the query was cancelled or timed out: the caller says so
    except (duckdb.Error, orjson.JSONDecodeError, IndexError) as err:
        raise QueryRefused(f"query could not be checked: {_first_line(err)}") from None
    if tree.get("error"):
        raise QueryRefused(f"query could not be checked: {tree.get('error_message', '')}")
    for name in _function_names(tree):
        if name.lower() in REFUSED_FUNCTIONS:
            raise QueryRefused(f"{name}() is not allowed here: queries only read the store")


def _function_names(tree: Any) -> Iterator[str]:
    """Every ``function_name`` in the parse tree (walked without recursion)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("function_name")
            if isinstance(name, str):
                yield name
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__

"""The friendly first line in front of every query a person sends (``sql``, the API).

It explains a refusal in a sentence before DuckDB is asked to run anything. It is not what
keeps the store safe: ``ingest.store.query`` runs every query on a cursor of its own inside
``BEGIN TRANSACTION READ ONLY`` (DuckDB refuses any write there, EXPLAIN ANALYZE included;
a data-modifying CTE does not even parse), the configuration is locked once the store is
open (no ``SET``/``RESET``/``PRAGMA`` can raise the memory limit or reopen file access), and
every connection has ``enable_external_access = false`` (no ``read_csv('/etc/passwd')``,
COPY, ATTACH, INSTALL or LOAD). The guard only has to be right for what it lets through:

- exactly one statement, a SELECT (``FROM t``, ``VALUES``, ``DESCRIBE``, ``SHOW`` and
  ``SUMMARIZE`` parse as one), or ``EXPLAIN [ANALYZE] <a SELECT>``;
- none of the table or scalar functions that change the database or its settings rather than
  read it (``checkpoint()``, ``enable_logging()``...), nor those that run SQL given as a
  string (``query('...')``), which the guard could not see into;
- on a lake, none of DuckLake's functions but those that read (``ducklake_snapshots``,
  ``ducklake_table_info``, ``ducklake_list_files``, ``ducklake_table_changes`` and the like),
  and none of the catalog drivers' (``postgres_execute``, ``postgres_query``,
  ``postgres_attach``, ``sqlite_attach``...): a READ_ONLY attach refuses their writes to the lake,
  but ``postgres_execute`` runs its SQL in the catalog's database with the catalog's role, and
  on the writer's connection (the daemon's API) the lake is not read-only. The catalog's own
  tables (``__ducklake_metadata_lake``) may be read; writing them is a statement other than a
  SELECT, refused like any other;
- no single value larger than the memory limit can govern: the size given to ``repeat``,
  ``lpad``, ``rpad``, ``list_resize``, to ``range``/``generate_series`` used as a value, and
  the widths of a ``printf``/``format`` string must be numbers up to 10000 written in the query.

It reads DuckDB 1.5.5's parse tree (``json_serialize_sql``: a call's arguments are its
``children``, a literal is a ``CONSTANT`` with a typed ``value``) and its tokens
(``duckdb.tokenize``, which leaves comments out): the version oktaduck pins, as another
version may shape either differently. A statement it cannot parse or serialize is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import duckdb
import orjson

from ingest.base.errors import QueryRefused

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
        # the lake's catalog drivers: SQL sent as text to a database (the catalog's own, with
        # the daemon's role), another database attached, or one scanned over the network
        "postgres_execute",
        "postgres_query",
        "postgres_attach",
        "postgres_scan",
        "postgres_scan_pushdown",
        "postgres_configure_pool",
        "sqlite_attach",
        "sqlite_scan",
        "sqlite_query",
    }
)
# DuckLake's functions that only read the lake. Every other ``ducklake_*`` function acts on it
# (expires snapshots, merges, rewrites or deletes files, sets options, commits) and is refused;
# ``ducklake_set_option`` even crashes DuckDB 1.5.5 once the lake has a view.
READ_ONLY_LAKE_FUNCTIONS = frozenset(
    {
        "ducklake_snapshots",
        "ducklake_current_snapshot",
        "ducklake_last_committed_snapshot",
        "ducklake_table_info",
        "ducklake_list_files",
        "ducklake_table_changes",
        "ducklake_table_insertions",
        "ducklake_table_deletions",
        "ducklake_options",
    }
)
# Functions that build one value as large as an argument says. DuckDB's memory limit does not
# govern such a value and an interrupt only lands once the call returns, so
# repeat('x', 1500000000) would hold 3 GB for seconds: the size must be written in the query
# and small. Keyed by name: the position of the size argument.
SIZED_FUNCTIONS = {"repeat": 1, "lpad": 1, "rpad": 1, "list_resize": 1, "array_resize": 1}
# Their scalar forms build a list (FROM range(...), the table function, streams instead).
SERIES_FUNCTIONS = frozenset({"range", "generate_series"})
FORMAT_FUNCTIONS = frozenset({"printf", "format"})
MAX_BUILT = 10_000
MAX_REPEATED = 1_000_000  # characters repeat() may build
# In a format string: a width or precision of 5 digits or more, or one taken from an argument
# (printf's '*', fmt's nested '{}').
_WIDE_FORMAT = re.compile(r"%[^a-zA-Z%]*([0-9]{5,}|\*)|\{[^{}]*([0-9]{5,}|\{)")
# What may stand between EXPLAIN and the statement it explains.
_EXPLAIN_WORDS = {"ANALYZE", "ANALYSE", "VERBOSE"}
# A token's text: a word, or else one character (tokenize gives where tokens start, not where
# they end, and the gap to the next one may hold a comment).
_LEXEME = re.compile(r"\w+|\S")
# The types of a literal that is a whole number.
_INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
)


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
        sql = inner_sql
    elif kind != duckdb.StatementType.SELECT:
        raise QueryRefused(f"only SELECT queries are allowed here (got {kind.name})")
    # The text as written, not the statement's query: DuckDB rewrites a PRAGMA that reads
    # (``PRAGMA database_list``) into a SELECT of its own, which the tree check then refuses.
    _check_functions(con, sql)


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
    tokens = []
    for pos, _ in duckdb.tokenize(sql):  # comments are not tokens
        lexeme = _LEXEME.match(sql, pos)
        tokens.append((pos, lexeme.group() if lexeme else ""))
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
        message = str(tree.get("error_message", ""))
        if message.startswith("Only SELECT"):  # a statement DuckDB rewrote into a SELECT
            word = _LEXEME.search(sql)
            what = word.group().upper() if word else "nothing"
            raise QueryRefused(f"only SELECT queries are allowed here (got {what})")
        raise QueryRefused(f"query could not be checked: {message}")
    if len(tree.get("statements") or []) != 1:
        raise QueryRefused("query could not be checked: expected one statement")
    for call, is_table in _calls(tree):
        name = str(call["function_name"]).lower()
        if name in REFUSED_FUNCTIONS or (
            name.startswith("ducklake_") and name not in READ_ONLY_LAKE_FUNCTIONS
        ):
            raise QueryRefused(f"{name}() is not allowed here: queries only read the store")
        if not is_table:
            _check_size(name, list(call.get("children") or []))


def _check_size(name: str, args: list[Any]) -> None:
    """Refuse a call that could build a value too large for the memory limit to govern."""
    if name in SIZED_FUNCTIONS:
        at = SIZED_FUNCTIONS[name]
        size = _integer(args[at]) if len(args) > at else None
        if size is None or size > MAX_BUILT:
            raise QueryRefused(
                f"{name}(): the size must be a number up to {MAX_BUILT} written in the query"
            )
        if name == "repeat":  # the result is the input times the count: bound both
            text = _string(args[0]) if args else None
            if text is None or len(text) * size > MAX_REPEATED:
                raise QueryRefused(
                    "repeat(): the text must be written in the query, and the result at most "
                    f"{MAX_REPEATED} characters"
                )
    elif name in SERIES_FUNCTIONS:
        if _series_length([_integer(a) for a in args]) > MAX_BUILT:
            raise QueryRefused(
                f"{name}() as a value is limited to {MAX_BUILT} numbers written in the query; "
                f"use the table function instead: SELECT ... FROM {name}(...)"
            )
    elif name in FORMAT_FUNCTIONS:
        text = _string(args[0]) if args else None
        if text is None or _WIDE_FORMAT.search(text):
            raise QueryRefused(
                f"{name}(): the format must be written in the query, with widths under 10000"
            )


def _integer(expression: Any) -> int | None:
    """The whole number an expression is, if it is one written in the query."""
    value = _literal(expression, _INTEGER_TYPES)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _string(expression: Any) -> str | None:
    """The text an expression is, if it is a string written in the query."""
    value = _literal(expression, frozenset({"VARCHAR"}))
    return value if isinstance(value, str) else None


def _literal(expression: Any, types: frozenset[str]) -> Any:
    """A constant's value when its type is one of ``types``, else None."""
    if not isinstance(expression, dict) or expression.get("class") != "CONSTANT":
        return None
    constant = expression.get("value")
    if not isinstance(constant, dict) or constant.get("is_null") is not False:
        return None
    kind = constant.get("type")
    if not isinstance(kind, dict) or kind.get("id") not in types:
        return None
    return constant.get("value")


def _series_length(bounds: list[int | None]) -> int:
    """How many numbers range()/generate_series() with these literal bounds make (at most)."""
    if any(b is None for b in bounds) or not 1 <= len(bounds) <= 3:
        return MAX_BUILT + 1
    numbers = [int(b or 0) for b in bounds]
    start, stop = (0, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
    step = numbers[2] if len(numbers) == 3 else 1
    if step == 0:
        return 0  # DuckDB refuses it
    return max(0, (stop - start) // step + 1)


def _calls(tree: Any) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every function call in the parse tree, and whether it is a table function (FROM f()),
    walked without recursion."""
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, is_table = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("function_name"), str):
                yield node, is_table
            table_call = node.get("function") if node.get("type") == "TABLE_FUNCTION" else None
            stack.extend((value, value is table_call) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, False) for value in node)


def _first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text else type(err).__name__

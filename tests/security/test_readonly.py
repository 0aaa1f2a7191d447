"""Hostile SQL cannot change the store or its settings, and no query runs unbounded.

Every statement is sent the way a person sends it (``run_user_query``, as ``oktaduck sql`` and
the API do) on the writer's own connection and on a read-only file connection, and the
store's tables, row counts, cursors and settings are compared before and after. The same
statements are also sent past the guard (``run_query``) to show that DuckDB's read-only
transaction and the locked configuration hold on their own.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from ingest.base.errors import (
    ConfigError,
    OktaduckError,
    QueryCancelled,
    QueryRefused,
    QueryTimeout,
)
from ingest.cli.commands.query import _limits
from ingest.config import load_config
from ingest.mapping import CompiledMapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import PageRows, Store
from ingest.store.lake import STORE, open_cursor
from ingest.store.query import (
    Cancel,
    QueryLimits,
    ReadOnlyCursor,
    open_read_only,
    run_query,
    run_user_query,
)
from tests.helpers import Daemon, Sim, acme_daemon, daemon_api, run_cli

START = datetime(2026, 3, 1, tzinfo=UTC)
EVENTS = 120
STOLEN = "/tmp/oktaduck-readonly-stolen.csv"

# Writes, settings and file access hidden every way we know; each must fail and change nothing.
HOSTILE = [
    # behind EXPLAIN ANALYZE, which executes what it explains
    "EXPLAIN ANALYZE CREATE TABLE pwned AS SELECT 1",
    "EXPLAIN ANALYZE INSERT INTO events SELECT * FROM events",
    "EXPLAIN ANALYZE UPDATE cursors SET next_url = 'https://evil.example.com/api/v1/logs'",
    "EXPLAIN ANALYZE DELETE FROM events",
    "EXPLAIN ANALYZE DROP TABLE cursors",
    "EXPLAIN ANALYZE ALTER TABLE events ADD COLUMN pwned INTEGER",
    f"EXPLAIN ANALYZE COPY events TO '{STOLEN}'",
    "EXPLAIN ANALYZE ATTACH ':memory:' AS m",
    "EXPLAIN ANALYZE SET memory_limit = '16GB'",
    "EXPLAIN ANALYZE RESET memory_limit",
    "EXPLAIN ANALYZE PRAGMA memory_limit = '16GB'",
    "EXPLAIN ANALYZE CHECKPOINT",
    "EXPLAIN ANALYZE VACUUM",
    "EXPLAIN ANALYZE CALL checkpoint()",
    "EXPLAIN (FORMAT json) DELETE FROM events",
    "EXPLAIN ANALYZE EXPLAIN ANALYZE DELETE FROM events",
    "/* a */ EXPLAIN -- b\n ANALYZE /* c */ DELETE FROM events",
    "EXPLAIN /* ) */ (FORMAT json) DELETE FROM events",
    "EXPLAIN (FORMAT json /* ) */) DELETE FROM events",
    "EXPLAIN ANALYZE /* SELECT 1 */ DELETE FROM events",
    "explain analyze\tdelete from events",
    # data-modifying CTEs, plain and explained
    "WITH d AS (DELETE FROM events RETURNING 1) SELECT count(*) FROM d",
    "WITH u AS (UPDATE cursors SET next_url = 'x' RETURNING 1) SELECT count(*) FROM u",
    "WITH i AS (INSERT INTO events SELECT * FROM events RETURNING 1) SELECT count(*) FROM i",
    "EXPLAIN ANALYZE WITH d AS (DELETE FROM events RETURNING 1) SELECT count(*) FROM d",
    # settings, in every form
    "SET memory_limit = '16GB'",
    "SET GLOBAL memory_limit = '16GB'",
    "SET SESSION memory_limit = '16GB'",
    "RESET memory_limit",
    "RESET ALL",
    "SET lock_configuration = false",
    "SET enable_external_access = true",
    "PRAGMA memory_limit = '16GB'",
    "PRAGMA threads = 64",
    # PRAGMAs that read: DuckDB 1.5.5 turns them into a SELECT of its own
    "PRAGMA database_list",
    "PRAGMA table_info('events')",
    "EXPLAIN PRAGMA database_list",
    "CALL enable_logging()",
    "SELECT * FROM enable_logging()",
    "SET TimeZone = 'Pacific/Kiritimati'",
    # more than one statement, and comment tricks
    "SELECT 1; SET memory_limit = '16GB'",
    "SELECT 1; DROP TABLE events",
    "SELECT 1 /* ; */; DELETE FROM events",
    "-- harmless\nDELETE FROM events",
    # plain writes and DDL
    "CREATE TABLE pwned AS SELECT 1",
    "CREATE TEMP TABLE pwned AS SELECT 1",
    "CREATE VIEW pwned AS SELECT 1",
    "CREATE MACRO pwned() AS 1",
    "INSERT INTO cursors SELECT * FROM cursors",
    "UPDATE cursors SET next_url = 'https://evil.example.com/api/v1/logs'",
    "DELETE FROM events",
    "DROP TABLE events",
    "TRUNCATE events",
    "ALTER TABLE events RENAME TO gone",
    "BEGIN TRANSACTION",
    "COMMIT",
    "PREPARE p AS DELETE FROM events",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "SELECT * FROM checkpoint()",
    "SELECT * FROM force_checkpoint()",
    "SELECT 1 WHERE 1 IN (SELECT 1 FROM system.main.checkpoint())",
    "CALL checkpoint()",
    # SQL handed over as text, which the guard cannot see into
    "SELECT * FROM query('SELECT * FROM checkpoint()')",
    # files, extensions, other databases
    f"COPY events TO '{STOLEN}'",
    f"SELECT * FROM read_csv('{STOLEN}')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM read_duckdb('/etc/passwd')",
    "SELECT * FROM parquet_metadata('/etc/passwd')",
    "ATTACH ':memory:' AS m",
    "DETACH m",
    "INSTALL httpfs",
    "LOAD icu",
    "EXPORT DATABASE '/tmp/oktaduck-readonly-export'",
    "USE memory",
]

# Sent straight to DuckDB (no guard): the read-only transaction and the lock refuse these.
ENGINE_REFUSES = [
    "EXPLAIN ANALYZE CREATE TABLE pwned AS SELECT 1",
    "EXPLAIN ANALYZE INSERT INTO events SELECT * FROM events",
    "EXPLAIN ANALYZE UPDATE cursors SET next_url = 'https://evil.example.com/api/v1/logs'",
    "EXPLAIN ANALYZE DELETE FROM events",
    "EXPLAIN ANALYZE DROP TABLE cursors",
    "WITH d AS (DELETE FROM events RETURNING 1) SELECT count(*) FROM d",
    "EXPLAIN ANALYZE SET memory_limit = '16GB'",
    "SET memory_limit = '16GB'",
    "SET GLOBAL memory_limit = '16GB'",
    "RESET memory_limit",
    "SET lock_configuration = false",
    "PRAGMA memory_limit = '16GB'",
    "SET threads = 64",
    "CREATE TABLE pwned AS SELECT 1",
    "UPDATE cursors SET next_url = 'x'",
]

SETTINGS = (
    "memory_limit",
    "threads",
    "enable_external_access",
    "lock_configuration",
    "TimeZone",
    "checkpoint_threshold",
)


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What a hostile statement must not change: tables, counts, cursors, settings."""
    cur = open_cursor(con)
    try:
        tables = cur.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() ORDER BY ALL"
        ).fetchall()
        return {
            "tables": tables,
            "views": cur.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1"
            ).fetchall(),
            "counts": {
                t: cur.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for _, _, t in tables
            },
            "cursors": cur.execute("SELECT * FROM cursors ORDER BY source").fetchall(),
            "settings": {
                s: cur.execute("SELECT current_setting($s)", {"s": s}).fetchall()[0][0]
                for s in SETTINGS
            },
            "databases": cur.execute(
                "SELECT database_name FROM duckdb_databases() ORDER BY 1"
            ).fetchall(),
        }
    finally:
        cur.close()


def connections(con: duckdb.DuckDBPyConnection) -> int:
    """Open connections to the database, cursors included (this question's own too), but a
    writer's in-memory root that holds its file attached (``db.connect``)."""
    count = int(con.execute("SELECT count FROM duckdb_connection_count()").fetchall()[0][0])
    attached = con.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = $s", {"s": STORE}
    )
    return count - int(attached.fetchall()[0][0])


def fill(path: Path, mapping: CompiledMapping) -> None:
    events = EventGenerator(seed=5).stream(EVENTS, START, START + timedelta(hours=2))
    raw = [orjson.dumps(e).decode() for e in events]
    page = PageRows(
        "acme",
        "https://acme.okta.com",
        "https://acme.okta.com/api/v1/logs?after=cursor-1",
        mapping.apply_batch(events),
        raw,
        [],
    )
    with Store(path, mapping) as store:
        store.commit_page(page, START)


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory, mapping: CompiledMapping) -> Path:
    path = tmp_path_factory.mktemp("readonly") / "okta.duckdb"
    fill(path, mapping)
    return path


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory, mapping: CompiledMapping) -> Iterator[Store]:
    """The daemon's situation: the writer's Store is open and queries are sent to it (a file
    of its own: this process cannot open one file both ways at once)."""
    path = tmp_path_factory.mktemp("writer") / "okta.duckdb"
    fill(path, mapping)
    with Store(path, mapping) as store:
        yield store


@pytest.fixture
def reader(store_file: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """``oktaduck sql --db FILE``'s situation: a read-only connection to the file."""
    con = open_read_only(store_file)
    yield con
    con.close()


def refused_without_a_trace(con: duckdb.DuckDBPyConnection, sql: str, guarded: bool) -> None:
    before = snapshot(con)
    opened = connections(con)
    with pytest.raises(QueryRefused) as raised:
        result = (run_user_query if guarded else run_query)(con, sql)
        try:
            list(result.rows)
        finally:
            result.close()
    message = str(raised.value)
    assert "\n" not in message and message, sql
    assert snapshot(con) == before, sql
    assert connections(con) == opened, sql  # the query's cursor is closed
    assert not Path(STOLEN).exists()


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_sql_changes_nothing_through_the_writer(writer: Store, sql: str) -> None:
    refused_without_a_trace(writer.con, sql, guarded=True)


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_sql_changes_nothing_on_a_read_only_file(
    reader: duckdb.DuckDBPyConnection, sql: str
) -> None:
    refused_without_a_trace(reader, sql, guarded=True)


@pytest.mark.parametrize("sql", ENGINE_REFUSES)
def test_duckdb_itself_refuses_past_the_guard(writer: Store, sql: str) -> None:
    refused_without_a_trace(writer.con, sql, guarded=False)


def test_the_memory_limit_cannot_be_lifted(writer: Store) -> None:
    limit = writer.con.execute("SELECT current_setting('memory_limit')").fetchall()
    for sql in ("EXPLAIN ANALYZE SET memory_limit = '16GB'", "SET GLOBAL memory_limit = '16GB'"):
        with pytest.raises(OktaduckError):
            run_query(writer.con, sql)
    assert writer.con.execute("SELECT current_setting('memory_limit')").fetchall() == limit
    assert limit[0][0].endswith("MiB") and float(limit[0][0].split()[0]) < 1024


def test_the_read_only_file_gets_the_daemons_memory_limit(
    reader: duckdb.DuckDBPyConnection,
) -> None:
    assert snapshot(reader)["settings"]["memory_limit"] == "488.2 MiB"  # 512MB
    assert snapshot(reader)["settings"]["lock_configuration"] is True


# One value as large as an argument says: DuckDB's memory limit does not govern it and an
# interrupt waits for the call to return (repeat('x', 1500000000): 3 GB for 14 s, measured).
BUILDERS = [
    "SELECT length(repeat('x', 1500000000))",
    "SELECT repeat('x', 100000) FROM events",
    "SELECT repeat(raw, 100000000) FROM events",
    "SELECT 'x'.repeat(1000000000)",
    "SELECT length(lpad('x', 1000000000, 'y'))",
    "SELECT rpad(uuid, (SELECT count(*) FROM events) * 100000000) FROM events",
    "SELECT length(printf('%1000000000d', 1))",
    "SELECT length(printf('%.100000000f', 1.0))",
    "SELECT length(printf('%*d', 1000000000, 1))",
    "SELECT length(printf(uuid, 1)) FROM events",
    "SELECT length(format('{:>1000000000}', 'x'))",
    "SELECT length(format('{:>{}}', 'x', 1000000000))",
    "SELECT len(list_resize([1], 300000000))",
    "SELECT len(array_resize([1], 300000000))",
    "SELECT len(range(300000000))",
    "SELECT len(generate_series(1, 300000000))",
    "SELECT count(*) FROM (SELECT unnest(range(ingest_seq * 1000000)) FROM events)",
    "SELECT list_transform([1], x -> repeat('x', x * 1000000000))",
    "EXPLAIN ANALYZE SELECT length(repeat('x', 1500000000))",
    # the count is small but the text repeated is not: 1 GB built from small counts
    "SELECT length(repeat(repeat(repeat('x', 10000), 10000), 30))",
    "SELECT length(repeat(repeat('xxxxxxxxxx', 10000)::VARCHAR, 10000))",
    "SELECT length(repeat(raw::VARCHAR, 10000)) FROM events",
    # a size that is not a small whole number written as one
    "SELECT length(repeat('x', 100000000000000000000))",
    "SELECT length(repeat('x', 1e9))",
    "SELECT length(repeat('x', 1000000000.0))",
    "SELECT length(repeat('x', 10000000000::HUGEINT))",
]


@pytest.mark.parametrize("sql", BUILDERS)
def test_a_value_too_large_for_the_memory_limit_is_refused(
    reader: duckdb.DuckDBPyConnection, sql: str
) -> None:
    refused_without_a_trace(reader, sql, guarded=True)


GOOD = [
    ("SELECT count(*) FROM events", [(EVENTS,)]),
    ("FROM cursors SELECT source", [("acme",)]),
    ("  select count(*) from events -- ; DROP TABLE events", [(EVENTS,)]),
    ("SELECT ';DROP TABLE events' AS s", [(";DROP TABLE events",)]),
    ("SELECT 'checkpoint' AS checkpoint", [("checkpoint",)]),
    ("WITH e AS (SELECT uuid FROM events) SELECT count(*) FROM e", [(EVENTS,)]),
    ("SELECT current_setting('TimeZone')", [("UTC",)]),
    ("SELECT count(*) FROM pragma_table_info('cursors') WHERE name = 'next_url'", [(1,)]),
    ("SELECT repeat('-', 3) || lpad('7', 3, '0') || rpad('a', 2, '.')", [("---007a.",)]),
    ("SELECT printf('%5d|%s', 42, 'id 123456') AS s", [("   42|id 123456",)]),
    ("SELECT format('{:>4}', 'ab')", [("  ab",)]),
    ("SELECT length(repeat('ab', 10000))", [(20000,)]),
    ("SELECT sum(x) FROM (SELECT unnest(range(1, 11)) AS x)", [(55,)]),
    ("SELECT count(*) FROM range(3000000)", [(3000000,)]),
    ("SELECT count(*) FROM generate_series(1, 3000000)", [(3000000,)]),
]


@pytest.mark.parametrize(("sql", "rows"), GOOD)
def test_reading_still_works(writer: Store, sql: str, rows: list[tuple[Any, ...]]) -> None:
    result = run_user_query(writer.con, sql)
    assert list(result.rows) == rows


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN SELECT count(*) FROM events",
        "EXPLAIN ANALYZE SELECT count(*) FROM events",
        "/* why */ EXPLAIN /* so */ ANALYZE -- slow\n SELECT count(*) FROM events",
        "EXPLAIN (FORMAT json) SELECT 1",
        "EXPLAIN /* ( */ (FORMAT json) -- )\n SELECT 1",
        "DESCRIBE events",
        "SHOW TABLES",
    ],
)
def test_explain_and_describe_of_a_select_are_allowed(
    reader: duckdb.DuckDBPyConnection, sql: str
) -> None:
    result = run_user_query(reader, sql)
    assert list(result.rows)
    assert connections(reader) == 1


def test_the_writer_keeps_writing_after_hostile_queries(
    writer: Store, mapping: CompiledMapping
) -> None:
    for sql in HOSTILE[:10]:
        with pytest.raises(OktaduckError):
            list(run_user_query(writer.con, sql).rows)
    with writer.transaction() as con:
        con.execute("UPDATE cursors SET pages = pages WHERE source = 'acme'")
    assert writer.cursor("acme") is not None


# ---- bounded work -------------------------------------------------------------------------

CROSS_JOIN = "SELECT count(*) FROM range(100000) a, range(100000) b, range(100000) c"
STREAM = "SELECT a.range AS a, b.range AS b FROM range(100000) a, range(100000) b"


def test_a_runaway_query_stops_at_its_time_limit(writer: Store) -> None:
    began = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"time limit of 1s.*--timeout.*\[query\]"):
        list(run_user_query(writer.con, CROSS_JOIN, QueryLimits(timeout=1)).rows)
    assert time.monotonic() - began < 5
    assert connections(writer.con) == 1
    assert list(run_user_query(writer.con, "SELECT count(*) FROM events").rows) == [(EVENTS,)]


def test_the_time_limit_covers_fetching_too(reader: duckdb.DuckDBPyConnection) -> None:
    result = run_user_query(reader, STREAM, QueryLimits(timeout=1))
    fetched = 0
    began = time.monotonic()
    with pytest.raises(QueryTimeout):
        for _ in result.rows:
            fetched += 1
    assert fetched > 0  # rows were flowing when the limit struck
    assert time.monotonic() - began < 5
    assert connections(reader) == 1


def test_a_slow_reader_gets_no_more_rows_after_the_limit(
    reader: duckdb.DuckDBPyConnection,
) -> None:
    result = run_user_query(reader, STREAM, QueryLimits(timeout=0.2))
    rows = iter(result.rows)
    next(rows)
    # the consumer stalls (a slow HTTP client) until the watchdog has fired
    assert _eventually(lambda: result._reader is not None and result._reader.stopped())
    with pytest.raises(QueryTimeout):
        for _ in range(10_000):
            next(rows)
    assert connections(reader) == 1


def test_cancel_from_another_thread_while_rows_stream(writer: Store) -> None:
    result = run_user_query(writer.con, STREAM)
    first = threading.Event()

    def cancel() -> None:
        first.wait(10)
        result.cancel()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    began = time.monotonic()
    fetched = 0
    with pytest.raises(QueryCancelled):
        for _ in result.rows:
            fetched += 1
            first.set()
    canceller.join()
    assert fetched > 0 and time.monotonic() - began < 5
    assert connections(writer.con) == 1
    result.close()  # idempotent after the rows ended


def test_cancel_stops_a_query_that_is_still_executing(writer: Store) -> None:
    token = Cancel()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            list(run_user_query(writer.con, CROSS_JOIN, cancel=token).rows)
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=run)
    began = time.monotonic()
    worker.start()
    assert _eventually(lambda: bool(token._readers))  # the query has its cursor
    token.cancel()
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - began < 5
    assert len(outcome) == 1 and isinstance(outcome[0], QueryCancelled), outcome
    assert connections(writer.con) == 1


def test_a_query_cancelled_before_it_starts_does_not_run(writer: Store) -> None:
    token = Cancel()
    token.cancel()
    with pytest.raises(QueryCancelled):
        run_user_query(writer.con, CROSS_JOIN, cancel=token)
    assert connections(writer.con) == 1


def test_close_before_reading_ends_the_transaction(writer: Store) -> None:
    result = run_user_query(writer.con, "SELECT * FROM events")
    assert connections(writer.con) == 2  # the query's own cursor, beside the writer's
    result.close()
    result.close()
    assert connections(writer.con) == 1
    with pytest.raises(OktaduckError):
        next(iter(result.rows))


def test_every_query_has_a_cursor_of_its_own_not_the_writers(writer: Store) -> None:
    # the writer's connection is not inside any transaction while a query streams
    result = run_user_query(writer.con, "SELECT * FROM events")
    rows = iter(result.rows)
    next(rows)
    with writer.transaction() as con:
        con.execute("UPDATE cursors SET pages = pages + 0")
    assert len(list(rows)) == EVENTS - 1


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="longer than 0s"):
        QueryLimits(timeout=0)


def _eventually(check: Any, within: float = 5) -> bool:
    """Poll ``check`` (a watchdog's state has no event to wait on from outside)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


# ---- through the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN ANALYZE CREATE TABLE pwned AS SELECT 1",
        "WITH d AS (DELETE FROM events RETURNING 1) SELECT count(*) FROM d",
        "EXPLAIN ANALYZE SET memory_limit = '16GB'",
        "SELECT * FROM checkpoint()",
    ],
)
@pytest.mark.slow  # CLI subprocesses and 1 s time limits
def test_the_cli_refuses_in_one_line(store_file: Path, sql: str) -> None:
    out = run_cli("sql", "--db", str(store_file), sql)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("oktaduck: error: ") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr
    con = open_read_only(store_file)
    try:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(EVENTS,)]
        assert not con.execute(
            "SELECT 1 FROM duckdb_tables() WHERE table_name = 'pwned'"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.slow  # CLI subprocesses and 1 s time limits
def test_the_cli_stops_a_runaway_query(store_file: Path) -> None:
    began = time.monotonic()
    out = run_cli("sql", "--db", str(store_file), "--timeout", "1s", CROSS_JOIN, timeout=30)
    assert time.monotonic() - began < 15
    assert out.returncode == 1
    assert out.stderr.startswith("oktaduck: error: query stopped after its time limit of 1s")


def _config(tmp_path: Path, db: Path, query: str) -> Path:
    config = tmp_path / "oktaduck.toml"
    config.write_text(
        f'{query}\n[storage]\npath = "{db}"\n'
        '[[sources]]\nname = "acme"\norg_url = "https://acme.okta.com"\n'
    )
    return config


@pytest.mark.slow  # CLI subprocesses and 1 s time limits
def test_the_config_files_query_timeout_applies_to_sql(store_file: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, store_file, '[query]\ntimeout = "1s"')
    assert load_config(config).query == QueryLimits(timeout=1.0)
    began = time.monotonic()
    out = run_cli("sql", "--config", str(config), CROSS_JOIN, timeout=30)
    assert time.monotonic() - began < 15
    assert out.returncode == 1 and "time limit of 1s" in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('[query]\ntimeout = "0s"', "query.timeout: must be longer than 0s"),
        ('[query]\ntimeout = "soon"', "query.timeout: expected a duration"),
        ("[query]\ntimeout = true", "query.timeout: expected a duration"),
        ('[query]\nmemory = "16GB"', "query.memory: unknown key"),
    ],
)
def test_a_bad_query_table_is_refused(tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_config(tmp_path, tmp_path / "x.duckdb", query))


def test_the_default_timeout_is_a_minute(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, tmp_path / "x.duckdb", "")).query.timeout == 60.0


@pytest.mark.parametrize("value", ["0", "0s", "-1s", "soon", "1x", "nan"])
def test_a_bad_timeout_flag_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^--timeout: "):
        _limits(argparse.Namespace(timeout=value, config=None))


def test_a_bad_timeout_flag_gets_one_line(store_file: Path) -> None:
    out = run_cli("sql", "--db", str(store_file), "--timeout=soon", "SELECT 1")
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("oktaduck: error: --timeout") and out.stderr.count("\n") == 1


# ---- through the running daemon's API --------------------------------------------------------

API_SNAPSHOT = """
SELECT (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM rejects) AS rejects,
       (SELECT list(next_url ORDER BY source) FROM cursors) AS cursors,
       (SELECT list(table_name ORDER BY table_name) FROM duckdb_tables()) AS tables,
       current_setting('memory_limit') AS memory_limit,
       current_setting('lock_configuration') AS locked,
       current_setting('TimeZone') AS tz
"""


@pytest.fixture
def daemon(live_sim: Sim, tmp_path: Path) -> Iterator[tuple[Daemon, Path]]:
    now = datetime.now(UTC)
    events = live_sim.org.generator.stream(60, now - timedelta(hours=1), now - timedelta(minutes=1))
    yield from acme_daemon(live_sim, tmp_path, events)


@pytest.mark.slow  # starts the daemon
def test_hostile_sql_through_the_daemon_changes_nothing(daemon: tuple[Daemon, Path]) -> None:
    _, db = daemon
    url, auth = daemon_api(db)
    auth["Content-Type"] = "application/sql"

    def ask(sql: str) -> httpx.Response:
        return httpx.post(url + "/api/sql", content=sql, headers=auth, timeout=30)

    before = ask(API_SNAPSHOT).json()
    assert before[0]["events"] == 60 and before[0]["locked"] is True and before[0]["tz"] == "UTC"
    for sql in HOSTILE:
        answer = ask(sql)
        assert answer.status_code in (400, 403), (sql, answer.text)
        assert "error" in answer.json(), sql
    for sql in HOSTILE[:2]:  # `oktaduck sql` forwards to the daemon's API
        out = run_cli("sql", "--db", str(db), sql)
        assert out.returncode != 0 and out.stderr.count("\n") == 1, out.stderr
    assert ask(API_SNAPSHOT).json() == before
    assert not Path(STOLEN).exists()


@pytest.mark.parametrize("command", [["feed", "failed-logins"], ["status"]])
def test_feed_and_status_take_a_timeout(store_file: Path, command: list[str]) -> None:
    ok = run_cli(*command, "--db", str(store_file), "--timeout", "30s", "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert isinstance(orjson.loads(ok.stdout), list)


def test_queries_are_in_utc_whatever_the_machines_zone(store_file: Path) -> None:
    sql = "SELECT current_setting('TimeZone') AS tz, TIMESTAMPTZ '2026-03-01 00:00:00+00' AS t"
    out = run_cli("sql", "--db", str(store_file), "--format", "json", sql, env={"TZ": "Asia/Tokyo"})
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == [{"tz": "UTC", "t": "2026-03-01T00:00:00Z"}]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.slow  # CLI subprocesses and 1 s time limits
def test_ctrl_c_stops_a_running_query_at_once(store_file: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKTADUCK_")}
    # a child inherits an ignored SIGINT (a test run started in the background by a shell
    # ignores it), and then Ctrl-C cannot reach it: a handler here makes the child's default
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "sql", "--db", str(store_file), CROSS_JOIN],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        # the join is running once the process burns CPU well past its start-up
        assert _eventually(lambda: _cpu_seconds(proc.pid) > 1.5, within=20)
        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        code = proc.wait(timeout=10)
        assert time.monotonic() - began < 3
        assert code in (1, 130), proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_read_only_cursor_for_the_programs_own_reads(writer: Store) -> None:
    """What the API's export reads through: a cursor in a READ ONLY transaction, bounded."""
    before = snapshot(writer.con)
    with ReadOnlyCursor(writer.con, QueryLimits(timeout=0.5)) as reader:
        assert reader.cursor.execute("SELECT count(*) FROM events").fetchall() == [(EVENTS,)]
        with pytest.raises(duckdb.Error, match="read-only"):
            reader.cursor.execute("DELETE FROM events")
    with ReadOnlyCursor(writer.con, QueryLimits(timeout=0.5)) as reader:
        began = time.monotonic()
        with pytest.raises(duckdb.Error) as stopped:
            reader.cursor.execute(CROSS_JOIN).fetchall()
        assert time.monotonic() - began < 5
        assert isinstance(reader.error(stopped.value), QueryTimeout)
    reader.close()  # idempotent
    assert snapshot(writer.con) == before
    assert connections(writer.con) == 1

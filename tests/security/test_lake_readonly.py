"""A person's SQL on a lake reads and never acts: on a READ_ONLY attach (``oktaduck sql
--store``) and on the writer's own connection (the daemon's API), DuckLake's maintenance and
write functions, the catalog drivers' SQL and attach functions, CALL, ATTACH, DETACH and USE
are refused before they run, and the catalog's own tables may be read but not written.

Each refusal is checked to leave the lake as it was: same snapshots, same catalog tables, same
rows. (``ducklake_set_option`` crashes DuckDB 1.5.5 once the lake has a view: it must never
reach DuckDB at all.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from ingest.base.errors import QueryRefused
from ingest.cli.commands.common import _open_reader
from ingest.mapping import CompiledMapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import Store
from ingest.store.lake import LakeConfig
from ingest.store.query import run_user_query
from tests.helpers.lakedata import commit_events

pytestmark = pytest.mark.slow  # the PostgreSQL cluster

NOW = datetime(2026, 3, 1, tzinfo=UTC)
META = "__ducklake_metadata_lake"

HOSTILE = [
    "CALL ducklake_expire_snapshots('lake', older_than => now())",
    "CALL ducklake_flush_inlined_data('lake')",
    "SELECT * FROM ducklake_expire_snapshots('lake', older_than => now())",
    "SELECT * FROM ducklake_expire_snapshots('lake', dry_run => true, older_than => now())",
    "SELECT * FROM ducklake_merge_adjacent_files('lake')",
    "SELECT * FROM ducklake_flush_inlined_data('lake')",
    "SELECT * FROM ducklake_cleanup_old_files('lake', cleanup_all => true)",
    "SELECT * FROM ducklake_delete_orphaned_files('lake', cleanup_all => true)",
    "SELECT * FROM ducklake_rewrite_data_files('lake')",
    "SELECT * FROM ducklake_set_option('lake', 'data_inlining_row_limit', 5)",
    "SELECT * FROM ducklake_set_commit_message('lake', 'me', 'hello')",
    "SELECT * FROM ducklake_add_data_files('lake', 'event_rows', '/tmp/x.parquet')",
    "SELECT * FROM \"DuckLake_Expire_Snapshots\"('lake', older_than => now())",
    "SELECT * FROM system.main.ducklake_merge_adjacent_files('lake')",
    "SELECT (SELECT count(*) FROM ducklake_cleanup_old_files('lake', cleanup_all => true))",
    f"SELECT * FROM postgres_execute('{META}', 'DROP TABLE oktaduck.ducklake_snapshot')",
    f"SELECT * FROM postgres_query('{META}', 'SELECT 1')",
    "SELECT * FROM postgres_attach('dbname=postgres host=127.0.0.1')",
    "SELECT * FROM postgres_scan('dbname=postgres host=127.0.0.1', 'public', 'x')",
    "SELECT * FROM postgres_configure_pool(catalog_name => 'lake', max_connections => 1)",
    "SELECT * FROM sqlite_attach('/tmp/x.sqlite')",
    "SELECT * FROM sqlite_scan('/tmp/x.sqlite', 'x')",
    "ATTACH 'ducklake:sqlite:/tmp/other.sqlite' AS other",
    "DETACH lake",
    f"USE {META}",
    "USE memory",
    f"INSERT INTO {META}.oktaduck.ducklake_snapshot "
    f"SELECT * FROM {META}.oktaduck.ducklake_snapshot",
    f"DELETE FROM {META}.oktaduck.ducklake_snapshot",
    f"UPDATE {META}.oktaduck.ducklake_metadata SET value = 'x'",
    "DELETE FROM event_rows",
    "INSERT INTO cursor_log SELECT * FROM cursor_log",
    "DROP VIEW events",
    "CREATE TABLE event_rows_copy AS SELECT * FROM event_rows",
]
# DuckLake's functions that only read, and the catalog's tables: allowed
READING = [
    "SELECT count(*) > 0 FROM ducklake_snapshots('lake')",
    "SELECT count(*) > 0 FROM ducklake_table_info('lake')",
    "SELECT count(*) > 0 FROM ducklake_list_files('lake', 'event_rows')",
    "SELECT count(*) > 0 FROM ducklake_options('lake')",
    "SELECT count(*) >= 0 FROM ducklake_table_insertions('lake', 'main', 'event_rows', 1, 2)",
    "SELECT count(*) >= 0 FROM ducklake_table_deletions('lake', 'main', 'event_rows', 1, 2)",
    "SELECT count(*) >= 0 FROM ducklake_table_changes('lake', 'main', 'event_rows', 1, 2)",
    f"SELECT count(*) > 0 FROM {META}.oktaduck.ducklake_snapshot",
    "SELECT count(*) >= 0 FROM event_rows AT (VERSION => 2)",
]


def state(con: duckdb.DuckDBPyConnection) -> tuple[object, ...]:
    """What a refused statement must not change: snapshots, catalog tables, rows."""
    cur = con.cursor()
    try:
        cur.execute("USE lake")
        return (
            cur.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchall(),
            cur.execute(f"SELECT count(*) FROM {META}.oktaduck.ducklake_data_file").fetchall(),
            cur.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = $db ORDER BY 1",
                {"db": META},
            ).fetchall(),
            cur.execute("SELECT count(*), max(ingest_seq) FROM events").fetchall(),
            cur.execute("SELECT count(*) FROM cursors").fetchall(),
        )
    finally:
        cur.close()


@pytest.fixture(scope="module")
def lake_with_events(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LakeConfig:
    from tests.helpers.lake import make_lake

    cluster = request.getfixturevalue("pg_cluster")
    lake = make_lake("postgres", tmp_path_factory.mktemp("lake"), cluster, inline_rows=0)
    mapping = request.getfixturevalue("module_mapping")
    events = EventGenerator(seed=31).stream(200, NOW - timedelta(days=2), NOW)
    with Store(lake, mapping) as store:
        commit_events(store, events, NOW, page=100)
    return lake


@pytest.fixture(scope="module")
def module_mapping() -> CompiledMapping:
    from ingest.config import normalized_mapping_path
    from ingest.mapping import load_mapping

    return load_mapping(normalized_mapping_path())


@pytest.fixture(scope="module", params=["reader", "writer"])
def connection(
    request: pytest.FixtureRequest, lake_with_events: LakeConfig, module_mapping: CompiledMapping
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The lake as ``oktaduck sql --store`` opens it, and the daemon's writer connection
    (on which its API runs people's queries)."""
    if request.param == "reader":
        con = _open_reader(lake_with_events)
        yield con
        con.close()
    else:
        with Store(lake_with_events, module_mapping) as store:
            yield store.con


@pytest.mark.parametrize("sql", HOSTILE)
def test_a_statement_that_would_act_on_the_lake_is_refused(
    connection: duckdb.DuckDBPyConnection, sql: str
) -> None:
    before = state(connection)
    with pytest.raises(QueryRefused) as refused:
        result = run_user_query(connection, sql)
        result.close()
    message = str(refused.value)
    assert "\n" not in message and len(message) < 400
    assert state(connection) == before


@pytest.mark.parametrize("sql", READING)
def test_reading_functions_and_the_catalog_tables_are_allowed(
    connection: duckdb.DuckDBPyConnection, sql: str
) -> None:
    result = run_user_query(connection, sql)
    try:
        assert list(result.rows) == [(True,)]
    finally:
        result.close()

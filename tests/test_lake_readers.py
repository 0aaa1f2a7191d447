"""Readers of a lake need no daemon: ``sql``, ``feed``, ``status``, ``export`` and ``mappings
coverage`` attach it read-only (``--store CATALOG`` or ``--config``) while a writer holds it
open, and a query sees one committed snapshot however the writer moves on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import ConfigError, QueryRefused
from ingest.cli.commands.common import _open_reader, _store_target
from ingest.cli.parser import build_parser
from ingest.config import normalized_mapping_path
from ingest.mapping import CompiledMapping, load_mapping
from ingest.service.metrics import render_metrics
from ingest.simulate.generator import EventGenerator
from ingest.store.db import Store
from ingest.store.housekeeping import housekeep
from ingest.store.lake import LakeConfig, connect_lake
from ingest.store.limits import QueryLimits
from ingest.store.query import run_query, run_user_query
from tests.helpers import daemon_toml, run_cli
from tests.helpers.lake import lake_toml
from tests.helpers.lakedata import commit_events

NOW = datetime.now(UTC).replace(microsecond=0)
NewLake = Callable[..., LakeConfig]


def rows(lines: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in lines.splitlines() if line.strip()]


@pytest.mark.slow  # the PostgreSQL cluster and CLI subprocesses
def test_every_reader_command_reads_a_lake_a_writer_holds_open(
    new_lake: NewLake, mapping: CompiledMapping, tmp_path: Path
) -> None:
    lake = new_lake("postgres")
    events = EventGenerator(seed=21).stream(300, NOW - timedelta(hours=5), NOW - timedelta(hours=1))
    with Store(lake, mapping) as writer:  # a writer holds the lake open throughout
        commit_events(writer, events, NOW, page=150)
        store = f"ducklake:{lake.catalog}"
        sql = run_cli(
            "sql", "--store", store, "--format", "ndjson",
            "SELECT count(*) AS n, count(DISTINCT uuid) AS u, max(ingest_seq) AS top FROM events",
        )  # fmt: skip
        assert sql.returncode == 0, sql.stderr
        assert rows(sql.stdout) == [{"n": 300, "u": 300, "top": 300}]
        status = run_cli("status", "--store", lake.catalog, "--format", "table")
        assert status.returncode == 0, status.stderr
        first = status.stdout.splitlines()[0]
        # the data path comes from the catalog: the reader was given none
        assert first.startswith(f"store: lake {lake.catalog} (data {lake.data}")
        assert " data files, " in first and " snapshots" in first
        assert "acme" in status.stdout
        leases = status.stdout.split("\nleases:\n", 1)[1].splitlines()
        assert leases[0].split() == ["kind", "key", "owner", "until", "held"]
        assert any(line.split()[:3] == ["source", "acme", writer.owner] for line in leases)
        feed = run_cli(
            "feed", "logs", "--store", lake.catalog, "--since", "1d", "--limit", "0",
            "--format", "ndjson",
        )  # fmt: skip
        assert feed.returncode == 0, feed.stderr
        assert sorted(r["uuid"] for r in rows(feed.stdout)) == sorted(e["uuid"] for e in events)
        target = tmp_path / "out.ndjson"
        export = run_cli(
            "export", "--store", lake.catalog, "--to", f"file:{target}", "--since", "1d"
        )
        assert export.returncode == 0, export.stderr
        exported = [orjson.loads(line)["uuid"] for line in target.read_bytes().splitlines()]
        assert sorted(exported) == sorted(e["uuid"] for e in events)
        # the writer commits on, unhindered by the readers
        more = EventGenerator(seed=22).stream(50, NOW - timedelta(minutes=50), NOW)
        commit_events(writer, more, NOW)
        assert writer.con.execute("SELECT count(*) FROM events").fetchall() == [(350,)]


@pytest.mark.slow  # a CLI subprocess
def test_config_with_a_lake_is_read_from_the_lake_and_refuses_writes(
    new_lake: NewLake, mapping: CompiledMapping, tmp_path: Path
) -> None:
    lake = new_lake("sqlite")
    events = EventGenerator(seed=23).stream(40, NOW - timedelta(hours=2), NOW)
    with Store(lake, mapping) as writer:
        commit_events(writer, events, NOW)
    config = daemon_toml(tmp_path / "oktaduck.toml", extra=lake_toml(lake))
    out = run_cli("sql", "--config", str(config), "--format", "csv", "SELECT count(*) FROM events")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["count_star()", "40"]
    refused = run_cli("sql", "--config", str(config), "DELETE FROM event_rows")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "SELECT" in refused.stderr
    coverage = run_cli("mappings", "coverage", "--store", f"ducklake:{lake.catalog}")
    assert coverage.returncode == 0, coverage.stderr
    assert "(40 most recent of 40 stored events)" in coverage.stdout


def test_the_store_flag_names_a_file_or_a_lake(tmp_path: Path, new_lake: NewLake) -> None:
    parser = build_parser()
    lake = new_lake("sqlite")
    config = daemon_toml(
        tmp_path / "oktaduck.toml",
        extra=lake_toml(lake).replace("[storage.lake]\n", '[storage.lake]\npassword_env = "PW"\n'),
    )

    def target(*argv: str) -> object:
        return _store_target(parser.parse_args(["sql", "SELECT 1", *argv]))

    assert target("--store", str(tmp_path / "x.duckdb")) == tmp_path / "x.duckdb"
    assert target("--store", "ducklake:sqlite:/l/c.sqlite") == LakeConfig("sqlite:/l/c.sqlite")
    assert target("--config", str(config)) == replace(lake, password_env="PW")
    # another catalog named beside --config keeps the config's secrets, not its data path
    other = target("--store", "postgres:dbname=x host=127.0.0.1", "--config", str(config))
    assert isinstance(other, LakeConfig)
    assert (other.catalog, other.data, other.password_env) == (
        "postgres:dbname=x host=127.0.0.1", None, "PW",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="password"):
        target("--store", "postgres:dbname=x password=secret")
    with pytest.raises(ConfigError, match="not both"):
        target("--store", "sqlite:/l/c.sqlite", "--db", "x.duckdb")


@pytest.mark.slow  # the PostgreSQL cluster
def test_a_query_sees_one_committed_snapshot_while_a_writer_commits(
    new_lake: NewLake, mapping: CompiledMapping
) -> None:
    # PostgreSQL: a SQLite catalog answers "database is locked" to a reader while a writer
    # commits, and a DuckDB-file catalog cannot be opened by a second process at all
    lake = new_lake("postgres")
    events = EventGenerator(seed=24).stream(600, NOW - timedelta(hours=6), NOW)
    seen: list[tuple[int, int]] = []
    with Store(lake, mapping) as writer:
        commit_events(writer, events[:100], NOW, page=100)
        reader = _open_reader(lake)
        failed: list[BaseException] = []

        def write() -> None:
            try:
                commit_events(writer, events[100:], NOW, page=100)
            except BaseException as err:  # reported by the assertion below
                failed.append(err)

        thread = threading.Thread(target=write)
        thread.start()
        try:
            while thread.is_alive() or not seen:
                # the events and the cursor's running count: one commit moves both at once
                result = run_query(
                    reader,
                    "SELECT (SELECT count(*) FROM events), (SELECT sum(events) FROM cursors)",
                    limits=QueryLimits(timeout=30),
                )
                found = list(result.rows)
                seen.append((int(found[0][0]), int(found[0][1])))
        finally:
            thread.join()
        last = list(run_query(reader, "SELECT count(*) FROM events").rows)
        reader.close()
    assert not failed
    assert all(stored == counted and stored % 100 == 0 for stored, counted in seen), seen
    assert len({stored for stored, _ in seen}) >= 2  # the reader ran while commits landed
    assert last == [(600,)]


def test_a_read_only_lake_refuses_writes_even_past_the_guard(
    new_lake: NewLake, mapping: CompiledMapping
) -> None:
    lake = new_lake("sqlite")
    with Store(lake, mapping) as writer:
        commit_events(
            writer, EventGenerator(seed=25).stream(10, NOW - timedelta(hours=1), NOW), NOW
        )
    reader = _open_reader(lake)
    try:
        with pytest.raises(QueryRefused):
            run_user_query(reader, "DELETE FROM event_rows")
        # the connection itself: attached READ_ONLY, configuration locked
        cursor = reader.cursor()
        cursor.execute("USE lake")
        for statement in (
            "DELETE FROM event_rows",
            "INSERT INTO cursor_log SELECT * FROM cursor_log",
            "SET memory_limit = '8GB'",
        ):
            with pytest.raises(Exception, match=r"read-only|read only|locked"):
                cursor.execute(statement)
        assert list(run_user_query(reader, "SELECT count(*) FROM events").rows) == [(10,)]
    finally:
        reader.close()


EXTRA_FIELD = """
[fields.ua_raw_copy]
path = "$.client.userAgent.rawUserAgent"
type = "string"
doc = "client.userAgent.rawUserAgent, again (a field added by a mapping change)."
"""


@pytest.mark.slow  # the PostgreSQL cluster
def test_readers_attached_before_housekeeping_read_on_after_its_flush(
    new_lake: NewLake, mapping: CompiledMapping, tmp_path: Path
) -> None:
    # Every change of a table (made, a column added) leaves an inlined-data table that the
    # next flush drops; a reader attached meanwhile kept its name and failed from the flush
    # on (DuckLake issues 1305 and 1413). The writer that changes a table flushes at once.
    lake = new_lake("postgres", inline_rows=50)
    events = EventGenerator(seed=26).stream(30, NOW - timedelta(hours=2), NOW)
    folder = tmp_path / "mappings"
    shutil.copytree(normalized_mapping_path().parents[1], folder)
    upgraded = folder / "okta" / "normalized.toml"
    upgraded.write_text(upgraded.read_text() + EXTRA_FIELD)
    limits = QueryLimits(timeout=30)
    readers = []
    try:
        with Store(lake, mapping) as writer:
            commit_events(writer, events[:10], NOW, page=5)  # kept in the catalog: inlined
            readers.append(_open_reader(lake))
            with Store(lake, load_mapping(upgraded)) as newer:  # adds a column
                commit_events(newer, events[10:20], NOW, page=5)
            readers.append(_open_reader(lake))
            for reader in readers:
                found = run_query(reader, "SELECT count(*) FROM events", limits=limits)
                assert list(found.rows) == [(20,)]
            side = connect_lake(lake, read_only=False)
            try:
                done = housekeep(side, lake, NOW)
            finally:
                side.close()
            assert done.inlined_rows_flushed > 0 and not done.skipped
            commit_events(writer, events[20:], NOW, page=5)
        for reader in readers:
            found = run_query(
                reader,
                "SELECT count(*), count(DISTINCT uuid), count(ua_raw_copy) FROM events",
                limits=limits,
            )
            assert list(found.rows) == [(30, 30, 10)]
    finally:
        for reader in readers:
            reader.close()


README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLE_CATALOG = "postgres:dbname=oktaduck host=db.internal user=reader"


def readme_blocks(section: str) -> dict[str, list[str]]:
    """The fenced code blocks of one README section, by language."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"### {section}\n", 1)[1].split("\n### ", 1)[0]
    blocks: dict[str, list[str]] = {}
    for chunk in re.findall(r"```(\w+)\n(.*?)```", body, re.DOTALL):
        blocks.setdefault(chunk[0], []).append(chunk[1])
    return blocks


@pytest.mark.slow  # the PostgreSQL cluster and subprocesses
def test_the_readme_snippets_read_a_lake_with_plain_duckdb_and_python(
    new_lake: NewLake, mapping: CompiledMapping
) -> None:
    lake = new_lake("postgres")
    events = EventGenerator(seed=26).stream(30, NOW - timedelta(hours=1), NOW)
    with Store(lake, mapping) as writer:
        commit_events(writer, events, NOW)
        blocks = readme_blocks("Reading a lake without the daemon")
        venv = Path(sys.executable).parent
        env = {**os.environ, "PATH": f"{venv}:{os.environ['PATH']}"}
        # the line that prints the extension files, as written
        printer = next(b for b in blocks["sh"] if "duckdb_extension_ducklake" in b)
        found = subprocess.run(
            ["bash", "-c", printer], capture_output=True, text=True, env=env, check=True
        ).stdout.split()
        paths = {Path(p).name: p for p in found}
        assert set(paths) == {"ducklake.duckdb_extension", "postgres_scanner.duckdb_extension"}
        # the duckdb shell's lines, with the real files and catalog in place of the examples
        (sql,) = blocks["sql"]
        for name, path in paths.items():
            sql = sql.replace(f"/path/to/{name}", path)
        con = duckdb.connect()
        try:
            for line in sql.replace(EXAMPLE_CATALOG, lake.catalog).splitlines():
                con.execute(line)
            assert con.execute("SELECT count(*) FROM events").fetchall() == [(30,)]
            with pytest.raises(duckdb.Error, match=r"read-only|read only"):
                con.execute("DELETE FROM event_rows")
        finally:
            con.close()
        # the Python lines, run as they are but for the catalog
        (python,) = blocks["python"]
        ran = subprocess.run(
            [sys.executable, "-c", python.replace(EXAMPLE_CATALOG, lake.catalog)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert ran.returncode == 0, ran.stderr
    top = Counter(e["eventType"] for e in events).most_common(1)[0]
    assert top[0] in ran.stdout and str(top[1]) in ran.stdout


def test_metrics_of_a_lake_count_its_data_files_bytes_and_snapshots(
    new_lake: NewLake, mapping: CompiledMapping
) -> None:
    lake = new_lake("duckdb", inline_rows=0)  # every commit writes a Parquet file
    events = EventGenerator(seed=27).stream(200, NOW - timedelta(hours=1), NOW)
    with Store(lake, mapping) as store:
        commit_events(store, events, NOW, page=100)
        text = render_metrics(store, [], [], FakeClock(NOW))
        files = store.con.execute(
            "SELECT count(*), sum(data_file_size_bytes) "
            "FROM ducklake_list_files('lake', 'event_rows')"
        ).fetchall()[0]
        snapshots = store.con.execute("SELECT count(*) FROM ducklake_snapshots('lake')").fetchall()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    # the events' files (one per commit), and those of the small tables written beside them
    assert int(lines["oktaduck_lake_data_files"]) >= files[0] >= 2
    assert int(lines["oktaduck_lake_data_bytes"]) >= files[1] > 0
    assert int(lines["oktaduck_lake_snapshots"]) == snapshots[0][0]

"""How a writer opens its database file: attached with small row groups, shared in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from ingest.base.errors import DatabaseLocked
from ingest.mapping import CompiledMapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import INGEST_MEMORY_LIMIT, ROW_GROUP_SIZE, PageRows, Store, connect
from ingest.store.lake import open_cursor

START = datetime(2026, 3, 1, tzinfo=UTC)
GROUP_ROWS = (
    "SELECT row_group_id, sum(count) FROM pragma_storage_info('events') "
    "WHERE column_name = 'uuid' AND segment_type = 'VARCHAR' GROUP BY ALL ORDER BY 1"
)


def pages(mapping: CompiledMapping, count: int, seed: int, size: int = 1000) -> list[PageRows]:
    events = EventGenerator(seed=seed).stream(count, START, START + timedelta(hours=2))
    out = []
    for i in range(0, count, size):
        part = events[i : i + size]
        raw = [orjson.dumps(e).decode() for e in part]
        batch = mapping.apply_batch(part)
        out.append(PageRows("acme", "https://acme.okta.com", f"n{i}", batch, raw, []))
    return out


def test_a_one_shot_commit_of_a_row_groups_worth_goes_to_the_file_in_row_groups(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    path = tmp_path / "okta.duckdb"
    with Store(path, mapping, INGEST_MEMORY_LIMIT, 1, serves_queries=False) as store:
        result = store.commit_pages(pages(mapping, 2 * ROW_GROUP_SIZE + 500, seed=1), START)
        # nothing of it waits in the WAL for a checkpoint: the full row groups are in the file
        wal = path.with_name(path.name + ".wal")
        assert wal.stat().st_size < 2000 * 1000  # the 500 rows left over, not every event
        assert result.stored == 2 * ROW_GROUP_SIZE + 500
        # what DuckDB must spill goes next to the file, not into the working directory
        spill = store.con.execute("SELECT current_setting('temp_directory')").fetchall()
        assert spill == [(f"{path}.tmp",)]
        options = store.con.execute(
            "SELECT options FROM duckdb_databases() WHERE database_name = 'store'"
        ).fetchall()
        assert options[0][0]["row_group_size"] == str(ROW_GROUP_SIZE)
    con = duckdb.connect(str(path), read_only=True)
    try:
        groups = [(0, ROW_GROUP_SIZE), (1, ROW_GROUP_SIZE), (2, 500)]
        assert con.execute(GROUP_ROWS).fetchall() == groups
        uuids = con.execute("SELECT count(DISTINCT uuid) FROM events").fetchall()
        assert uuids == [(2 * ROW_GROUP_SIZE + 500,)]
    finally:
        con.close()


def test_a_file_written_with_duckdbs_row_groups_takes_new_rows_in_small_ones(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    path = tmp_path / "okta.duckdb"
    Store(path, mapping).close()
    con = duckdb.connect(str(path))  # as a store of before: DuckDB's 122,880-row groups
    try:
        con.execute(
            "INSERT INTO events (uuid, published, source, raw, ingest_seq, mapping_version, "
            "ingested_at) SELECT 'old-' || range, TIMESTAMP '2026-01-01', 'old', '{}', "
            "range + 1, 'v0', TIMESTAMP '2026-01-01' FROM range(130000)"
        )
    finally:
        con.close()
    with Store(path, mapping, INGEST_MEMORY_LIMIT, 1, serves_queries=False) as store:
        store.commit_pages(pages(mapping, 9000, seed=2), START)
        groups = store.con.execute(GROUP_ROWS).fetchall()
        seqs = store.con.execute("SELECT min(ingest_seq), max(ingest_seq) FROM events")
        assert seqs.fetchall() == [(1, 139000)]
    assert groups[:2] == [(0, 122_880), (1, 130_000 - 122_880)]  # the old rows as they were
    assert sum(n for _, n in groups[2:]) == 9000 and max(n for _, n in groups[2:]) <= ROW_GROUP_SIZE


def test_writers_in_one_process_share_the_file_and_the_last_one_detaches_it(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    path = tmp_path / "okta.duckdb"
    first = Store(path, mapping)  # the daemon's kind: DuckDB's own row groups (memory)
    second = Store(path, mapping, serves_queries=False)  # DuckDB refuses a second ATTACH
    options = second.con.execute(
        "SELECT options FROM duckdb_databases() WHERE database_name = 'store'"
    ).fetchall()
    assert options and "row_group_size" not in options[0][0]  # the first handle's holds
    first.commit_pages(pages(mapping, 10, seed=3), START)
    first.close()
    # the second's connection outlives the first's
    assert second.con.execute("SELECT count(*) FROM events").fetchall() == [(10,)]
    cursor = open_cursor(second.con)
    assert cursor.execute("SELECT count(*) FROM events").fetchall() == [(10,)]
    cursor.close()
    with pytest.raises(DatabaseLocked, match="open for writing in this process"):
        connect(path, read_only=True)
    second.close()
    reader = connect(path, read_only=True)  # the file is free once both are closed
    try:
        assert reader.execute("SELECT count(*) FROM events").fetchall() == [(10,)]
    finally:
        reader.close()


@pytest.mark.parametrize("name", ["it's.duckdb", "a b ü.duckdb", "x'); DETACH store; --.duckdb"])
def test_a_file_name_with_quotes_is_attached_as_named(
    tmp_path: Path, mapping: CompiledMapping, name: str
) -> None:
    path = tmp_path / name
    with Store(path, mapping, serves_queries=False) as store:
        store.commit_pages(pages(mapping, 5, seed=4), START)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".duckdb") == [name]
    reader = connect(path, read_only=True)
    try:
        assert reader.execute("SELECT count(*) FROM events").fetchall() == [(5,)]
    finally:
        reader.close()

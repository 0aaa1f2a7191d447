"""``oktaduck remap`` re-applies a changed mapping to stored history: every row, once, cursors
untouched, rejected events retried, safe to kill and rerun."""

from __future__ import annotations

import shutil
import signal
from datetime import timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.collect.pagemap import ProcessMapper
from ingest.collect.poll import poll_cycle
from ingest.config import normalized_mapping_path
from ingest.mapping import load_mapping
from ingest.store.db import Store
from ingest.store.remap import remap
from tests.helpers import Sim, run_cli, source_for

EXTRA_FIELD = """
[fields.ua_raw_copy]
path = "$.client.userAgent.rawUserAgent"
type = "string"
doc = "client.userAgent.rawUserAgent, again (a field added by a mapping change)."
"""


@pytest.fixture
def history(
    sim: Sim, clock: FakeClock, tmp_path: Path, token_env: str, client_for: object
) -> tuple[Path, Path]:
    """A database filled with mapping v1 (350 events, one reject without a uuid but with an
    ``id``), and a folder holding mapping v2, which adds a field and reads ``id`` as uuid."""
    now = clock.now()
    gen = sim.org.generator
    sim.org.add(gen.stream(350, now - timedelta(hours=5), now - timedelta(minutes=5)))
    orphan = gen.stream(1, now - timedelta(minutes=4), now - timedelta(minutes=3))[0]
    orphan["id"] = orphan.pop("uuid")
    sim.org.add([orphan], persisted_at=now - timedelta(minutes=3))
    db = tmp_path / "okta.duckdb"
    source = source_for(sim)
    with Store(db, load_mapping(normalized_mapping_path())) as store:
        poll_cycle(source, store, client_for(source, clock), clock)  # type: ignore[operator]
    folder = tmp_path / "mappings"
    shutil.copytree(normalized_mapping_path().parents[1], folder)
    v2 = folder / "okta" / "normalized.toml"
    text = v2.read_text().replace('path = "$.uuid"', 'paths = ["$.uuid", "$.id"]', 1)
    v2.write_text(text + EXTRA_FIELD)
    return db, v2


def snapshot(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        versions = con.execute(
            "SELECT mapping_version, count(*), count(DISTINCT uuid) FROM events GROUP BY 1"
        ).fetchall()
        filled = con.execute("SELECT count(ua_raw_copy) FROM events").fetchall()[0][0]
    finally:
        con.close()
    return versions, cursors(db), filled


def test_remap_rewrites_every_row_once_and_resolves_rejects(history: tuple[Path, Path]) -> None:
    db, v2 = history
    cursors_before = cursors(db)
    out = run_cli("remap", "--db", str(db), "--mapping", str(v2))
    assert out.returncode == 0, out.stderr
    assert "350 events and 1 rejected events" in out.stdout
    versions, cursors_after, filled = snapshot(db)
    version = load_mapping(v2).version
    assert versions == [(version, 351, 351)]  # 350 remapped + the resolved reject, no duplicate
    assert filled > 300
    assert cursors_after == cursors_before
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM rejects WHERE resolved_at IS NULL").fetchall() == [
        (0,)
    ]
    con.close()


def cursors(db: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT * FROM cursors").fetchall()
    finally:
        con.close()


def test_remap_killed_midway_finishes_on_rerun(history: tuple[Path, Path]) -> None:
    db, v2 = history
    args = ("remap", "--db", str(db), "--mapping", str(v2), "--batch", "100")
    killed = run_cli(*args, env={"OKTADUCK_CRASH_AT": "remap.batch:2"})
    assert killed.returncode == -signal.SIGKILL
    versions, _, _ = snapshot(db)
    assert len(versions) == 2  # half done: rows of both versions
    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    versions, _, _ = snapshot(db)
    assert versions == [(load_mapping(v2).version, 351, 351)]


def test_remap_with_nothing_to_do_changes_nothing(history: tuple[Path, Path]) -> None:
    db, _ = history
    out = run_cli("remap", "--db", str(db))
    assert out.returncode == 0
    assert "0 events and 0 rejected events" in out.stdout


def test_remap_rewrites_the_columns_a_change_touches_and_keeps_the_rest(
    history: tuple[Path, Path],
) -> None:
    """Only the columns whose values change are written (``_changed_columns``): whatever
    it skips, every row ends as the new mapping makes it from ``raw``, with its
    ``ingest_seq`` and its exact bytes."""
    db, v2 = history
    text = v2.read_text()
    v2.write_text(text.replace('path = "$.severity"', 'path = "$.displayMessage"', 1))
    mapping = load_mapping(v2)
    names = [c.name for c in mapping.columns]
    query = f"SELECT ingest_seq, raw::VARCHAR, {', '.join(names)} FROM events ORDER BY 1"
    con = duckdb.connect(str(db), read_only=True)
    before = con.execute("SELECT ingest_seq, raw::VARCHAR FROM events ORDER BY 1").fetchall()
    con.close()
    out = run_cli("remap", "--db", str(db), "--mapping", str(v2), "--batch", "100")
    assert out.returncode == 0, out.stderr
    con = duckdb.connect(str(db), read_only=True)
    after = con.execute(query).fetchall()
    con.close()
    kept = {(seq, raw) for seq, raw, *_ in after}
    assert kept >= set(before)  # every row keeps its ingest_seq and its bytes
    assert len(after) == len(before) + 1  # and the resolved reject joins them
    batch = mapping.apply_batch([orjson.loads(raw) for _, raw, *_ in after])
    assert not batch.rejected
    severity = names.index("severity")
    assert {row[2 + severity] for row in after} != {"INFO", "WARN", "ERROR", "DEBUG"}
    for name in ("severity", "display_message", "uuid", "published", "targets", "ua_raw_copy"):
        stored = [row[2 + names.index(name)] for row in after]
        mapped = batch.columns[name]
        assert stored == mapped, name


def test_remap_of_a_field_whose_type_changed(history: tuple[Path, Path]) -> None:
    """A field the new mapping types otherwise keeps its column's type: the new values are
    compared, and stored, as that type."""
    db, v2 = history
    text = v2.read_text()
    start = text.index("[fields.severity]")
    end = text.index("[fields.", start + 1)
    v2.write_text(
        text[:start] + text[start:end].replace('type = "string"', 'type = "int"') + text[end:]
    )
    out = run_cli("remap", "--db", str(db), "--mapping", str(v2), "--batch", "100")
    assert out.returncode == 0, out.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT typeof(severity), count(*), count(severity), count(DISTINCT mapping_version) "
            "FROM events GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("VARCHAR", 351, 0, 1)]  # no severity is a number: none is left


def test_remap_in_several_mapping_processes_writes_what_one_does(
    history: tuple[Path, Path], tmp_path: Path
) -> None:
    db, v2 = history
    alone = tmp_path / "alone.duckdb"
    shutil.copy(db, alone)
    for target, mappers in ((db, "3"), (alone, "1")):
        args = ("remap", "--db", str(target), "--mapping", str(v2), "--batch", "40")
        out = run_cli(*args, "--mappers", mappers)
        assert out.returncode == 0, out.stderr
        assert "events 351/351" in out.stderr or "events 350/350" in out.stderr, out.stderr

    def rows(path: Path) -> list[tuple[object, ...]]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            # ingested_at: when the reject resolved by each run was stored
            query = "SELECT * EXCLUDE (ingested_at) FROM events ORDER BY ingest_seq"
            return con.execute(query).fetchall()
        finally:
            con.close()

    together, one = rows(db), rows(alone)
    assert len(together) == 351 and together == one
    assert snapshot(db)[0] == [(load_mapping(v2).version, 351, 351)]


def test_remap_in_process_with_no_mapper_or_a_mapping_process_writes_the_same(
    history: tuple[Path, Path], tmp_path: Path
) -> None:
    """Batches handed to a mapping process ahead of their writing (``map_later``), and an
    empty list of mappers (mapped here), end with the same rows."""
    db, v2 = history
    inline = tmp_path / "inline.duckdb"
    shutil.copy(db, inline)
    mapping = load_mapping(v2)

    def rows(path: Path) -> list[tuple[object, ...]]:
        with Store(path, mapping) as store:
            query = "SELECT * EXCLUDE (ingested_at) FROM events ORDER BY ingest_seq"
            return store.con.execute(query).fetchall()

    with ProcessMapper(mapping) as child, Store(db, mapping) as store:
        by_child = remap(store, FakeClock(), batch_size=30, mapper=child)
    with Store(inline, mapping) as store:
        here = remap(store, FakeClock(), batch_size=30, mapper=[])
    assert by_child == here and by_child.remapped + by_child.moved_to_rejects == 350
    assert len(rows(db)) == 351 and rows(db) == rows(inline)

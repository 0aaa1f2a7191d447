"""``oktaduck store copy`` moves a store between a DuckDB file and a lake: every event with
every column, cursors, rejects, conflicts, export cursors and imports; a copy killed mid-way
resumes without doubling anything; a target holding anything else is refused; a hostile
SPEC gets one line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest.base.errors import StoreError
from ingest.cli import main
from ingest.config import normalized_mapping_path
from ingest.mapping import CompiledMapping, load_mapping
from ingest.simulate.generator import EventGenerator
from ingest.store.copy import PROGRESS_TABLE, CopyProgress, copy_store
from ingest.store.db import PageRows, Store
from ingest.store.lake import LakeConfig, connect_lake
from tests.helpers import run_cli
from tests.helpers.lake import lake_toml

END = datetime(2026, 11, 3, tzinfo=UTC)
TABLES = ("events", "cursors", "rejects", "conflicts", "export_cursors", "imports")


@pytest.fixture(scope="module")
def mapping() -> CompiledMapping:
    return load_mapping(normalized_mapping_path())


def _page(mapping: CompiledMapping, source: str, events: list[dict[str, Any]]) -> PageRows:
    return PageRows(
        source,
        f"https://{source}.example.com",
        f"https://{source}.example.com/api/v1/logs?after={len(events)}",
        mapping.apply_batch(events),
        [orjson.dumps(e).decode() for e in events],
        [e.get("uuid") for e in events],
    )


def fill_file(path: Path, mapping: CompiledMapping, events: int) -> None:
    """A file store as polling leaves it, with everything a copy must carry: two sources,
    three days of events, late events of an earlier day stored after later ones, a reject,
    a uuid conflict, two export cursors, and a column no current mapping has (an older
    mapping's field)."""
    gen = EventGenerator(seed=11)
    stream = gen.stream(events, END - timedelta(days=3), END)
    late = gen.stream(40, END - timedelta(days=2, hours=2), END - timedelta(days=2))
    no_uuid = dict(stream[3])
    no_uuid.pop("uuid")
    clash = dict(stream[7])
    clash["displayMessage"] = "the same uuid with other content"
    with Store(path, mapping, serves_queries=False) as store:
        for i in range(0, events, 200):
            source = "acme" if i % 400 == 0 else "globex"
            store.commit_page(_page(mapping, source, stream[i : i + 200]), END)
        store.commit_page(_page(mapping, "acme", [*late, no_uuid, clash]), END)
        con = store.con
        con.execute("ALTER TABLE events ADD COLUMN legacy_field VARCHAR")
        con.execute("UPDATE events SET legacy_field = 'v1-' || ingest_seq WHERE ingest_seq % 3 = 0")
        con.execute(
            "INSERT INTO export_cursors VALUES ('siem', 300, 300, 4, $t, NULL, NULL, $t), "
            "('archive', $all, $all, 9, $t, 'HTTP 503', $t, $t)",
            {"t": END, "all": events + 40},
        )
        con.execute(  # an import half done: a rerun on the copy resumes at its position
            "INSERT INTO imports VALUES ('f1', 'archive', '/srv/okta/2024.ndjson.gz', 9000, "
            "$t, 'ab12', 'auto', 4500, 17, 17, 15, 1, 1, $t, $t, NULL)",
            {"t": END},
        )


@pytest.fixture(scope="module")
def originals(
    tmp_path_factory: pytest.TempPathFactory, mapping: CompiledMapping
) -> dict[int, Path]:
    """File stores of 400 and 1200 polled events (plus 40 late ones), made once."""
    folder = tmp_path_factory.mktemp("originals")
    made = {}
    for events in (400, 1200):
        made[events] = folder / f"{events}.duckdb"
        fill_file(made[events], mapping, events)
    return made


@pytest.fixture
def original(tmp_path: Path, originals: dict[int, Path]) -> Callable[[int], Path]:
    """``original(events)``: a fresh copy of an original file store in ``tmp_path``."""

    def copy(events: int = 1200) -> Path:
        path = tmp_path / f"original{events}.duckdb"
        shutil.copyfile(originals[events], path)
        return path

    return copy


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a file store, all columns, in a fixed order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            table: sorted(
                con.execute(f"SELECT * FROM {table}").fetchall(), key=lambda row: repr(row)
            )
            for table in TABLES
        }
    finally:
        con.close()


def lake_rows(lake: LakeConfig, sql: str) -> list[tuple[Any, ...]]:
    con = connect_lake(lake, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow  # the PostgreSQL catalog is a server
def test_a_file_copied_to_a_postgres_lake_and_back_is_identical(
    tmp_path: Path,
    new_lake: Callable[..., LakeConfig],
    mapping: CompiledMapping,
    original: Callable[[int], Path],
) -> None:
    first = original(1200)
    lake = new_lake("postgres")
    seen: list[CopyProgress] = []
    there = copy_store(first, lake, mapping, batch=500, progress=seen.append)
    assert there.events == there.copied == 1240
    assert there.counts == {
        "events": 1240,
        "cursors": 2,
        "rejects": 1,
        "conflicts": 1,
        "export_cursors": 2,
        "imports": 1,
    }
    assert there.days == 3
    assert seen[-1] == CopyProgress(1240, 1240, there.batches)
    assert [p.copied for p in seen] == sorted({p.copied for p in seen})  # once a batch
    # the lake's own numbering (row id + 1) follows the file's order
    assert lake_rows(lake, "SELECT min(ingest_seq), max(ingest_seq) FROM events") == [(1, 1240)]
    assert lake_rows(lake, "SELECT count(legacy_field) FROM events") == [(413,)]

    back = tmp_path / "back.duckdb"
    again = copy_store(lake, back, mapping, batch=700)
    assert again.events == 1240 and again.counts == there.counts
    assert dump(back) == dump(first)


def test_export_cursors_count_the_same_events_when_the_lake_numbers_them_anew(
    new_lake: Callable[..., LakeConfig], mapping: CompiledMapping, original: Callable[[int], Path]
) -> None:
    """A file whose numbers have gaps (retention deleted a stretch): the lake numbers the
    events 1..n, and each sink's cursor then covers exactly the events it had received."""
    first = original(1200)
    con = duckdb.connect(str(first))
    con.execute("DELETE FROM events WHERE ingest_seq BETWEEN 101 AND 200")
    received = {
        r[0] for r in con.execute("SELECT uuid FROM events WHERE ingest_seq <= 300").fetchall()
    }
    con.close()
    lake = new_lake("duckdb")
    copy_store(first, lake, mapping, batch=256)
    [(seq,)] = lake_rows(lake, "SELECT last_seq FROM export_cursors WHERE sink = 'siem'")
    assert seq == len(received) == 200
    got = lake_rows(lake, f"SELECT uuid FROM events WHERE ingest_seq <= {seq}")
    assert {r[0] for r in got} == received
    [(last,)] = lake_rows(lake, "SELECT last_seq FROM export_cursors WHERE sink = 'archive'")
    assert last == 1140  # every event: the last number on the lake


@pytest.mark.slow  # runs the command in subprocesses, killed with SIGKILL
@pytest.mark.parametrize("point", ["store_copy.inserted:3", "store_copy.committed:2"])
def test_a_copy_killed_mid_way_resumes_without_doubling_anything(
    tmp_path: Path,
    new_lake: Callable[..., LakeConfig],
    mapping: CompiledMapping,
    original: Callable[[int], Path],
    point: str,
) -> None:
    first = original(1200)
    lake = new_lake("duckdb")
    spec = ["--to", lake.catalog, "--data", str(lake.data), "--batch", "250"]
    killed = run_cli("store", "copy", "--from", str(first), *spec, env={"OKTADUCK_CRASH_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # two batches committed (the export cursor at 300 ends one), the third not
    assert lake_rows(lake, "SELECT count(*) FROM events") == [(300,)]
    assert lake_rows(lake, "SELECT count(*) FROM cursors") == [(0,)]

    done = run_cli("store", "copy", "--from", str(first), *spec)
    assert done.returncode == 0, done.stderr
    assert "copied 940 events" in done.stdout and "(300 were there" in done.stdout
    assert lake_rows(lake, "SELECT count(*), count(DISTINCT uuid) FROM events") == [(1240, 1240)]
    assert lake_rows(lake, "SELECT min(ingest_seq), max(ingest_seq) FROM events") == [(1, 1240)]
    back = tmp_path / "back.duckdb"
    copy_store(lake, back, mapping)
    assert dump(back) == dump(first)


def test_a_target_holding_anything_else_is_refused(
    tmp_path: Path,
    new_lake: Callable[..., LakeConfig],
    mapping: CompiledMapping,
    original: Callable[[int], Path],
) -> None:
    small, large = original(400), original(1200)
    lake = new_lake("duckdb")
    copy_store(small, lake, mapping)
    with pytest.raises(StoreError, match="holds 440 events, not the 440 events before"):
        copy_store(large, lake, mapping)  # as many events up to there, but other ones
    other = tmp_path / "other.duckdb"
    with Store(other, mapping) as store:
        store.con.execute(
            "INSERT INTO export_cursors VALUES ('siem', 0, 0, 0, NULL, NULL, NULL, now())"
        )
    with pytest.raises(StoreError, match="already holds export_cursors"):
        copy_store(lake, other, mapping)
    polled = new_lake("duckdb")
    with Store(polled, mapping) as store:
        gen = EventGenerator(seed=5)
        store.commit_page(
            _page(mapping, "acme", gen.stream(30, END - timedelta(hours=1), END)), END
        )
    with pytest.raises(StoreError, match="already holds 30 events"):
        copy_store(small, polled, mapping)


def test_a_finished_copy_run_again_changes_nothing(
    new_lake: Callable[..., LakeConfig], mapping: CompiledMapping, original: Callable[[int], Path]
) -> None:
    small = original(400)
    lake = new_lake("duckdb")
    first = copy_store(small, lake, mapping)
    again = copy_store(small, lake, mapping)
    assert (again.copied, again.events, again.batches) == (0, 440, 0)
    assert lake_rows(lake, "SELECT count(*) FROM cursor_log") == [(2,)]
    # one progress row a batch: the day going back and the export cursor end batches too
    assert first.batches == 3
    assert lake_rows(lake, f"SELECT count(*) FROM {PROGRESS_TABLE}") == [(3,)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from", "x.duckdb", "--to", "y.duckdb"], "between a DuckDB file and a lake"),
        (["--from", "postgres:host=h password=s3cret", "--to", "y.duckdb"], "no password"),
        (["--from", "nowhere/x.duckdb", "--to", "duckdb:c.duckdb"], "does not exist"),
        (["--from", "x\x01'; DROP TABLE events; --", "--to", "sqlite:c"], "does not exist"),
        (["--from", "sqlite:/", "--to", "y.duckdb"], "lake sqlite:/"),
        (["--from", "not-a-db", "--to", "duckdb:c.duckdb", "--data", "d"], "not-a-db"),
        (["--to", "y.duckdb"], "give --from and --to"),
    ],
)
def test_a_hostile_spec_or_bad_path_gets_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-db").write_text("not a database\n")
    mask = os.umask(0o022)
    try:
        code = main(["store", "copy", *args])
    finally:
        os.umask(mask)
    err = capsys.readouterr().err
    assert code in (1, 2), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oktaduck: error: "), err
    assert expected in lines[0] and "s3cret" not in err and "\x01" not in err


def test_the_config_file_stands_for_the_side_left_out(
    tmp_path: Path,
    new_lake: Callable[..., LakeConfig],
    original: Callable[[int], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    small = original(400)
    lake = new_lake("duckdb")
    config = tmp_path / "oktaduck.toml"
    config.write_text(
        lake_toml(lake) + '\n[[sources]]\nname = "acme"\norg_url = "https://acme.okta.com"\n'
    )
    mask = os.umask(0o022)
    try:
        assert main(["store", "copy", "--from", str(small), "--config", str(config)]) == 0
        back = tmp_path / "back.duckdb"
        assert main(["store", "copy", "--config", str(config), "--to", str(back)]) == 0
    finally:
        os.umask(mask)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("copied 440 events in 3 batches (0 were there")
    assert "verified: 440 events over 3 days" in out[1]
    assert dump(back) == dump(small)


def test_verification_finds_an_event_that_differs(
    new_lake: Callable[..., LakeConfig], mapping: CompiledMapping, original: Callable[[int], Path]
) -> None:
    """An event whose raw JSON changed in the target after a copy: running the copy again
    finds it day by day."""
    small = original(400)
    lake = new_lake("duckdb")
    copy_store(small, lake, mapping)
    con = connect_lake(lake, read_only=False)
    try:
        [(uuid, day)] = con.execute(
            "SELECT uuid, published::DATE FROM event_rows ORDER BY uuid LIMIT 1"
        ).fetchall()
        con.execute(
            "UPDATE event_rows SET raw = '{\"changed\": true}' WHERE uuid = $uuid",
            {"uuid": uuid},
        )
    finally:
        con.close()
    with pytest.raises(StoreError, match=f"the events of 1 days differ \\({day}\\)"):
        copy_store(small, lake, mapping)


def test_a_source_file_in_use_by_another_process_gets_one_line(
    tmp_path: Path, new_lake: Callable[..., LakeConfig], original: Callable[[int], Path]
) -> None:
    small = original(400)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(small)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"holding\n"
        lake = new_lake("duckdb")
        done = run_cli(
            "store", "copy", "--from", str(small), "--to", lake.catalog, "--data", str(lake.data)
        )
    finally:
        holder.communicate(b"\n", timeout=30)
    assert done.returncode == 1
    assert (
        done.stderr
        == f"oktaduck: error: database {small} is in use by another process; stop it first\n"
    )


HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
"""

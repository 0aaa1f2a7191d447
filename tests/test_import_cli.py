"""``oktaduck import`` as a real process: killed with SIGKILL between any two steps of a
commit, the rerun stores every event once and finishes the file; its summary, one-line
errors and exit codes."""

from __future__ import annotations

import gzip
import signal
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from ingest.simulate.generator import EventGenerator
from ingest.store.lake import LakeConfig, connect_lake
from tests.helpers import START, daemon_toml, run_cli, stored_uuids
from tests.helpers.lake import lake_toml

pytestmark = pytest.mark.slow  # real import processes, each with its mapping process


def archive(tmp_path: Path, count: int) -> tuple[Path, list[bytes]]:
    gen = EventGenerator(seed=21)
    texts = [orjson.dumps(e) for e in gen.stream(count, START - timedelta(days=9), START)]
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(gzip.compress(b"\n".join([*texts[:200], b"not json", *texts[200:]])))
    return path, texts


def import_rows(db: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT records, stored, duplicates, rejected, finished_at IS NOT NULL FROM imports"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(
    "point", ["store.begun", "store.events_inserted", "store.rejects_inserted", "store.committed"]
)
def test_sigkill_mid_import_loses_and_duplicates_nothing(point: str, tmp_path: Path) -> None:
    path, texts = archive(tmp_path, 450)
    db = tmp_path / "okta.duckdb"
    args = ("import", "--db", str(db), str(path), "--batch", "100")

    crashed = run_cli(*args, env={"OKTADUCK_CRASH_AT": f"{point}:3"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    [(_, stored, _, _, finished)] = import_rows(db)
    assert not finished and isinstance(stored, int)
    assert 0 < stored < 450 and len(stored_uuids(db)) == stored  # row and events agree

    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    uuids = stored_uuids(db)
    assert not [u for u, n in Counter(uuids).items() if n > 1]
    assert set(uuids) == {orjson.loads(t)["uuid"] for t in texts}
    # resumed where the row said: what was stored before is not read (nor counted) again
    assert f"{450 - stored} stored, 0 duplicates" in rerun.stdout
    assert import_rows(db) == [(451, 450, 0, 1, True)]


def test_summary_errors_and_exit_codes(tmp_path: Path) -> None:
    path, _ = archive(tmp_path, 120)
    db = tmp_path / "okta.duckdb"
    done = run_cli("import", "--db", str(db), str(path), str(tmp_path / "gone.ndjson"))
    assert done.returncode == 1
    assert "imported 1 file, 1 failed: 121 events, 120 stored, 0 duplicates, 1 rejected" in (
        done.stdout
    )
    assert done.stderr.strip().splitlines()[-1] == (
        f"oktaduck: import: {tmp_path / 'gone.ndjson'}: no such file or directory"
    )
    again = run_cli("import", "--db", str(db), str(path))
    assert again.returncode == 0, again.stderr
    assert "imported 0 files, 1 skipped as imported already" in again.stdout

    wrong = run_cli("import", "--db", str(db), "--unwrap", "kinesis", str(path))
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and "--unwrap" in wrong.stderr
    wrong = run_cli("import", "--db", str(db), "--source", " ", str(path))
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and "--source" in wrong.stderr
    wrong = run_cli("import", "--db", str(db), "--data", str(tmp_path / "data"), str(path))
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and "--data" in wrong.stderr


def test_import_into_a_new_lake_named_by_store_and_data(tmp_path: Path) -> None:
    path, _ = archive(tmp_path, 50)
    catalog = f"duckdb:{tmp_path / 'catalog.duckdb'}"
    args = ("import", "--store", catalog, "--data", str(tmp_path / "data"), str(path))
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "50 stored, 0 duplicates, 1 rejected" in done.stdout
    read = run_cli("sql", "--store", catalog, "--format", "csv", "SELECT count(*) FROM events")
    assert read.stdout.split() == ["count_star()", "50"], read.stderr


def test_sigkill_mid_import_on_a_postgres_lake(
    tmp_path: Path, new_lake: Callable[..., LakeConfig]
) -> None:
    """The rerun names itself as the killed process did (``owner``), so it takes the
    source's lease back at once."""
    path, texts = archive(tmp_path, 450)
    lake = new_lake("postgres")
    config = daemon_toml(tmp_path / "oktaduck.toml", extra=lake_toml(lake) + 'owner = "imp"\n')
    args = ("import", "--config", str(config), str(path), "--batch", "100")

    crashed = run_cli(*args, env={"OKTADUCK_CRASH_AT": "store.events_inserted:3"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert "250 stored, 0 duplicates" in rerun.stdout  # the two committed batches not again

    con = connect_lake(lake, read_only=True)
    try:
        uuids = [r[0] for r in con.execute("SELECT uuid FROM events").fetchall()]
        rows = con.execute(
            "SELECT records, stored, duplicates, rejected, finished_at IS NOT NULL FROM imports"
        ).fetchall()
        cursors = con.execute("SELECT count(*) FROM cursors").fetchall()
    finally:
        con.close()
    assert not [u for u, n in Counter(uuids).items() if n > 1]
    assert set(uuids) == {orjson.loads(t)["uuid"] for t in texts}
    assert rows == [(451, 450, 0, 1, True)]
    assert cursors == [(0,)]

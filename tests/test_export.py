"""Export end to end: every stored event reaches every receiver at least once, through
outages and a killed exporter, and replays do not move a sink's cursor."""

from __future__ import annotations

import gzip
import signal
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest.store.lake import LakeConfig
from tests.helpers import TOKEN, Daemon, Sim, run_cli, stored_uuids
from tests.helpers.export import export_config, fill, filled_store
from tests.receivers import Drop, HttpReceiver, Reply, Rsyslog, retry_later

pytestmark = pytest.mark.slow  # the daemon, CLI exports and rsyslog


def file_uuids(directory: Path) -> list[str]:
    uuids = []
    for path in sorted(directory.glob("oktaduck-*.ndjson*")):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for line in data.splitlines():
            doc = orjson.loads(line)  # every line is valid JSON on its own
            uuids.append(doc.get("uuid") or doc["event"]["id"])
    return uuids


@pytest.fixture(params=["file", "lake"])
def lake(request: pytest.FixtureRequest) -> LakeConfig | None:
    """None for the DuckDB file, or a new PostgreSQL lake: the export suite runs on both. The
    lake names its owner, as docs/lake.md advises, so that a run after a killed one takes the
    sink's lease back at once rather than after lease_ttl."""
    if request.param == "file":
        return None
    made: LakeConfig = request.getfixturevalue("new_lake")("postgres", owner="exporter")
    return made


def test_a_killed_file_export_resumes_from_its_cursor(
    live_sim: Sim, tmp_path: Path, lake: LakeConfig | None
) -> None:
    out_dir = tmp_path / "out"
    cfg, uuids, _ = filled_store(
        live_sim,
        tmp_path,
        lake,
        f'[[sinks]]\nname = "files"\ntype = "file"\npath = "{out_dir}"\nformat = "ecs"\n'
        "batch_events = 100\ngzip = true\n",
    )
    args = ("export", "--config", str(cfg), "--sink", "files")
    killed = run_cli(*args, env={"OKTADUCK_CRASH_AT": "export.sent:4"})
    assert killed.returncode == -signal.SIGKILL
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert not list(out_dir.glob(".*part"))  # no half-written file left visible or hidden
    got = Counter(file_uuids(out_dir))
    assert set(got) == set(uuids)
    assert sum(got.values()) - len(uuids) <= 100  # at most the one batch in flight re-sent


def test_replay_resends_a_range_without_moving_the_cursor(live_sim: Sim, tmp_path: Path) -> None:
    db = tmp_path / "okta.duckdb"
    fill(live_sim, db, 300)
    out_dir = tmp_path / "out"
    cfg = export_config(tmp_path, f'[[sinks]]\nname = "f"\ntype = "file"\npath = "{out_dir}"\n')
    assert run_cli("export", "--config", str(cfg), "--sink", "f").returncode == 0
    con = duckdb.connect(str(db), read_only=True)
    before = con.execute("SELECT last_seq, delivered FROM export_cursors").fetchall()
    con.close()
    replay = run_cli("export", "--config", str(cfg), "--sink", "f", "--since", "2h")
    assert replay.returncode == 0, replay.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT last_seq, delivered FROM export_cursors").fetchall() == before
    con.close()
    assert len(file_uuids(out_dir)) > 300


def test_one_off_export_writes_valid_ndjson_in_each_format(
    live_sim: Sim, tmp_path: Path, lake: LakeConfig | None
) -> None:
    _, uuids, store = filled_store(live_sim, tmp_path, lake, count=200)
    for fmt in ("raw", "normalized", "ecs", "ocsf"):
        target = tmp_path / f"{fmt}.ndjson"
        out = run_cli("export", *store, "--to", f"file:{target}", "--format", fmt)
        assert out.returncode == 0, out.stderr
        docs = [orjson.loads(line) for line in target.read_bytes().splitlines()]
        ids: Callable[[Any], Any] = {
            "raw": lambda d: d["uuid"],
            "normalized": lambda d: d["uuid"],
            "ecs": lambda d: d["event"]["id"],
            "ocsf": lambda d: d["metadata"]["uid"],
        }[fmt]
        assert sorted(ids(d) for d in docs) == sorted(uuids)


def test_daemon_delivers_to_a_failing_http_receiver_and_to_rsyslog(
    live_sim: Sim, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    live_sim.org.add(
        live_sim.org.generator.stream(900, now - timedelta(hours=2), now - timedelta(minutes=1))
    )
    receiver = HttpReceiver(
        Reply(200), retry_later(429, "1"), Reply(503), Drop(), Reply(500), Reply(200)
    )
    syslog = Rsyslog(tmp_path / "rsyslog")
    syslog.start()
    try:
        cfg = export_config(
            tmp_path,
            f"""
[[sinks]]
name = "siem"
type = "http"
url = "{receiver.url}/ingest"
format = "ocsf"
batch_events = 200
interval = "1s"
retry_for = "30s"
fields = {{ org = "acme" }}

[[sinks]]
name = "syslog"
type = "syslog"
host = "127.0.0.1"
port = {syslog.port}
format = "raw"
batch_events = 250
interval = "1s"
""",
            live_sim,
        )
        daemon = Daemon(cfg, {"ACME_TOKEN": TOKEN})

        def delivered(logs: list[dict[str, object]]) -> bool:
            done: Counter[str] = Counter()
            for g in logs:
                if g["event"] == "export.cycle_done":
                    done[str(g["sink"])] += int(g["delivered"])  # type: ignore[call-overload]
            return done["siem"] >= 900 and done["syslog"] >= 900

        daemon.wait_for(delivered)
        assert daemon.stop() == 0
        uuids = set(stored_uuids(tmp_path / "okta.duckdb"))
        assert len(uuids) == 900
        siem = [orjson.loads(line) for line in receiver.accepted_lines()]
        assert {d["metadata"]["uid"] for d in siem} == uuids
        assert all(d["org"] == "acme" for d in siem)
        lines = syslog.wait_for_lines(900)
        assert {orjson.loads(line)["uuid"] for line in lines} == uuids
    finally:
        syslog.stop()
        receiver.stop()

"""The ``oktaduck`` command as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from ingest.collect.progress import PollProgress, ProgressLine
from ingest.okta.client import ClientStats
from ingest.store.db import CommitResult
from tests.helpers import REPO, TOKEN, TOKEN_ENV, Sim, daemon_toml, run_cli, stored_uuids

pytestmark = pytest.mark.slow  # every test runs CLI subprocesses


@pytest.fixture
def polled(live_sim: Sim, tmp_path: Path) -> Path:
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    live_sim.org.add(gen.stream(300, now - timedelta(hours=2), now - timedelta(minutes=1)))
    db = tmp_path / "okta.duckdb"
    done = run_cli("poll", "--org", live_sim.url, "--db", str(db), env={"OKTA_API_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
    assert "300 stored" in done.stdout and "caught up" in done.stdout
    return db


def test_sql_json_is_one_array_of_row_objects(polled: Path) -> None:
    out = run_cli(
        "sql", "--db", str(polled), "--format", "json", "SELECT uuid, published, raw FROM events"
    )
    rows = orjson.loads(out.stdout)
    assert len(rows) == 300
    assert rows[0]["published"].endswith("Z")
    assert rows[0]["raw"]["uuid"] == rows[0]["uuid"]  # JSON columns come back as objects


@pytest.mark.parametrize(("fmt", "lines"), [("ndjson", 2), ("csv", 3), ("table", 5)])
def test_sql_formats(polled: Path, fmt: str, lines: int) -> None:
    out = run_cli("sql", "--db", str(polled), "--format", fmt, "SELECT uuid FROM events LIMIT 2")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == lines


def test_sql_errors_are_one_line_without_traceback(polled: Path) -> None:
    out = run_cli("sql", "--db", str(polled), "SELECT nope FROM events")
    assert out.returncode != 0
    assert out.stderr.startswith("oktaduck: error: query failed")
    assert "Traceback" not in out.stderr


def test_status_shows_each_source(polled: Path) -> None:
    out = run_cli("status", "--db", str(polled), "--format", "json")
    (row,) = orjson.loads(out.stdout)
    assert row["events_stored"] == 300
    assert row["rejects"] == 0
    assert re.fullmatch(r"\d+_\d+", row["after"])


def test_a_bad_token_exits_non_zero_with_one_line_and_never_prints_it(
    live_sim: Sim, tmp_path: Path
) -> None:
    secret = "not-the-token-" + "x" * 20
    out = run_cli(
        "poll",
        "--org",
        live_sim.url,
        "--db",
        str(tmp_path / "d.duckdb"),
        env={"OKTA_API_TOKEN": secret},
    )
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1
    assert "E0000011" in out.stderr and "request id" in out.stderr
    assert secret not in out.stderr + out.stdout


def test_cleartext_to_a_remote_host_is_refused_before_any_request(tmp_path: Path) -> None:
    out = run_cli(
        "poll",
        "--org",
        "http://acme.okta.com",
        "--db",
        str(tmp_path / "d.duckdb"),
        env={"OKTA_API_TOKEN": TOKEN},
    )
    assert out.returncode != 0
    assert "clear text" in out.stderr
    assert not (tmp_path / "d.duckdb").exists()


def test_a_missing_token_names_the_variable(tmp_path: Path) -> None:
    out = run_cli("poll", "--org", "https://acme.okta.com", "--db", str(tmp_path / "d.duckdb"))
    assert out.returncode == 2
    assert "OKTA_API_TOKEN" in out.stderr


def test_map_streams_ndjson_and_reports_bad_events_without_stopping() -> None:
    import subprocess
    import sys

    lines = [
        b'{"uuid":"a","published":"2026-01-01T00:00:00.000Z","eventType":"user.session.start"}',
        b"not json",
        b"[1, 2]",
        b'{"uuid":"b","published":"redacted","eventType":"x"}',
        b'{"uuid":"c","published":"2026-01-01T00:00:01Z","eventType":"x","client":{"zone":"null"}}',
    ]
    done = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "map", "--format", "normalized"],
        input=b"\n".join(lines),
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [r["uuid"] for r in rows] == ["a", "c"]
    assert rows[1]["client_zone"] is None
    errors = done.stderr.decode().splitlines()
    assert errors[0].startswith("line 2: skipped: not JSON")
    assert errors[1].startswith("line 3: rejected")
    assert errors[2].startswith("line 4 (b): rejected: published")
    assert errors[-1] == "oktaduck map: 2 mapped, 2 rejected, 1 unreadable"


def test_map_accepts_a_json_array() -> None:
    import subprocess
    import sys

    body = b'[{"uuid":"a","published":"2026-01-01T00:00:00.000Z","eventType":"x"},\n"oops"]'
    done = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "map", "--strict"],
        input=body,
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 1  # --strict: a rejected event makes the exit code non-zero
    assert len(done.stdout.splitlines()) == 1
    assert b"item 1: rejected" in done.stderr


def test_mappings_check_lists_every_file_and_fails_on_a_broken_one(tmp_path: Path) -> None:
    good = run_cli("mappings", "check")
    assert good.returncode == 0, good.stderr
    assert "normalized" in good.stdout
    (tmp_path / "bad.toml").write_text('[mapping]\nname = "bad"\n[fields.x]\npath = "$.["\n')
    bad = run_cli("mappings", "check", "--dir", str(tmp_path))
    assert bad.returncode == 1
    assert "bad.toml" in bad.stderr and "'x'" in bad.stderr


def test_a_poll_keeps_neither_the_simulator_nor_jwt_nor_pyarrow_resident(
    live_sim: Sim, tmp_path: Path
) -> None:
    """A one-shot poll with an API token loads only what it uses: not the simulated org (nor
    with it JWT and cryptography, ~12 MB), and no pyarrow (~55 MB)."""
    now = datetime.now(UTC)
    live_sim.org.add(live_sim.org.generator.stream(20, now - timedelta(hours=1), now))
    heavy = "('pyarrow', 'jwt', 'cryptography', 'ingest.simulate.org', 'ingest.simulate.server')"
    script = (
        "import sys\nfrom ingest.cli import main\ncode = main(sys.argv[1:])\n"
        f"print('loaded:', sorted(m for m in sys.modules if m in {heavy}))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "poll", "--org", live_sim.url, "--db", str(tmp_path / "d")],
        capture_output=True, text=True, env={**os.environ, "OKTA_API_TOKEN": TOKEN}, cwd=REPO,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "20 stored" in done.stdout and "loaded: []" in done.stdout


def _poll_on_a_terminal(live_sim: Sim, db: Path) -> tuple[int, str, str]:
    """``oktaduck poll`` with stderr on a pseudo-terminal: (exit code, what the terminal
    showed, stdout)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKTADUCK_")}
    env["OKTA_API_TOKEN"] = TOKEN
    args = ["--org", live_sim.url, "--db", str(db), "--page-limit", "50", "--group-events", "50"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "poll", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env=env,
    )
    os.close(slave)
    shown = bytearray()
    try:
        while True:  # until the child's end of the terminal closes (EIO on Linux)
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                proc.kill()
                pytest.fail(f"poll wrote nothing for 60s; so far: {bytes(shown)!r}")
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.stdout:
        proc.stdout.close()
    return proc.wait(timeout=60), shown.decode(), out


def test_poll_draws_a_progress_line_on_a_terminal_and_clears_it(
    live_sim: Sim, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    live_sim.org.add(gen.stream(300, now - timedelta(hours=2), now - timedelta(minutes=1)))
    code, shown, out = _poll_on_a_terminal(live_sim, tmp_path / "okta.duckdb")
    assert code == 0, shown
    assert "300 stored" in out and "caught up" in out
    drawn = re.findall(
        r"\r(\S+: (\d+) events, (\d+) pages, rate-limit waits 0 \(0s\), \d+ events/s, "
        r"at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\x1b\[K",
        shown,
    )
    assert drawn, repr(shown)
    assert all(int(events) <= 300 and int(pages) >= 1 for _, events, pages in drawn)
    assert shown.endswith("\r\x1b[K")  # erased before the summary: nothing left behind


def test_poll_shows_no_progress_when_stderr_is_not_a_terminal(
    live_sim: Sim, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    live_sim.org.add(gen.stream(200, now - timedelta(hours=2), now - timedelta(minutes=1)))
    db = tmp_path / "okta.duckdb"
    done = run_cli(
        "poll", "--org", live_sim.url, "--db", str(db), "--page-limit", "50",
        "--group-events", "50", env={"OKTA_API_TOKEN": TOKEN},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "200 stored" in done.stdout
    assert done.stderr == ""


def test_poll_and_backfill_with_two_mapping_processes_store_every_event_once(
    live_sim: Sim, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    live_sim.org.add(gen.stream(230, now - timedelta(hours=3), now - timedelta(minutes=1)))
    polled = tmp_path / "polled.duckdb"
    done = run_cli(
        "poll", "--org", live_sim.url, "--db", str(polled), "--page-limit", "20",
        "--mappers", "2", env={"OKTA_API_TOKEN": TOKEN},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "230 stored" in done.stdout
    uuids = stored_uuids(polled)
    assert len(uuids) == len(set(uuids)) and set(uuids) == live_sim.org.visible_uuids()

    config = daemon_toml(
        tmp_path / "oktaduck.toml", [("acme", live_sim.url)], source_keys="page_limit = 20"
    )
    filled = run_cli(
        "backfill", "--config", str(config), "--source", "acme", "--since", "4h",
        "--mappers", "2", env={TOKEN_ENV: TOKEN},
    )  # fmt: skip
    assert filled.returncode == 0, filled.stderr
    assert "230 stored" in filled.stdout
    assert sorted(stored_uuids(tmp_path / "okta.duckdb")) == sorted(uuids)


@pytest.mark.parametrize("count", ["0", "17", "two"])
def test_a_mappers_count_out_of_range_is_refused_in_one_usage_line(
    tmp_path: Path, count: str
) -> None:
    out = run_cli("poll", "--org", "https://acme.okta.com", "--mappers", count)
    assert out.returncode == 2
    assert "--mappers" in out.stderr.splitlines()[-1]
    assert "Traceback" not in out.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_redraws_at_most_four_times_a_second_and_counts_waits() -> None:
    now = [100.0]
    term = _Terminal()
    line = ProgressLine(term, monotonic=lambda: now[0], columns=200)
    stats = ClientStats(rate_limited=2, rate_limit_seconds=41.6, paced_seconds=3.0)
    progress = PollProgress(line, "acme", stats, monotonic=lambda: now[0])
    published = datetime(2026, 11, 1, 12, 30, 5, tzinfo=UTC)
    now[0] = 110.0
    progress(1, 1000, CommitResult(1000, 0, 0, published))
    now[0] = 110.1  # too soon: not drawn
    progress(1, 1000, CommitResult(1000, 0, 0, None))
    now[0] = 110.3
    progress(1, 1000, CommitResult(1000, 0, 0, None))
    lines = term.getvalue().split("\r")[1:]
    assert lines == [
        "acme: 1000 events, 1 pages, rate-limit waits 2 (45s), 100 events/s, "
        "at 2026-11-01 12:30:05\x1b[K",
        "acme: 3000 events, 3 pages, rate-limit waits 2 (45s), 291 events/s, "
        "at 2026-11-01 12:30:05\x1b[K",
    ]
    line.clear()
    assert term.getvalue().endswith("\r\x1b[K")
    quiet = io.StringIO()  # not a terminal: nothing, unless plain lines are asked for
    ProgressLine(quiet).show("x")
    ProgressLine(quiet, plain_lines=True).show("y")
    assert quiet.getvalue() == "y\n"

"""Queries while the daemon runs: the CLI goes through the local API and prints the same
output; hostile SQL is refused on both paths."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from ingest.base.errors import OktaduckError
from ingest.store.query import open_read_only, run_user_query
from tests.helpers import TOKEN, Daemon, Sim, acme_daemon, daemon_api, run_cli

pytestmark = pytest.mark.slow  # starts the daemon

HOSTILE = [
    "COPY events TO '/tmp/oktaduck-stolen.csv'",
    "INSERT INTO events SELECT * FROM events",
    "DELETE FROM cursors",
    "ATTACH '/tmp/other.duckdb' AS other",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT 1; DROP TABLE events",
    "PRAGMA database_list",
    "SET enable_external_access = true",
    "CALL pragma_version()",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CREATE TABLE x AS SELECT 1",
    "EXPORT DATABASE '/tmp/oktaduck-dump'",
    "CHECKPOINT",
]


@pytest.fixture
def daemon(live_sim: Sim, tmp_path: Path) -> Iterator[tuple[Daemon, Path]]:
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    yield from acme_daemon(
        live_sim,
        tmp_path,
        gen.stream(500, now - timedelta(hours=3), now - timedelta(minutes=1)),
        gen.failed_login_burst(12, now - timedelta(minutes=30)),
    )


QUERIES = [
    (
        "sql",
        "--format",
        "json",
        "SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1",
    ),
    (
        "sql",
        "--format",
        "csv",
        "SELECT uuid, published, raw FROM events ORDER BY ingest_seq LIMIT 20",
    ),
    ("sql", "--format", "table", "SELECT uuid, actor_login FROM events ORDER BY uuid LIMIT 5"),
    (
        "feed",
        "failed-logins",
        "--since",
        "2026-01-01T00:00:00Z",
        "--format",
        "json",
        "--limit",
        "0",
    ),
    (
        "feed",
        "failed-logins",
        "--since",
        "2026-01-01T00:00:00Z",
        "--format",
        "ndjson",
        "--sort",
        "descending",
    ),
]


def test_cli_gives_the_same_output_through_the_daemon_as_from_the_file(
    daemon: tuple[Daemon, Path],
) -> None:
    d, db = daemon
    through_api = []
    for args in QUERIES:
        out = run_cli(*args, "--db", str(db))
        assert out.returncode == 0, (args, out.stderr)
        through_api.append(out.stdout)
    assert len(orjson.loads(through_api[3])) >= 12
    assert d.stop() == 0
    for args, expected in zip(QUERIES, through_api, strict=True):
        out = run_cli(*args, "--db", str(db))
        assert out.returncode == 0, out.stderr
        assert out.stdout == expected, args


def test_status_and_health_while_running(daemon: tuple[Daemon, Path]) -> None:
    _, db = daemon
    out = run_cli("status", "--db", str(db), "--format", "json")
    (row,) = orjson.loads(out.stdout)
    assert row["source"] == "acme" and row["events_stored"] == 512
    url, auth = daemon_api(db)
    health = httpx.get(url + "/healthz", headers=auth)
    assert health.status_code == 200
    assert health.json()["sources"]["acme"]["healthy"] is True
    assert httpx.get(url + "/healthz").json() == {"ok": True}  # no token: no details


def test_hostile_sql_is_refused_through_the_api(daemon: tuple[Daemon, Path]) -> None:
    _, db = daemon
    url, auth = daemon_api(db)
    auth["Content-Type"] = "application/sql"
    for sql in HOSTILE:
        answer = httpx.post(url + "/api/sql", content=sql, headers=auth)
        assert answer.status_code in (400, 403), sql
        assert "error" in answer.json()
    assert not Path("/tmp/oktaduck-stolen.csv").exists()
    out = run_cli("sql", "--db", str(db), HOSTILE[0])  # and the CLI says so in one line
    assert out.returncode == 2
    assert out.stderr.startswith("oktaduck: error: only SELECT")
    count = httpx.post(url + "/api/sql", content="SELECT count(*) AS n FROM events", headers=auth)
    assert count.json() == [{"n": 512}]
    # a query's own error that reads like a connection of no use is the query's (400): a 503
    # would mean the daemon found its connection unusable and starts again
    for text in (
        "Attempting to fetch from an unsuccessful query result",
        "ducklake_inlined_data_1",
    ):
        answer = httpx.post(url + "/api/sql", content=f"SELECT error('{text}')", headers=auth)
        assert answer.status_code == 400, answer.text


def test_hostile_sql_is_refused_on_the_file(polled_db: Path) -> None:
    con = open_read_only(polled_db)
    try:
        for sql in HOSTILE:
            with pytest.raises(OktaduckError):
                list(run_user_query(con, sql).rows)
        assert list(run_user_query(con, "SELECT count(*) FROM events").rows) == [(40,)]
    finally:
        con.close()


@pytest.fixture
def polled_db(live_sim: Sim, tmp_path: Path) -> Path:
    now = datetime.now(UTC)
    live_sim.org.add(
        live_sim.org.generator.stream(40, now - timedelta(hours=1), now - timedelta(minutes=1))
    )
    db = tmp_path / "okta.duckdb"
    done = run_cli("poll", "--org", live_sim.url, "--db", str(db), env={"OKTA_API_TOKEN": TOKEN})
    assert done.returncode == 0, done.stderr
    return db


def test_the_api_requires_a_token_off_loopback(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[api]\nlisten = "0.0.0.0:8765"\n[[sources]]\nname = "a"\norg_url = "https://a.okta.com"\n'
    )
    out = run_cli("run", "--config", str(config))
    assert out.returncode == 2
    assert "api.listen" in out.stderr and "token" in out.stderr

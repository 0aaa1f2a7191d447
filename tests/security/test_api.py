"""Attacks on the daemon's HTTP API: no token, another OS user, a web page (foreign Host,
Origin, simple content types), lying Content-Length, slow and half-open clients, a client that
leaves mid-query, a result that never ends, and fuzzed query strings."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.base.clock import SystemClock
from ingest.base.errors import ConfigError, OktaduckError
from ingest.base.secrets import Secret
from ingest.config import ApiConfig, parse_config
from ingest.mapping import CompiledMapping
from ingest.service.api import ApiServer, announce_path, api_token, token_path
from ingest.service.apiclient import Api, fetch
from ingest.store.db import Store
from ingest.store.limits import QueryLimits
from tests.helpers import Daemon, Sim, acme_daemon, daemon_api, run_cli

API_TOKEN = "api-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SQL = {**AUTH, "Content-Type": "application/sql"}
RUNAWAY = "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range + b.range < 0"


class Served:
    def __init__(self, server: ApiServer, store: Store) -> None:
        self.server = server
        self.store = store
        self.url = server.url
        self.port = server.port

    def raw(self, request: bytes) -> tuple[int, dict[str, object], bytes]:
        """Send ``request`` as is; the status, the JSON body (or {}) and the raw answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(request)
            answer = _read_all(s)
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = {}
        return status, doc if isinstance(doc, dict) else {}, answer


def _read_all(s: socket.socket) -> bytes:
    parts = []
    while chunk := s.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def _serve(
    tmp_path: Path, mapping: CompiledMapping, limits: QueryLimits | None = None, **config: object
) -> Iterator[Served]:
    store = Store(tmp_path / "okta.duckdb", mapping)
    settings_ = {"port": 0, "request_timeout": 1.0, "workers": 2, **config}
    server = ApiServer(
        ApiConfig(**settings_),  # type: ignore[arg-type]
        store.con,
        SystemClock(),
        lambda: (True, {"status": "ok", "sources": {"acme": {"last_error": None}}}),
        mapping,
        Secret(API_TOKEN, "test"),
        metrics=lambda: "oktaduck_up 1\n",
        limits=limits,
    )
    server.start(announce_path(store.path))
    try:
        yield Served(server, store)
    finally:
        server.stop(announce_path(store.path))
        store.close()


@pytest.fixture
def api(tmp_path: Path, mapping: CompiledMapping) -> Iterator[Served]:
    yield from _serve(tmp_path, mapping)


def test_every_route_but_a_bare_health_check_needs_the_token(api: Served) -> None:
    routes = ["/metrics", "/api/status", "/api/sinks", "/api/feeds", "/api/feeds/failed-logins"]
    for path in [*routes, "/api/export"]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}):
            answer = httpx.get(api.url + path, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.json() == {"error": "missing or wrong API token"}
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    sql = httpx.post(api.url + "/api/sql", content="SELECT 1", headers=SQL | {"Authorization": ""})
    assert sql.status_code == 401
    assert httpx.get(api.url + "/healthz").json() == {"ok": True}  # no details without it
    assert "sources" in httpx.get(api.url + "/healthz", headers=AUTH).json()
    for path in routes:
        assert httpx.get(api.url + path, headers=AUTH).status_code == 200, path
    answer = httpx.post(api.url + "/api/sql", content="SELECT 42 AS n", headers=SQL)
    assert answer.json() == [{"n": 42}]
    answer = httpx.post(
        api.url + "/api/sql",
        content=orjson.dumps({"sql": "SELECT 7 AS n"}),
        headers=AUTH | {"Content-Type": "application/json"},
    )
    assert answer.json() == [{"n": 7}]


def test_what_a_web_page_can_send_is_refused(api: Served) -> None:
    cases = [
        ({"Host": "attacker.example"}, 421),
        ({"Host": f"attacker.example:{api.port}"}, 421),
        ({"Host": f"127.0.0.2:{api.port}"}, 421),
        ({"Origin": "http://attacker.example"}, 403),
        ({"Origin": f"http://127.0.0.1:{api.port}"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
    ]
    for extra, expected in cases:
        for headers in (AUTH | extra, extra):
            answer = httpx.get(api.url + "/api/status", headers=headers)
            assert answer.status_code == expected, extra
            assert "error" in answer.json()
    for kind in (
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ):
        answer = httpx.post(
            api.url + "/api/sql", content="SELECT 1", headers=AUTH | {"Content-Type": kind}
        )
        assert answer.status_code == 415, kind
        assert "application/sql" in answer.json()["error"]
    for host in ("localhost", f"localhost:{api.port}", f"127.0.0.1:{api.port}", "127.0.0.1"):
        answer = httpx.get(api.url + "/api/status", headers=AUTH | {"Host": host})
        assert answer.status_code == 200, host


def test_bodies_must_declare_an_honest_length(api: Served) -> None:
    head = b"POST /api/sql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sql\r\n"
    head += b"Authorization: Bearer " + API_TOKEN.encode() + b"\r\n"
    cases = [
        (b"Content-Length: -1\r\n\r\nSELECT 1", 400),
        (b"Content-Length: abc\r\n\r\nSELECT 1", 400),
        (b"Content-Length: 1e3\r\n\r\nSELECT 1", 400),
        (b"Content-Length: 8\r\nContent-Length: 9\r\n\r\nSELECT 1", 400),
        (b"Content-Length: 8, 9\r\n\r\nSELECT 1", 400),
        (b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
        (b"Content-Length: 1048577\r\n\r\n" + b" " * 65536, 413),
        (b"Transfer-Encoding: chunked\r\n\r\n8\r\nSELECT 1\r\n0\r\n\r\n", 411),
        (b"\r\nSELECT 1", 411),
    ]
    for extra, expected in cases:
        status, doc, _ = api.raw(head + extra)
        assert status == expected, extra
        assert doc["error"]
    status, doc, _ = api.raw(head + b"Content-Length: 13\r\n\r\nSELECT 5 AS n")
    assert status == 200
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
        s.sendall(b"GET /api/sta")
        s.shutdown(socket.SHUT_WR)  # no more coming, but it still reads
        assert b"ended before it was complete" in _read_all(s)
    for target in (b"//[x", b"http://[x/", b"/api/feeds/%ff%00?since=%ff"):
        status, doc, _ = api.raw(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status in (400, 401, 404) and doc["error"], target
    assert httpx.get(api.url + "/healthz").json() == {"ok": True}  # the reader lives on
    status, doc, _ = api.raw(b"\r\n\r\n")
    assert status == 400 and doc["error"] == "the request line is empty"
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:  # as curl does
        s.sendall(head + b"Expect: 100-continue\r\nContent-Length: 13\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"SELECT 6 AS n")
        assert _read_all(s).endswith(b'[\n{"n":6}\n]\n\r\n0\r\n\r\n')
    status, doc, _ = api.raw(b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400 and doc["error"]
    status, doc, _ = api.raw(b"DELETE /api/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 501 and doc["error"]
    status, doc, _ = api.raw(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 70000 + b"\r\n\r\n")
    assert status == 431 and doc["error"]


def test_a_slow_client_is_cut_off_at_the_deadline(api: Served) -> None:
    """request_timeout (1 s here) covers the request line, headers and body together."""
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
        started = time.monotonic()
        answer = b""
        for byte in request:  # a byte every 50 ms never finishes within the second
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            s.settimeout(0.05)
            try:
                answer = s.recv(4096)
            except TimeoutError:
                continue
            break
        s.settimeout(5)
        answer += _read_all(s)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"not sent in time" in answer
    assert 0.9 < elapsed < 1.8


@pytest.mark.slow  # hundreds of connections
def test_half_open_connections_hold_no_threads_and_health_still_answers(api: Served) -> None:
    before = threading.active_count()
    held = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", api.port), timeout=5)
            s.sendall(b"GET /api/st")
            held.append(s)
        started = time.monotonic()
        answer = httpx.get(api.url + "/healthz", timeout=5)
        assert answer.status_code == 200 and answer.json() == {"ok": True}
        assert time.monotonic() - started < 0.5
        assert threading.active_count() <= before + 3  # the workers, made on first use
    finally:
        for s in held:
            s.close()


@pytest.fixture
def one_worker(tmp_path: Path, mapping: CompiledMapping) -> Iterator[Served]:
    yield from _serve(tmp_path, mapping, workers=1, max_result_bytes=20_000)


class _Seen(logging.Handler):
    """Sets an event when a log line with ``event`` name arrives."""

    def __init__(self, event: str) -> None:
        super().__init__()
        self.event = event
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self.event:
            self.seen.set()


@pytest.mark.parametrize("stray", [b"", b"\r\n"], ids=["quiet", "stray-bytes-first"])
def test_a_query_stops_when_its_client_leaves(one_worker: Served, stray: bytes) -> None:
    """Also after the client sent a stray byte past its request while the query ran."""
    seen = _Seen("api.query_cancelled")
    logger = logging.getLogger("oktaduck")
    logger.addHandler(seen)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        body = RUNAWAY.encode()
        request = (
            b"POST /api/sql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sql\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
        ) % (API_TOKEN.encode(), len(body), body)
        s = socket.create_connection(("127.0.0.1", one_worker.port))
        s.sendall(request)
        time.sleep(0.3)  # the query is under way (nothing to wait on: it answers nothing)
        if stray:
            s.sendall(stray)
            time.sleep(0.2)  # the watcher has seen the stray bytes before the hang-up
        s.close()
        assert seen.seen.wait(5), "the hang-up was not noticed"
        started = time.monotonic()  # the only worker is free again
        answer = httpx.post(one_worker.url + "/api/sql", content="SELECT 1 AS n", headers=SQL)
        assert answer.json() == [{"n": 1}]
        assert time.monotonic() - started < 2
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)


def _post_runaway(port: int, token: str = API_TOKEN) -> socket.socket:
    body = RUNAWAY.encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        b"POST /api/sql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sql\r\n"
        b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
        % (token.encode(), len(body), body)
    )
    return s


def test_a_query_past_its_time_limit_is_a_json_error(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    for served in _serve(tmp_path, mapping, limits=QueryLimits(timeout=0.3)):
        started = time.monotonic()
        answer = httpx.post(served.url + "/api/sql", content=RUNAWAY, headers=SQL)
        assert answer.status_code == 400
        assert "time limit of 0.3s" in answer.json()["error"]
        assert time.monotonic() - started < 3
        shorter = httpx.post(served.url + "/api/sql?timeout=0.1s", content=RUNAWAY, headers=SQL)
        assert "time limit of 0.1s" in shorter.json()["error"]
        longer = httpx.post(served.url + "/api/sql?timeout=1h", content=RUNAWAY, headers=SQL)
        assert "time limit of 0.3s" in longer.json()["error"]  # never past the daemon's
        for bad in ("0s", "soon", "-1s"):
            answer = httpx.post(
                served.url + f"/api/sql?timeout={bad}", content="SELECT 1", headers=SQL
            )
            assert answer.status_code == 400 and "timeout" in answer.json()["error"]


def test_stopping_the_api_cancels_running_queries(tmp_path: Path, mapping: CompiledMapping) -> None:
    served = _serve(tmp_path, mapping)
    api = next(served)
    s = _post_runaway(api.port)
    with api.server.idle:  # notified when a query starts
        assert api.server.idle.wait_for(lambda: api.server.running, 5)
    started = time.monotonic()
    with pytest.raises(StopIteration):
        next(served)  # stop() then the store's close(), which fails while a query runs
    assert time.monotonic() - started < 3
    answer = _read_all(s)
    s.close()
    assert b"query cancelled" in answer


def test_an_answer_past_the_cap_ends_with_an_error_the_cli_shows(one_worker: Served) -> None:
    sql = "SELECT range AS n FROM range(100000)"
    with pytest.raises(httpx.RemoteProtocolError):  # a generic client sees a cut transfer
        httpx.post(one_worker.url + "/api/sql", content=sql, headers=SQL)
    out = io.BytesIO()
    with pytest.raises(OktaduckError, match="max_result_bytes"):
        fetch(Api(one_worker.url, Secret(API_TOKEN)), "/api/sql", body=sql, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == b"[" and lines[1] == b'{"n":0},'  # the rows before the cap
    assert b"error" not in out.getvalue()
    small = io.BytesIO()
    fetch(Api(one_worker.url, Secret(API_TOKEN)), "/api/sql", body="SELECT 3 AS n", out=small)
    assert orjson.loads(small.getvalue()) == [{"n": 3}]


def test_bad_query_parameters_are_json_400(api: Served) -> None:
    cases = [
        "/api/export?fields=%7Bbad",
        "/api/export?fields=%5B1%5D",
        "/api/export?since=9999999999999d",
        "/api/export?until=99999-01-01T00:00:00Z",
        "/api/export?format=xml",
        "/api/export?filter=eventType%20eq",
        "/api/feeds/failed-logins?since=9999999999999d",
        "/api/feeds/failed-logins?limit=99999999999999999999999999",
        "/api/feeds/failed-logins?format=xml",
        "/api/feeds/no-such-feed",
        "/api/status?format=xml",
    ]
    for path in cases:
        answer = httpx.get(api.url + path, headers=AUTH)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"], path
    assert httpx.get(api.url + "/api/export?since=1h", headers=AUTH).status_code == 200


_param = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(
        ["/api/export", "/api/feeds/failed-logins", "/api/feeds/brute-force", "/api/feeds/x"]
    ),
    params=st.lists(
        st.tuples(
            st.sampled_from(["since", "until", "format", "fields", "filter", "q", "limit"])
            | _param,
            st.sampled_from(["1h", "now", "9999999999d", "json", "{", "[]", "-1", "1e999"])
            | _param,
        ),
        max_size=4,
    ),
)
@pytest.mark.slow  # Hypothesis: many requests to a live server
def test_fuzzed_query_strings_get_json_4xx_or_200(
    api: Served, path: str, params: list[tuple[str, str]]
) -> None:
    answer = httpx.get(f"{api.url}{path}?{urlencode(params)}", headers=AUTH)
    assert answer.status_code == 200 or 400 <= answer.status_code < 500, answer.text
    if answer.status_code != 200:
        assert isinstance(answer.json()["error"], str)


def test_the_generated_token_is_private_reused_and_yields_to_a_configured_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "okta.duckdb"
    os.umask(old := os.umask(0o022))
    first = api_token(ApiConfig(), db)
    path = token_path(db)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.reveal()) >= 40 and API_TOKEN not in repr(first)
    assert api_token(ApiConfig(), db).reveal() == first.reveal()
    path.chmod(0o644)  # anyone could have read it: a new one replaces it
    second = api_token(ApiConfig(), db)
    assert second.reveal() != first.reveal()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    planted = tmp_path / "planted"
    planted.write_text("a-token-someone-else-knows-0123456789")
    planted.chmod(0o600)
    path.unlink()
    path.symlink_to(planted)  # a link is not trusted either
    third = api_token(ApiConfig(), db)
    assert third.reveal() != planted.read_text() and not path.is_symlink()
    monkeypatch.setenv("MY_API_TOKEN", "configured-token-0123456789")
    configured = api_token(ApiConfig(token_env="MY_API_TOKEN"), db)
    assert configured.reveal() == "configured-token-0123456789"
    assert old == os.umask(old)


# -- the real daemon ------------------------------------------------------------------------


@pytest.fixture
def daemon(live_sim: Sim, tmp_path: Path) -> Iterator[tuple[Daemon, Path]]:
    yield from _daemon(live_sim, tmp_path)


def _daemon(
    live_sim: Sim, tmp_path: Path, wrap: tuple[str, ...] = ()
) -> Iterator[tuple[Daemon, Path]]:
    now = datetime.now(UTC)
    events = live_sim.org.generator.stream(30, now - timedelta(hours=1), now - timedelta(minutes=1))
    yield from acme_daemon(live_sim, tmp_path, events, wrap=wrap)


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count")


@pytest.mark.slow  # starts the daemon
def test_the_daemon_holds_300_half_open_connections_without_a_thread_each(
    daemon: tuple[Daemon, Path],
) -> None:
    d, db = daemon
    url, auth = daemon_api(db)
    port = int(url.rsplit(":", 1)[1])
    before = _threads(d.proc.pid)
    held = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HT")
            held.append(s)
        assert httpx.get(url + "/healthz", timeout=5).json() == {"ok": True}
        assert httpx.get(url + "/api/status", headers=auth, timeout=5).status_code == 200
        assert _threads(d.proc.pid) <= before + 9  # at most the 8 workers and health's
    finally:
        for s in held:
            s.close()
    out = run_cli("sql", "--db", str(db), "--format", "json", "SELECT count(*) AS n FROM events")
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == [{"n": 30}]
    out = run_cli("sql", "--db", str(db), "--timeout", "0.2s", RUNAWAY)  # through the API
    assert out.returncode != 0
    assert "time limit of 0.2s" in out.stderr and "Traceback" not in out.stderr
    exported = db.with_name("out.ndjson")
    out = run_cli("export", "--db", str(db), "--since", "2h", "--to", f"file:{exported}")
    assert out.returncode == 0, out.stderr
    assert len(exported.read_text().splitlines()) == 30


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another OS user")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.slow  # starts the daemon
def test_another_os_user_can_neither_read_the_token_nor_use_the_api(
    daemon: tuple[Daemon, Path],
) -> None:
    _, db = daemon
    url, auth = daemon_api(db)
    modes = {f: f.stat().st_mode for f in (db.parent, *db.parent.parents) if f != Path("/")}
    try:
        for folder, mode in modes.items():  # nobody may reach the files: only their own
            folder.chmod(mode | 0o005)  # mode keeps them private now
        _as_nobody(db, url, auth)
    finally:
        for folder, mode in modes.items():
            folder.chmod(stat.S_IMODE(mode))


def _as_nobody(db: Path, url: str, auth: dict[str, str]) -> None:
    nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    for private in (announce_path(db), token_path(db)):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        read = subprocess.run(
            [*nobody, "cat", str(private)], capture_output=True, text=True, check=False
        )
        assert read.returncode != 0 and "Permission denied" in read.stderr
    probe = (
        "import sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1] + '/api/sql', data=b'DROP TABLE events',"
        " headers={'Content-Type': 'application/sql'})\n"
        "try:\n    urllib.request.urlopen(req)\nexcept urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    used = subprocess.run(
        [*nobody, "/usr/bin/python3", "-c", probe, url],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert used.stdout.strip() == "401", used.stderr
    out = subprocess.run(
        [
            *nobody,
            "/usr/bin/python3",
            "-c",
            "import urllib.request,sys;"
            "print(urllib.request.urlopen(sys.argv[1] + '/healthz').read().decode())",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert orjson.loads(out.stdout) == {"ok": True}
    count = httpx.post(
        url + "/api/sql",
        content="SELECT count(*) AS n FROM events",
        headers=auth | {"Content-Type": "application/sql"},
    )
    assert count.json() == [{"n": 30}]


def test_the_api_keys_are_checked(tmp_path: Path) -> None:
    source = [{"name": "a", "org_url": "https://a.okta.com"}]

    def api(**keys: object) -> ApiConfig:
        return parse_config({"api": keys, "sources": source}, tmp_path).api

    config = api(workers=2, request_timeout="2s", max_result_bytes=1000)
    assert (config.workers, config.request_timeout, config.max_result_bytes) == (2, 2.0, 1000)
    assert api().workers == 8 and api().request_timeout == 10.0
    for key, value in [
        ("workers", 0),
        ("workers", 65),
        ("workers", "8"),
        ("request_timeout", "0s"),
        ("request_timeout", "forever"),
        ("max_result_bytes", 0),
        ("max_result_bytes", -1),
    ]:
        with pytest.raises(ConfigError, match=f"api.{key}"):
            api(**{key: value})


def test_unfinished_bodies_are_held_up_to_a_total_then_refused(api: Served) -> None:
    head = (
        b"POST /api/sql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sql\r\n"
        b"Content-Length: 1048576\r\n\r\n"
    )
    held = []
    try:
        for _ in range(40):  # 40 MiB of bodies that never end: more than the 32 MiB held
            s = socket.create_connection(("127.0.0.1", api.port), timeout=5)
            s.sendall(head + b" " * (1048576 - 1))
            held.append(s)
        busy = 0
        for s in held[-8:]:
            s.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                busy += s.recv(4096).startswith(b"HTTP/1.1 503 ")
        assert busy >= 1
        assert api.server.buffered <= 32 << 20
    finally:
        for s in held:
            s.close()
    answer = httpx.post(api.url + "/api/sql", content="SELECT 2 AS n", headers=SQL)
    assert answer.json() == [{"n": 2}]


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
@pytest.mark.slow  # starts the daemon
def test_health_answers_past_300_half_open_connections_under_a_low_fd_limit(
    live_sim: Sim, tmp_path: Path
) -> None:
    for d, db in _daemon(live_sim, tmp_path, ("prlimit", "--nofile=160:160")):
        url, _ = daemon_api(db)
        port = int(url.rsplit(":", 1)[1])
        held = []
        try:
            for _ in range(300):  # more than the daemon has file descriptors
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /healthz HT")
                held.append(s)
            for _ in range(3):
                assert httpx.get(url + "/healthz", timeout=5).json() == {"ok": True}
        finally:
            for s in held:
                s.close()
        assert d.proc.poll() is None


@pytest.fixture
def quick(tmp_path: Path, mapping: CompiledMapping) -> Iterator[Served]:
    yield from _serve(tmp_path, mapping, request_timeout=0.2)


_token = st.sampled_from(
    [
        b"GET",
        b"POST",
        b"PUT",
        b"/healthz",
        b"/api/sql",
        b"/api/status?format=csv",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/9.9",
        b" ",
        b"\t",
        b"\r\n",
        b"\n",
        b":",
        b"Host: localhost",
        b"Content-Length: 3",
        b"Content-Length: -1",
        b"Transfer-Encoding: chunked",
        b"Expect: 100-continue",
        b"Content-Type: application/sql",
        b"Origin: x",
        b"Authorization: Bearer " + API_TOKEN.encode(),
        b"\x00",
        b"\xff\xfe",
        b"%7B",
        b"//[",
        b"http://",
        b"?",
    ]
) | st.binary(max_size=12)


@pytest.mark.parametrize("line", [b"\xa0", b"\x85 ", b"\x1c\x1f", b"\t\xa0"])
def test_a_request_line_of_what_python_counts_as_whitespace_gets_a_400(
    quick: Served, line: bytes
) -> None:
    status, doc, _ = quick.raw(line + b"\r\n\r\n")
    assert status == 400 and "request line is empty" in str(doc["error"])


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(parts=st.lists(_token, max_size=12))
def test_fuzzed_requests_always_get_an_http_answer(quick: Served, parts: list[bytes]) -> None:
    """Whatever head arrives, the answer is HTTP with a JSON body on a refusal (a body still
    due: 408 at the deadline): never silence, a dropped connection or a 500 (501, 503 and
    505 name the method, the load and the HTTP version the API does not serve)."""
    request = b"".join(parts) + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", quick.port), timeout=5) as s:
        s.sendall(request)
        answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 "), (request, answer)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert status < 500 or status in (501, 503, 505), (request, answer)
    if status >= 400:
        assert isinstance(orjson.loads(body)["error"], str)


@pytest.mark.slow  # starts the daemon
def test_the_daemon_cancels_the_query_of_a_client_that_left(
    daemon: tuple[Daemon, Path],
) -> None:
    d, db = daemon
    url, auth = daemon_api(db)
    port = int(url.rsplit(":", 1)[1])
    s = _post_runaway(port, auth["Authorization"].removeprefix("Bearer "))
    s.close()  # at once: the daemon notices the hang-up whether the query started or not
    logs = d.wait_for(lambda logs: logs[-1]["event"] == "api.query_cancelled", timeout=20)
    assert logs[-1]["path"] == "/api/sql" and logs[-1]["reason"] == "client gone"
    started = time.monotonic()
    for _ in range(8):  # every worker is free again
        answer = httpx.post(
            url + "/api/sql",
            content="SELECT 1 AS n",
            headers=auth | {"Content-Type": "application/sql"},
        )
        assert answer.json() == [{"n": 1}]
    assert time.monotonic() - started < 5

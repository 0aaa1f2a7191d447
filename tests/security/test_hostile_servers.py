"""Hostile Okta servers at the HTTP level: bombs, drips, loops, huge error bodies, a stop
mid-request. Each server is a few lines of raw socket code on 127.0.0.1."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import BadRequest, BadResponse, ConfigError
from ingest.collect.backfill import fetch_range
from ingest.collect.connect import open_client
from ingest.collect.poll import poll_cycle
from ingest.collect.settings import SourceConfig
from ingest.config import load_config
from ingest.mapping import CompiledMapping
from ingest.okta.client import ClientPolicy, LinkTrail, OktaClient, Stopped
from ingest.okta.transport import deadline_transport
from ingest.okta.urls import OrgURL
from ingest.store.db import Store
from tests.helpers import REPO, START, TOKEN, TOKEN_ENV, Daemon, stored_uuids

Answer = Callable[["Hostile", str, socket.socket], None]
LOGS = "/api/v1/logs"


class Hostile:
    """An HTTP server that reads a request's head and lets ``answer`` write anything back,
    one connection per request."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[str] = []
        self.requested = threading.Event()
        self.closing = threading.Event()
        self.sent = 0  # bytes written by the last answer that counts them
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            path = head.split(b" ", 2)[1].decode()
            self.requests.append(path)
            self.requested.set()
            with contextlib.suppress(OSError):  # the client hung up, as it should
                self.answer(self, path, conn)

    def drip(self, conn: socket.socket, data: bytes, every: float = 0.05) -> None:
        """Send ``data`` a byte at a time (each well within any per-read timeout)."""
        for i in range(len(data)):
            if self.closing.wait(every):
                return
            conn.sendall(data[i : i + 1])

    def stop(self) -> None:
        self.closing.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Answer], Hostile]]:
    made: list[Hostile] = []

    def make(answer: Answer) -> Hostile:
        server = Hostile(answer)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def events(n: int) -> list[dict[str, Any]]:
    return [
        {
            "uuid": str(uuid.uuid4()),
            "published": "2026-11-01T11:00:00.000Z",
            "eventType": "user.session.start",
            "version": "0",
            "severity": "INFO",
            "displayMessage": "User login to Okta",
        }
        for _ in range(n)
    ]


def head(status: str = "200 OK", **headers: str | int) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def page(server: Hostile, conn: socket.socket, path: str, body: bytes, after: str) -> None:
    following = f"{server.url}{LOGS}?after={after}&limit=2"
    links = f'<{server.url}{path}>; rel="self", <{following}>; rel="next"'
    conn.sendall(head(Content_Length=len(body), Link=links) + body)


def source(server: Hostile, timeout: float = 5.0, max_bytes: int | None = None) -> SourceConfig:
    policy = ClientPolicy(retry_for=0, backoff_initial=0.01)
    if max_bytes is not None:
        policy = ClientPolicy(retry_for=0, backoff_initial=0.01, max_response_bytes=max_bytes)
    return SourceConfig(
        name="acme",
        org=OrgURL.parse(server.url),
        token_env=TOKEN_ENV,
        page_limit=2,
        client=policy,
        timeout=timeout,
    )


@pytest.fixture
def connect(token_env: str) -> Iterator[Callable[[SourceConfig], OktaClient]]:
    made: list[OktaClient] = []

    def make(config: SourceConfig) -> OktaClient:
        client = open_client(config, FakeClock(START))
        made.append(client)
        return client

    yield make
    for client in made:
        client.http.close()


def gzipped(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (about 1/230 of it)."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    parts = [packer.compress(zeros) for _ in range(size >> 20)]
    return b"".join([*parts, packer.flush()])


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzipped(256 << 20)  # 1.1 MB that inflates to 256 MiB


# --- size caps ---------------------------------------------------------------------------


def test_a_gzip_bomb_fails_the_request_once_past_the_cap(
    hostile: Callable[[Answer], Hostile], connect: Callable[[SourceConfig], OktaClient], bomb: bytes
) -> None:
    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        conn.sendall(head(Content_Encoding="gzip", Content_Length=len(bomb)) + bomb)

    server = hostile(answer)
    client = connect(source(server, max_bytes=1 << 20))
    with pytest.raises(BadResponse, match=r"larger than max_response_bytes \(1048576 bytes "):
        client.fetch(f"{server.url}{LOGS}?limit=2")
    assert len(server.requests) == 1  # not retried: a bomb is not a passing fault


def test_a_body_larger_than_the_cap_as_sent_fails_too(
    hostile: Callable[[Answer], Hostile], connect: Callable[[SourceConfig], OktaClient]
) -> None:
    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        # no Content-Length: the size shows only while reading
        conn.sendall(head())
        for _ in range(64):
            conn.sendall(b" " * 65536)

    server = hostile(answer)
    client = connect(source(server, max_bytes=1 << 20))
    with pytest.raises(BadResponse, match=r"\(1048576 bytes as sent\)"):
        client.fetch(f"{server.url}{LOGS}?limit=2")


def test_a_gzip_page_within_the_cap_is_read(
    hostile: Callable[[Answer], Hostile], connect: Callable[[SourceConfig], OktaClient]
) -> None:
    sent = events(2)

    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        body = zlib.compress(orjson.dumps(sent), wbits=16 + zlib.MAX_WBITS)
        conn.sendall(head(Content_Encoding="gzip", Content_Length=len(body)) + body)

    server = hostile(answer)
    got = connect(source(server)).fetch(f"{server.url}{LOGS}?limit=2")
    assert got.decoded == sent


def test_an_encoding_not_asked_for_is_refused(
    hostile: Callable[[Answer], Hostile], connect: Callable[[SourceConfig], OktaClient]
) -> None:
    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        conn.sendall(head(Content_Encoding="br", Content_Length=2) + b"[]")

    server = hostile(answer)
    with pytest.raises(BadResponse, match="content encoding 'br'"):
        connect(source(server)).fetch(f"{server.url}{LOGS}?limit=2")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("bomb", r"\(2097152 bytes decompressed\)"),
        ("plain", r"\(2097152 bytes as sent\)"),
        ("page", None),
        ("corrupt", None),
    ],
)
def test_a_client_on_any_httpx_client_reads_pages_with_the_same_caps(
    hostile: Callable[[Answer], Hostile], bomb: bytes, body: str, says: str | None
) -> None:
    """OktaClient given an httpx.Client of its own (not the bounded transport) decompresses
    and caps a page itself, with the same reader and the same messages."""
    sent = events(2)
    page = zlib.compress(orjson.dumps(sent), wbits=16 + zlib.MAX_WBITS)
    answers = {
        "bomb": head(Content_Encoding="gzip", Content_Length=len(bomb)) + bomb,
        "plain": head(Content_Length=3 << 20) + b" " * (3 << 20),
        "page": head(Content_Encoding="gzip", Content_Length=len(page)) + page,
        "corrupt": head(Content_Encoding="gzip", Content_Length=50) + page[:10] + b"x" * 40,
    }

    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        conn.sendall(answers[body])

    server = hostile(answer)
    policy = ClientPolicy(retry_for=0, backoff_initial=0.01, max_response_bytes=2 << 20)
    with httpx.Client(timeout=5) as http:
        client = OktaClient(OrgURL.parse(server.url), http, FakeClock(START), policy)
        if body == "page":
            assert client.fetch(f"{server.url}{LOGS}?limit=2").decoded == sent
        elif says is not None:
            with pytest.raises(BadResponse, match=says):
                client.fetch(f"{server.url}{LOGS}?limit=2")
            assert len(server.requests) == 1
        else:
            with pytest.raises(
                BadResponse, match=r"giving up .*HTTP 200 with a body that is not valid gzip"
            ):
                client.fetch(f"{server.url}{LOGS}?limit=2")


def test_a_huge_error_body_is_read_only_as_far_as_its_envelope(
    hostile: Callable[[Answer], Hostile], connect: Callable[[SourceConfig], OktaClient]
) -> None:
    size = 256 << 20
    envelope = b'{"errorCode":"E0000001","errorSummary":"Api validation failed"}'
    padding = b" " * (1 << 20)

    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        conn.sendall(head("400 Bad Request", Content_Length=size) + envelope)
        server.sent = len(envelope)
        while server.sent < size:
            conn.sendall(padding)
            server.sent += len(padding)

    server = hostile(answer)
    started = time.monotonic()
    with pytest.raises(BadRequest, match=r"^Okta rejected the query \(HTTP 400"):
        connect(source(server)).fetch(f"{server.url}{LOGS}?limit=2")
    assert time.monotonic() - started < 3
    assert server.sent < size // 4  # the client hung up long before the end


def test_peak_memory_stays_far_below_a_bomb(
    hostile: Callable[[Answer], Hostile], bomb: bytes, tmp_path: Path
) -> None:
    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        conn.sendall(head(Content_Encoding="gzip", Content_Length=len(bomb)) + bomb)

    server = hostile(answer)
    config = write_config(tmp_path, server, max_response_bytes=4 << 20)
    run = run_measured(["poll", "--config", str(config)])
    assert run["rc"] == 1, run
    assert "larger than max_response_bytes (4194304 bytes decompressed)" in run["stderr"]
    assert "Traceback" not in run["stderr"]
    assert run["stderr"].count("\n") == 1
    # a poll is ~100 MB; the bomb inflates to 256 MiB (it took 2.2 GB for a 1 GiB one)
    assert run["peak_mb"] < 180, run


def write_config(tmp_path: Path, server: Hostile, **keys: Any) -> Path:
    config = tmp_path / "oktaduck.toml"
    extra = "\n".join(f"{k} = {json.dumps(v)}" for k, v in keys.items())
    config.write_text(
        f"""
[storage]
path = "okta.duckdb"

[api]
listen = "127.0.0.1:0"

[[sources]]
name = "acme"
org_url = "{server.url}"
token_env = "{TOKEN_ENV}"
page_limit = 2
retry_for = "1s"
{extra}
"""
    )
    return config


_MEASURE = """
import json, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=False)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rc": run.returncode, "stderr": run.stderr, "peak_mb": peak}))
"""


def run_measured(args: list[str]) -> dict[str, Any]:
    """``oktaduck ARGS`` in a fresh process whose only children are the poll and its
    mapping process, so that their peak RSS is what ``RUSAGE_CHILDREN`` reports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKTADUCK_")}
    env[TOKEN_ENV] = TOKEN
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "ingest.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- deadlines ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_drip_ends_at_the_deadline(
    hostile: Callable[[Answer], Hostile],
    connect: Callable[[SourceConfig], OktaClient],
    where: str,
) -> None:
    """A byte at a time, in the headers or in the body: the request ends at its deadline."""
    body = orjson.dumps(events(2))

    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        if where == "headers":
            server.drip(conn, b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"a" * 10_000)
        else:
            conn.sendall(head(Content_Length=len(body)))
            server.drip(conn, body)

    server = hostile(answer)
    client = connect(source(server, timeout=1.0))
    started = time.monotonic()
    with pytest.raises(BadResponse, match=r"no complete answer within 1s"):
        client.fetch(f"{server.url}{LOGS}?limit=2")
    assert 0.9 < time.monotonic() - started < 2.0


def test_a_stop_ends_a_request_in_progress(
    hostile: Callable[[Answer], Hostile], connect: Callable[[SourceConfig], OktaClient]
) -> None:
    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        conn.sendall(head(Content_Length=100_000))
        server.drip(conn, b"[" * 100_000)

    server = hostile(answer)
    stop = threading.Event()
    client = connect(source(server, timeout=60.0))
    client.stop = stop

    def stop_once_asked() -> None:
        server.requested.wait()
        stop.set()

    threading.Thread(target=stop_once_asked, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        client.fetch(f"{server.url}{LOGS}?limit=2")
    assert time.monotonic() - started < 2.0


# --- loops -------------------------------------------------------------------------------


def alternating(server: Hostile, path: str, conn: socket.socket) -> None:
    """Full pages whose next links go A -> B -> A -> B ... for ever."""
    after = "A" if "after=" not in path or "after=B" in path else "B"
    page(server, conn, path, orjson.dumps(events(2)), after)


def test_next_links_that_go_round_stop_the_cycle_at_the_last_good_page(
    hostile: Callable[[Answer], Hostile],
    connect: Callable[[SourceConfig], OktaClient],
    mapping: CompiledMapping,
    tmp_path: Path,
) -> None:
    server = hostile(alternating)
    config = source(server)
    clock = FakeClock(START)
    with Store(tmp_path / "okta.duckdb", mapping) as store:
        with pytest.raises(BadResponse, match="next link repeats an earlier page"):
            poll_cycle(config, store, connect(config), clock)
        cursor = store.cursor("acme")
    # start -> A -> B, whose next is A again: the first two pages are kept, B is not
    assert len(server.requests) == 3
    assert cursor is not None and cursor.next_url == f"{server.url}{LOGS}?after=B&limit=2"
    assert len(stored_uuids(tmp_path / "okta.duckdb")) == 4


def test_a_caught_up_page_whose_next_is_itself_is_no_loop(
    hostile: Callable[[Answer], Hostile],
    connect: Callable[[SourceConfig], OktaClient],
    mapping: CompiledMapping,
    tmp_path: Path,
) -> None:
    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        if "after=" in path:  # caught up: an empty page that links to itself
            links = f'<{server.url}{path}>; rel="self", <{server.url}{path}>; rel="next"'
            conn.sendall(head(Content_Length=2, Link=links) + b"[]")
        else:
            page(server, conn, path, orjson.dumps(events(2)), "A")

    server = hostile(answer)
    config = source(server)
    with Store(tmp_path / "okta.duckdb", mapping) as store:
        result = poll_cycle(config, store, connect(config), FakeClock(START))
        assert result.caught_up and result.stored == 2
        again = poll_cycle(config, store, connect(config), FakeClock(START))
        assert again.caught_up and again.pages == 1


def test_a_long_loop_is_caught_within_a_few_rounds() -> None:
    trail = LinkTrail("start")
    loop = [f"u{i}" for i in range(3000)]  # longer than the links remembered exactly
    with pytest.raises(BadResponse, match="repeats an earlier page"):
        for _ in range(4):
            for url in loop:
                trail.follow(url)
    assert 3000 < trail.pages <= 4 * 3000
    fresh = LinkTrail("start")
    for i in range(20_000):  # never a repeat: never an error
        fresh.follow(f"v{i}")


# --- stopping mid-request ----------------------------------------------------------------


def first_page_then_drip(server: Hostile, path: str, conn: socket.socket) -> None:
    if "after=" not in path:
        page(server, conn, path, orjson.dumps(events(2)), "A")
        return
    conn.sendall(head(Content_Length=100_000))
    server.drip(conn, b"[" * 100_000, every=0.2)


@pytest.mark.parametrize(
    "command", [["poll"], ["backfill", "--source", "acme", "--since", "2h"]], ids=lambda c: c[0]
)
@pytest.mark.slow  # CLI subprocesses
def test_sigterm_stops_a_one_shot_poll_in_the_middle_of_a_request(
    hostile: Callable[[Answer], Hostile], tmp_path: Path, command: list[str]
) -> None:
    server = hostile(first_page_then_drip)
    config = write_config(tmp_path, server, timeout="60s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKTADUCK_")}
    env[TOKEN_ENV] = TOKEN
    mark = f"HOSTILE_TEST_RUN={uuid.uuid4()}"  # inherited by the mapping process too
    env["HOSTILE_TEST_RUN"] = mark.split("=", 1)[1]
    env["PYTHONFAULTHANDLER"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", *command, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_for_request(server, "after=A")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            pytest.fail(f"still running 10 s after SIGTERM: {proc.communicate()[1][-4000:]}")
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert took < 5
    assert "stopped early" in out, out
    assert len(stored_uuids(tmp_path / "okta.duckdb")) == 2  # the first page stays
    assert processes_with(mark) == []  # the mapping process is gone with it


def processes_with(mark: str) -> list[int]:
    """The running processes whose environment holds ``mark``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if mark.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def wait_for_request(server: Hostile, part: str, timeout: float = 90) -> None:
    """Wait until a request whose path holds ``part`` has come (a CLI started on a loaded machine
    can take half a minute to get there)."""
    ends = time.monotonic() + timeout
    while not any(part in path for path in server.requests):
        assert server.requested.wait(max(0.0, ends - time.monotonic())), server.requests
        server.requested.clear()


@pytest.mark.slow  # starts the daemon
def test_the_daemon_stops_cleanly_while_a_source_is_mid_request(
    hostile: Callable[[Answer], Hostile], tmp_path: Path
) -> None:
    server = hostile(first_page_then_drip)
    config = write_config(tmp_path, server, timeout="60s")
    daemon = Daemon(config, {TOKEN_ENV: TOKEN})
    wait_for_request(server, "after=A")
    sent = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    logs = daemon.wait_for(lambda logs: any(g["event"] == "daemon.stopped" for g in logs), 30)
    assert daemon.proc.wait(timeout=10) == 0
    assert time.monotonic() - sent < 5
    assert [g["clean"] for g in logs if g["event"] == "daemon.stopped"] == [True]
    assert len(stored_uuids(tmp_path / "okta.duckdb")) == 2  # the page before the drip


def test_backfill_history_refuses_a_link_back_too(
    hostile: Callable[[Answer], Hostile],
    connect: Callable[[SourceConfig], OktaClient],
    mapping: CompiledMapping,
    tmp_path: Path,
) -> None:
    server = hostile(alternating)
    config = source(server)
    committed: list[int] = []
    with (
        Store(tmp_path / "okta.duckdb", mapping) as store,
        pytest.raises(BadResponse, match="next link repeats an earlier page"),
    ):
        fetch_range(
            config,
            store,
            connect(config),
            FakeClock(START),
            START - timedelta(hours=2),
            START,
            lambda pages, events, result: committed.append(result.stored),
        )
    assert committed == [2, 2]  # the bounded first page and A; B links back to A
    assert len(server.requests) == 3


def test_max_response_bytes_is_a_source_setting(tmp_path: Path) -> None:
    config = tmp_path / "oktaduck.toml"
    body = '[[sources]]\nname = "acme"\norg_url = "https://acme.okta.com"\n'
    config.write_text(body + "max_response_bytes = 1048576\n")
    assert load_config(config).sources[0].client.max_response_bytes == 1 << 20
    config.write_text(body)
    assert load_config(config).sources[0].client.max_response_bytes == 128 << 20
    config.write_text(body + "max_response_bytes = 1000\n")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.max_response_bytes: must be between"):
        load_config(config)


def test_bodies_httpx_reads_itself_are_bounded_too(
    hostile: Callable[[Answer], Hostile], bomb: bytes
) -> None:
    """What an OAuth flow reads (a token answer, a 401 before its retry) never goes through
    OktaClient's reader: the transport bounds it."""

    def answer(server: Hostile, path: str, conn: socket.socket) -> None:
        status = "401 Unauthorized" if "error" in path else "200 OK"
        conn.sendall(head(status, Content_Encoding="gzip", Content_Length=len(bomb)) + bomb)

    server = hostile(answer)
    with httpx.Client(transport=deadline_transport(True, None, max_bytes=2 << 20)) as http:
        with pytest.raises(BadResponse, match=r"\(2097152 bytes decompressed\)"):
            http.post(f"{server.url}/oauth2/v1/token")
        refused = http.get(f"{server.url}/error")
    assert refused.status_code == 401
    assert len(refused.content) == 65536  # the start of the error body, decompressed
    assert "content-encoding" not in refused.headers


def test_a_stop_ends_an_unanswered_connect(
    connect: Callable[[SourceConfig], OktaClient],
) -> None:
    # a listener that never accepts: once its queue is full, a handshake goes unanswered
    with socket.create_server(("127.0.0.1", 0), backlog=0) as full:
        url = f"http://127.0.0.1:{full.getsockname()[1]}"
        queued = socket.create_connection(full.getsockname(), timeout=1)
        with socket.socket() as probe, pytest.raises(TimeoutError):
            probe.settimeout(0.2)
            probe.connect(full.getsockname())  # the premise: a handshake now hangs
        config = SourceConfig(name="acme", org=OrgURL.parse(url), token_env=TOKEN_ENV)
        client = connect(dataclasses.replace(config, timeout=30.0))
        client.stop = threading.Event()
        stopper = threading.Timer(0.3, client.stop.set)
        stopper.start()
        started = time.monotonic()
        try:
            with pytest.raises(Stopped):
                client.fetch(f"{url}{LOGS}?limit=2")
        finally:
            stopper.cancel()
            queued.close()
    assert time.monotonic() - started < 1.5  # not the 15 s connect timeout

"""HttpSink against a real HTTP server on 127.0.0.1: every outcome, both Splunk HEC bodies."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import ConfigError
from ingest.base.secrets import Secret
from ingest.export.sinks import (
    HttpSink,
    HttpSinkConfig,
    SinkRejected,
    SinkUnavailable,
    retry_after_seconds,
)
from tests.receivers import (
    Drop,
    Hang,
    HttpReceiver,
    Reply,
    event_lines,
    retry_later,
    self_signed,
)

TOKEN = "hec-0123456789-secret-token"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
MakeSink = Callable[..., HttpSink]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as r:
        yield r


@pytest.fixture
def make_sink(receiver: HttpReceiver) -> Iterator[MakeSink]:
    """Build sinks pointed at the receiver (on a fake clock for HTTP dates); close them after."""
    sinks: list[HttpSink] = []

    def make(**options: Any) -> HttpSink:
        settings: dict[str, Any] = {"url": receiver.url, "timeout": 2.0}
        settings.update(options)
        sink = HttpSink(HttpSinkConfig(**settings), clock=FakeClock(NOW))
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


def test_a_2xx_answer_means_the_whole_batch_was_posted_as_ndjson(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    """The generic preset posts the lines as NDJSON with a Bearer token; 200 is acceptance."""
    lines = event_lines(100)
    sink = make_sink(token=Secret(TOKEN))
    sink.send(lines)
    sink.close()
    [request] = receiver.accepted
    assert request.lines == lines
    assert request.body.endswith(b"\n")
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_large_batches_are_split_at_max_batch_bytes(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    """No request body exceeds max_batch_bytes; together they hold every line once, in order."""
    lines = event_lines(50, size=1000)
    sink = make_sink(max_batch_bytes=10_000, gzip=True)
    sink.send(lines)
    assert len(receiver.accepted) >= 5
    assert all(len(r.body) <= 10_000 for r in receiver.accepted)
    assert all(r.headers["content-encoding"] == "gzip" for r in receiver.accepted)
    assert receiver.accepted_lines() == lines


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (retry_later(429, "7"), 7.0),
        (retry_later(503, "Sun, 01 Nov 2026 00:00:30 GMT"), 30.0),
        (retry_later(503, None), None),
        (Reply(500, b"internal error"), None),
        (Reply(502, b"bad gateway"), None),
        (Reply(408, b"request timeout"), None),
    ],
)
def test_busy_and_server_errors_are_retryable(
    receiver: HttpReceiver, make_sink: MakeSink, reply: Reply, retry_after: float | None
) -> None:
    """429, 503, 5xx and 408 raise SinkUnavailable, with the server's Retry-After in seconds."""
    receiver.script(reply)
    sink = make_sink()
    with pytest.raises(SinkUnavailable) as caught:
        sink.send(event_lines(3))
    assert caught.value.retry_after == retry_after
    assert caught.value.status == reply.status
    sink.send(event_lines(3))  # the next attempt goes through
    assert receiver.accepted_lines() == event_lines(3)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_other_client_errors_are_permanent_with_status_and_excerpt(
    receiver: HttpReceiver, make_sink: MakeSink, status: int
) -> None:
    """4xx other than 408/429 raise SinkRejected naming the status and the answer's start."""
    receiver.script(Reply(status, b'{"text":"Invalid token","code":4}' + b" " * 5000))
    sink = make_sink(token=Secret(TOKEN))
    with pytest.raises(SinkRejected) as caught:
        sink.send(event_lines(1))
    assert caught.value.status == status
    assert f"HTTP {status}" in str(caught.value)
    assert "Invalid token" in str(caught.value)
    assert len(str(caught.value)) < 400


def test_a_redirect_is_not_followed(receiver: HttpReceiver, make_sink: MakeSink) -> None:
    """A 3xx would carry the token elsewhere: refused, naming only the target host."""
    receiver.script(Reply(307, b"", (("Location", "https://elsewhere.example/x?t=1"),)))
    sink = make_sink(token=Secret(TOKEN))
    with pytest.raises(SinkRejected, match=r"elsewhere\.example"):
        sink.send(event_lines(1))
    assert len(receiver.requests) == 1


def test_a_connection_dropped_mid_request_is_retryable(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    """The server resetting the connection without an answer raises SinkUnavailable."""
    receiver.script(Drop())
    sink = make_sink()
    with pytest.raises(SinkUnavailable, match="cannot deliver"):
        sink.send(event_lines(200, size=2500))
    assert receiver.accepted == []
    sink.send(event_lines(2))
    assert receiver.accepted_lines() == event_lines(2)


def test_a_server_that_never_answers_times_out(receiver: HttpReceiver, make_sink: MakeSink) -> None:
    """No answer within the timeout raises SinkUnavailable instead of blocking."""
    receiver.script(Hang(seconds=5))
    sink = make_sink(timeout=0.3)
    with pytest.raises(SinkUnavailable, match=r"did not answer within 0\.3 s"):
        sink.send(event_lines(1))


def test_a_receiver_down_for_three_requests_then_back(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    """Refused connections raise SinkUnavailable each time; the sink recovers once it is up."""
    sink = make_sink()
    sink.send(event_lines(1))  # a kept-alive connection now exists
    receiver.down()
    for _ in range(3):
        with pytest.raises(SinkUnavailable, match="cannot deliver"):
            sink.send(event_lines(1, start=1))
    receiver.up()
    sink.send(event_lines(1, start=1))
    assert receiver.accepted_lines() == event_lines(2)


def test_kept_alive_connections_are_reused(receiver: HttpReceiver, make_sink: MakeSink) -> None:
    """Consecutive batches share one connection (the pool keeps it alive)."""
    sink = make_sink()
    for i in range(5):
        sink.send(event_lines(1, start=i))
    assert receiver.accepted_lines() == event_lines(5)
    assert receiver.connections_opened == 1


def test_splunk_hec_event_preset_builds_the_documented_envelope(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    """Each line becomes {"event": line, "time": epoch seconds from published, host, source,
    sourcetype, index}, objects concatenated, with Authorization: Splunk and the channel."""
    lines = [
        *event_lines(2),
        orjson.dumps({"@timestamp": "2026-11-01T12:00:01.250Z", "event": {"action": "x"}}),
        orjson.dumps({"time": 1793534400123, "class_uid": 3002}),  # OCSF: epoch ms
        orjson.dumps({"uuid": "no-time"}),
    ]
    sink = make_sink(
        url=receiver.url + "/",
        preset="splunk-hec-event",
        token=Secret(TOKEN),
        channel="0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba",
        host="collector-1",
        index="okta",
    )
    sink.send(lines)
    [request] = receiver.accepted
    assert request.path == "/services/collector/event"
    assert request.headers["authorization"] == f"Splunk {TOKEN}"
    assert request.headers["x-splunk-request-channel"] == "0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba"
    assert request.headers["content-type"] == "application/json"
    decoder = _concatenated(request.body)
    assert [d["event"] for d in decoder] == [orjson.loads(line) for line in lines]
    assert [d.get("time") for d in decoder] == pytest.approx(
        [
            datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC).timestamp(),
            datetime(2026, 11, 1, 12, 0, 1, 1000, tzinfo=UTC).timestamp(),
            datetime(2026, 11, 1, 12, 0, 1, 250000, tzinfo=UTC).timestamp(),
            1793534400.123,
            None,
        ],
        abs=1e-6,
    )
    assert {(d["host"], d["source"], d["sourcetype"], d["index"]) for d in decoder} == {
        ("collector-1", "oktaduck", "okta:im2", "okta")
    }
    assert lines[0] in request.body  # the event is embedded byte for byte


def _concatenated(body: bytes) -> list[dict[str, Any]]:
    """Split HEC's concatenated JSON objects (no separator) with a raw JSON decoder."""
    decoder = json.JSONDecoder()
    text = body.decode()
    found, position = [], 0
    while position < len(text):
        obj, position = decoder.raw_decode(text, position)
        found.append(obj)
    return found


def test_splunk_hec_raw_preset_posts_lines_with_metadata_in_the_query(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    """The raw endpoint gets the NDJSON lines as they are; metadata goes in the query string."""
    lines = event_lines(10)
    sink = make_sink(preset="splunk-hec-raw", token=Secret(TOKEN), host="h1")
    sink.send(lines)
    [request] = receiver.accepted
    assert request.path == "/services/collector/raw"
    assert request.query == {"sourcetype": "okta:im2", "source": "oktaduck", "host": "h1"}
    assert request.headers["authorization"] == f"Splunk {TOKEN}"
    assert "x-splunk-request-channel" not in request.headers
    assert request.lines == lines


def test_hec_answer_with_a_non_zero_code_is_rejected(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    """A 200 whose HEC code is not 0 is not an acceptance."""
    receiver.script(Reply(200, b'{"text":"Incorrect index","code":7}'))
    sink = make_sink(preset="splunk-hec-event")
    with pytest.raises(SinkRejected, match="HEC code 7: Incorrect index"):
        sink.send(event_lines(1))


def test_hec_event_preset_refuses_a_line_that_is_not_json(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    """The envelope embeds the line as JSON, so a non-JSON line is rejected before sending."""
    sink = make_sink(preset="splunk-hec-event")
    with pytest.raises(SinkRejected, match="line 1"):
        sink.send([b"{}", b"not json"])
    assert receiver.requests == []


def test_the_token_never_shows_in_errors_or_reprs(receiver: HttpReceiver) -> None:
    """Neither exception messages, nor reprs of the sink and its config, contain the token,
    even when the server echoes it back."""
    receiver.script(Reply(401, f"bad token {TOKEN}".encode()), Drop(), retry_later(503))
    config = HttpSinkConfig(
        receiver.url, token=Secret(TOKEN), headers={"X-Extra": TOKEN}, timeout=2.0
    )
    sink = HttpSink(config)
    texts = [repr(sink), repr(config), str(config)]
    for _ in range(3):
        with pytest.raises((SinkRejected, SinkUnavailable)) as caught:
            sink.send(event_lines(1))
        texts += [str(caught.value), repr(caught.value), str(caught.value.args)]
    receiver.down()
    with pytest.raises(SinkUnavailable) as refused:
        sink.send(event_lines(1))
    texts.append(str(refused.value))
    assert all(TOKEN not in text for text in texts)
    assert "***" in texts[3]  # the echoed token was masked


def test_plain_http_only_to_loopback_unless_allowed() -> None:
    """A token must not cross the network in clear text by accident."""
    with pytest.raises(ConfigError, match="clear text"):
        HttpSinkConfig("http://siem.example.com/ingest", token=Secret(TOKEN))
    HttpSinkConfig("http://siem.example.com/ingest", allow_insecure=True)
    HttpSinkConfig("http://[::1]:8088/")
    HttpSinkConfig("https://siem.example.com/ingest")
    with pytest.raises(ConfigError):
        HttpSinkConfig("https://user:pw@siem.example.com/")
    with pytest.raises(ConfigError):
        HttpSinkConfig("https://siem.example.com/", preset="elastic")  # type: ignore[arg-type]


def test_verify_accepts_a_ca_file_path(tmp_path: Path) -> None:
    """verify may name a CA bundle; a missing one is reported when the sink is built."""
    with pytest.raises(ConfigError, match=r"missing\.pem"):
        HttpSink(HttpSinkConfig("https://siem.example.com/", verify=tmp_path / "missing.pem"))


def test_https_with_a_private_ca_file_and_an_untrusted_certificate(tmp_path: Path) -> None:
    """verify=<CA file> or ca_file trusts a private CA; a certificate that does not verify is
    permanent."""
    tls = self_signed(tmp_path / "tls")
    with HttpReceiver(tls=tls) as receiver:
        trusting = HttpSink(HttpSinkConfig(receiver.url, verify=tls.cert, timeout=5.0))
        trusting.send(event_lines(3))
        trusting.close()
        also_trusting = HttpSink(HttpSinkConfig(receiver.url, ca_file=tls.cert, timeout=5.0))
        also_trusting.send(event_lines(2, start=3))
        also_trusting.close()
        other = self_signed(tmp_path / "other", "other")
        doubting = HttpSink(HttpSinkConfig(receiver.url, verify=other.cert, timeout=5.0))
        with pytest.raises(SinkRejected, match="not trusted"):
            doubting.send(event_lines(1))
        doubting.close()
        assert receiver.accepted_lines() == event_lines(5)


def test_a_caller_supplied_client_is_used_and_left_open(receiver: HttpReceiver) -> None:
    """The seam: an httpx.Client passed in is used for requests and not closed by close()."""
    with httpx.Client() as client:
        sink = HttpSink(HttpSinkConfig(receiver.url), client)
        sink.send(event_lines(1))
        sink.close()
        assert not client.is_closed
    assert receiver.accepted_lines() == event_lines(1)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("-5", 0.0),
        ("Sun, 01 Nov 2026 00:01:00 GMT", 60.0),
        ("Sat, 31 Oct 2026 00:00:00 GMT", 0.0),  # in the past
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(
    header: str | None, expected: float | None
) -> None:
    """Retry-After is delay seconds or an HTTP date (RFC 9110 10.2.3)."""
    assert retry_after_seconds(header, datetime(2026, 11, 1, tzinfo=UTC)) == expected


# --- hostile answers ----------------------------------------------------------------------------


class RawServer:
    """Answers one POST on 127.0.0.1 with whatever ``answer`` writes to the socket; counts the
    bytes it managed to write and stops writing once the client hangs up."""

    def __init__(self, answer: Callable[[RawServer, socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.written = 0
        self.stop = threading.Event()
        self._answer = answer
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(10)
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += conn.recv(65536)
            with contextlib.suppress(OSError):  # the client hung up: what the tests want
                self._answer(self, conn)

    def write(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.written += len(data)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self._thread.join(10)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    made: list[RawServer] = []

    def make(answer: Callable[[RawServer, socket.socket], None]) -> RawServer:
        made.append(RawServer(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


def gzip_of_zeros(mib: int) -> bytes:
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + 15)
    zeros = bytes(1 << 20)
    return b"".join(deflate.compress(zeros) for _ in range(mib)) + deflate.flush()


BOMB = gzip_of_zeros(256)  # about 250 KiB that inflate to 256 MiB


def bomb(server: RawServer, conn: socket.socket) -> None:
    head = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % (len(BOMB) * 40)
    )
    server.write(conn, head)
    for _ in range(40):  # 10 MB as sent, 10 GiB inflated
        server.write(conn, BOMB)


def test_a_gzip_bomb_answer_is_read_no_further_than_64_kib(
    raw_server: Callable[..., RawServer],
) -> None:
    """The answer's body only feeds the error message: the sink reads 64 KiB of it as sent
    and inflates no more than 64 KiB, in a process whose peak memory is measured."""
    server = raw_server(bomb)
    script = (
        "import resource, sys\n"
        "from ingest.export.sinks import HttpSink, HttpSinkConfig, SinkUnavailable\n"
        "sink = HttpSink(HttpSinkConfig(url=sys.argv[1], timeout=5.0))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    sink.send([b'{}'])\n"
        "except SinkUnavailable as err:\n"
        "    print(err)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script, server.url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    message, growth_kib = done.stdout.splitlines()
    assert time.monotonic() - started < 10
    assert "answered HTTP 503" in message
    assert int(growth_kib) < 32 * 1024  # unbounded, it grew by 256 MiB a chunk
    server.close()
    print("bomb bytes the server wrote:", server.written)
    assert server.written < len(BOMB) * 40  # it could not send all of it


def drip_body(server: RawServer, conn: socket.socket) -> None:
    server.write(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    while not server.stop.wait(0.1):
        server.write(conn, b"x")


def drip_headers(server: RawServer, conn: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 1000:
        if server.stop.wait(0.1):
            return
        server.write(conn, bytes([byte]))


@pytest.mark.parametrize("answer", [drip_body, drip_headers])
def test_a_dripping_answer_ends_at_the_timeout_for_the_whole_request(
    raw_server: Callable[..., RawServer], answer: Callable[[RawServer, socket.socket], None]
) -> None:
    """httpx's timeout is per read; the sink's covers the whole request, answer included."""
    server = raw_server(answer)
    sink = HttpSink(HttpSinkConfig(url=server.url, timeout=1.0))
    started = time.monotonic()
    with pytest.raises(SinkUnavailable, match=r"did not answer within 1 s"):
        sink.send(event_lines(1))
    assert time.monotonic() - started < 1.6
    sink.close()


def test_a_dripping_body_ends_at_the_timeout_with_a_client_passed_in(
    raw_server: Callable[..., RawServer],
) -> None:
    """A client passed in has no deadline backend; the body is still cut between chunks."""
    server = raw_server(drip_body)
    with httpx.Client() as client:
        sink = HttpSink(HttpSinkConfig(url=server.url, timeout=1.0), http=client)
        started = time.monotonic()
        with pytest.raises(SinkUnavailable, match=r"did not answer within 1 s"):
            sink.send(event_lines(1))
        assert time.monotonic() - started < 1.6


def test_a_gzip_answer_that_is_not_gzip_is_unavailable_in_one_line(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    receiver.script(Reply(200, b"this is not gzip\n" * 4, (("Content-Encoding", "gzip"),)))
    with pytest.raises(SinkUnavailable, match="cannot be read: a gzip body") as caught:
        make_sink().send(event_lines(1))
    assert "\n" not in str(caught.value)
    assert receiver.requests[0].headers["accept-encoding"] == "identity"


def test_a_gzip_answer_is_still_read_for_its_error_message(
    receiver: HttpReceiver, make_sink: MakeSink
) -> None:
    body = zlib.compress(b'{"text":"Invalid token","code":4}', wbits=16 + 15)
    receiver.script(Reply(403, body, (("Content-Encoding", "gzip"),)))
    with pytest.raises(SinkRejected, match="Invalid token"):
        make_sink(preset="splunk-hec-raw").send(event_lines(1))


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0, 0.0, 3601.0])
def test_a_timeout_that_is_not_a_finite_number_of_seconds_is_refused(timeout: float) -> None:
    """nan passes "timeout <= 0" and inf is no socket timeout: both failed only mid-send."""
    with pytest.raises(ConfigError, match="timeout: must be"):
        HttpSinkConfig(url="http://127.0.0.1:9", timeout=timeout)

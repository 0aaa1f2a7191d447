"""SyslogSink: RFC 5424 over TCP/TLS into a real rsyslogd, and its at-least-once reconnects."""

from __future__ import annotations

import functools
import os
import select
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import ConfigError
from ingest.export.sinks import SinkRejected, SinkUnavailable, SyslogSink, SyslogSinkConfig
from tests.receivers import (
    Rsyslog,
    down_then_back,
    event_lines,
    free_port,
    self_signed,
    uuids,
    uuids_written,
)
from tests.receivers import (
    send_while as send_lines_while,
)


def syslog_sink(port: int, **options: Any) -> SyslogSink:
    return SyslogSink(SyslogSinkConfig("127.0.0.1", port, timeout=5.0, **options))


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    with Rsyslog(tmp_path / "rsyslog") as r:
        yield r


# --- message format (no receiver needed) ---------------------------------------------------------


def test_messages_follow_rfc_5424_with_octet_counting(clock: FakeClock) -> None:
    """<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG, framed as LEN SP MSG."""
    sink = SyslogSink(SyslogSinkConfig("127.0.0.1", 1, hostname="collector-1"), clock)
    line = orjson.dumps({"eventType": "user.session.start", "severity": "WARN", "x": "é"})
    frame = sink.frames([line])
    length, message = frame.split(b" ", 1)
    assert int(length) == len(message)
    assert (
        message
        == (
            f"<108>1 2026-11-01T12:00:00.000Z collector-1 oktaduck {os.getpid()} "
            "user.session.start - "
        ).encode()
        + line
    )


@pytest.mark.parametrize(
    ("event", "pri", "msgid"),
    [
        ({"eventType": "user.session.start", "severity": "INFO"}, 110, "user.session.start"),
        ({"eventType": "x", "severity": "ERROR"}, 107, "x"),
        ({"eventType": "x", "severity": "DEBUG"}, 111, "x"),
        (
            {"event": {"action": "app.oauth2.token.grant"}, "log": {"level": "warn"}},
            108,
            "app.oauth2.token.grant",
        ),
        (
            {"metadata": {"event_code": "policy.evaluate_sign_on"}, "severity": "High"},
            107,
            "policy.evaluate_sign_on",
        ),
        ({"eventType": "has space", "severity": "NOTALEVEL"}, 110, "-"),
        ({"eventType": "a" * 40}, 110, "a" * 32),
        ([1, 2], 110, "-"),
    ],
)
def test_severity_and_msgid_come_from_the_event(
    clock: FakeClock, event: object, pri: int, msgid: str
) -> None:
    """Okta, ECS and OCSF shapes give severity and MSGID; anything else gets 6 and '-'."""
    sink = SyslogSink(SyslogSinkConfig("127.0.0.1", 1, framing="newline", hostname="h"), clock)
    message = sink.frames([orjson.dumps(event)])
    assert message.endswith(b"\n")
    fields = message.split(b" ", 6)
    assert fields[0] == f"<{pri}>1".encode()
    assert fields[5].decode() == msgid


def test_configured_facility_severity_and_bom(clock: FakeClock) -> None:
    """A fixed severity overrides the event's; the BOM option puts EF BB BF before MSG."""
    config = SyslogSinkConfig("127.0.0.1", 1, facility=16, severity=5, bom=True, hostname="h")
    message = SyslogSink(config, clock).frames([b'{"severity":"ERROR"}'])
    assert message.split(b" ", 1)[1].startswith(b"<133>1 ")
    assert message.endswith(b" - \xef\xbb\xbf" + b'{"severity":"ERROR"}')


def test_newline_framing_refuses_a_line_with_a_raw_newline(clock: FakeClock) -> None:
    """LF framing would split such a line into two messages: the batch is rejected."""
    sink = SyslogSink(SyslogSinkConfig("127.0.0.1", 1, framing="newline"), clock)
    with pytest.raises(SinkRejected, match="line 0"):
        sink.frames([b'{"a":\n1}'])


def test_configuration_is_checked_without_the_network() -> None:
    """Out-of-range values raise ConfigError before any connection is tried."""
    bad_settings: tuple[dict[str, Any], ...] = (
        {"facility": 24},
        {"severity": 8},
        {"app_name": "two words"},
        {"framing": "rfc3164"},
        {"port": 70000},
        {"cert_file": Path("c.pem")},
    )
    for bad in bad_settings:
        with pytest.raises(ConfigError):
            SyslogSinkConfig("127.0.0.1", **bad)
    assert SyslogSinkConfig("h").effective_port == 514
    assert SyslogSinkConfig("h", tls=True).effective_port == 6514


# --- delivery to rsyslogd ------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["octet-counting", "newline"])
@pytest.mark.slow  # rsyslog
def test_a_thousand_lines_arrive_intact_in_rsyslog(rsyslog: Rsyslog, framing: str) -> None:
    """1000 JSON lines (non-ASCII included) come out of rsyslog byte for byte, in order."""
    lines = event_lines(1000, size=2500)
    sink = syslog_sink(rsyslog.port, framing=framing)
    for start in range(0, 1000, 250):
        sink.send(lines[start : start + 250])
    sink.close()
    received = rsyslog.wait_for_lines(1000)
    assert received == lines
    assert orjson.loads(received[0])["actor"]["displayName"] == "Zoë Ångström"


@pytest.mark.slow  # rsyslog
def test_rsyslog_down_between_batches_then_back(rsyslog: Rsyslog) -> None:
    """With the receiver gone the next batch raises; after it is back, resending delivers all."""
    down_then_back(syslog_sink(rsyslog.port), rsyslog)


def send_while(port: int, disrupt: Callable[[], None]) -> tuple[list[bytes], list[str]]:
    """50-line batches through a syslog sink (see receivers.send_while)."""
    sink = functools.partial(syslog_sink, port)
    return send_lines_while(sink, disrupt, batch=50, goals=(500, 1500, 2500))


@pytest.mark.slow  # rsyslog
def test_rsyslog_restarted_mid_stream_loses_nothing(rsyslog: Rsyslog) -> None:
    """A sender that resends on SinkUnavailable, while rsyslog restarts twice under it,
    delivers every line at least once, none cut or merged."""
    sent, failures = send_while(rsyslog.port, rsyslog.restart)
    received = rsyslog.wait_for_lines(len(sent))
    assert set(uuids(received)) == set(uuids(sent)), failures
    assert set(received) <= set(sent)  # no line cut or merged


@pytest.mark.slow  # rsyslog
def test_rsyslog_killed_mid_stream_loses_nothing(rsyslog: Rsyslog) -> None:
    """SIGKILL twice mid-stream: what rsyslog had unread is reset and resent with the tail,
    the last batch before a clean close is repeated; every line arrives."""

    def kill_and_start() -> None:
        rsyslog.kill()
        rsyslog.start()

    sent, failures = send_while(rsyslog.port, kill_and_start)
    received = rsyslog.wait_for_lines(len(sent))
    # a line rsyslogd was writing when killed may be torn (see uuids_written)
    assert uuids_written(received) == set(uuids(sent)), failures
    assert {line for line in received if line.endswith(b"}")} - set(sent) <= {
        line for line in received if line.count(b'"uuid"') > 1
    }


def test_nothing_listening_is_retryable() -> None:
    """A refused connection raises SinkUnavailable naming the address."""
    port = free_port()
    with pytest.raises(SinkUnavailable, match=f"127.0.0.1:{port}"):
        syslog_sink(port).send(event_lines(1))


# --- the reconnect rules, against a scripted TCP receiver ----------------------------------------


class TcpReceiver:
    """Accepts connections one at a time and keeps what each one received."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.received: list[bytes] = []

    def accept(self) -> socket.socket:
        self.listener.settimeout(5)
        conn, _ = self.listener.accept()
        self.connections.append(conn)
        self.received.append(b"")
        return conn

    def read(self, conn: socket.socket, count: int) -> None:
        index = self.connections.index(conn)
        conn.settimeout(5)
        while len(self.received[index]) < count:
            chunk = conn.recv(65536)
            assert chunk, "connection closed early"
            self.received[index] += chunk

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.listener.close()


@pytest.fixture
def tcp() -> Iterator[TcpReceiver]:
    receiver = TcpReceiver()
    yield receiver
    receiver.close()


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def peer_gone(sink: SyslogSink) -> None:
    """Wait until the receiver's close or reset has reached the sink's socket."""
    assert sink._sock is not None
    readable, _, _ = select.select([sink._sock], [], [], 5)
    assert readable, "the receiver's close did not arrive"


def test_a_clean_close_between_batches_repeats_only_the_last_batch(
    tcp: TcpReceiver, clock: FakeClock
) -> None:
    """A receiver that read everything and closed (FIN): the next batch goes on a new
    connection without an error. Every byte was read, but nothing shows the receiver alive
    after the last batch, so that one (and only that one) is repeated."""
    sink = SyslogSink(SyslogSinkConfig("127.0.0.1", tcp.port, timeout=5.0), clock)
    batches = [event_lines(5, start=5 * i) for i in range(3)]
    frames = [sink.frames(batch) for batch in batches]
    sink.send(batches[0])
    sink.send(batches[1])
    conn = tcp.accept()
    tcp.read(conn, len(frames[0]) + len(frames[1]))
    conn.close()
    peer_gone(sink)
    sink.send(batches[2])
    tcp.read(tcp.accept(), len(frames[1]) + len(frames[2]))
    sink.close()
    assert tcp.received == [frames[0] + frames[1], frames[1] + frames[2]]


def test_a_reset_between_batches_repeats_the_previous_batch(
    tcp: TcpReceiver, clock: FakeClock
) -> None:
    """A reset means the receiver may have thrown bytes away: the previous batch is written
    again, before the new one, on the new connection."""
    sink = SyslogSink(SyslogSinkConfig("127.0.0.1", tcp.port, timeout=5.0), clock)
    first, second = sink.frames(event_lines(5)), sink.frames(event_lines(5, start=5))
    sink.send(event_lines(5))
    conn = tcp.accept()
    _reset(conn)  # closed with unread bytes, as a crashing receiver would
    peer_gone(sink)
    sink.send(event_lines(5, start=5))
    tcp.read(tcp.accept(), len(first) + len(second))
    sink.close()
    assert tcp.received[1] == first + second


def test_a_reset_repeats_every_batch_the_receiver_may_not_have_read(
    tcp: TcpReceiver, clock: FakeClock
) -> None:
    """Batches acknowledged by the receiver's TCP but never read by it: when the reset shows,
    all of them go out again on the new connection, oldest first, before the new batch (not
    only the last one)."""
    sink = SyslogSink(SyslogSinkConfig("127.0.0.1", tcp.port, timeout=5.0), clock)
    batches = [event_lines(5, start=5 * i) for i in range(4)]
    frames = [sink.frames(batch) for batch in batches]
    for batch in batches[:3]:
        sink.send(batch)
    assert sink.unconfirmed == sum(map(len, frames[:3]))
    conn = tcp.accept()
    _reset(conn)  # three batches unread in its buffer
    peer_gone(sink)
    sink.send(batches[3])
    tcp.read(tcp.accept(), sum(map(len, frames)))
    sink.close()
    assert tcp.received[1] == b"".join(frames)


def test_a_reset_that_shows_mid_write_repeats_the_tail_on_the_resend(
    tcp: TcpReceiver, clock: FakeClock
) -> None:
    """The receiver resets while a large batch is being written: send raises, and the
    caller's resend carries the earlier unread batch again, then the large one, whole."""
    sink = SyslogSink(SyslogSinkConfig("127.0.0.1", tcp.port, timeout=5.0), clock)
    small, large = event_lines(5), event_lines(8000, size=1000, start=5)
    sink.send(small)
    conn = tcp.accept()
    first = sink.frames(small)

    def reset_once_the_large_batch_is_arriving() -> None:
        # Wait, without reading, until bytes of the large batch are in. Blocking mode: a socket
        # with a timeout is non-blocking underneath, and MSG_WAITALL would not wait.
        conn.settimeout(None)
        conn.recv(len(first) + 1, socket.MSG_PEEK | socket.MSG_WAITALL)
        _reset(conn)

    resetter = threading.Thread(target=reset_once_the_large_batch_is_arriving)
    resetter.start()
    with pytest.raises(SinkUnavailable, match="resend the batch"):
        sink.send(large)  # 8 MB: far more than the buffers hold, the reset hits mid-write
    resetter.join(5)
    assert sink.unconfirmed == len(first)
    expected = first + sink.frames(large)
    reader = threading.Thread(target=lambda: tcp.read(tcp.accept(), len(expected)))
    reader.start()
    sink.send(large)  # the caller's resend
    reader.join(10)
    sink.close()
    assert len(tcp.received[1]) == len(expected)
    assert tcp.received[1].startswith(first)
    assert tcp.received[1][len(first) :].endswith(large[-1])


def test_the_unconfirmed_tail_is_bounded(tcp: TcpReceiver, clock: FakeClock) -> None:
    """resend_bytes bounds what is kept: the oldest batches leave the tail first, while the
    rest still holds resend_bytes; a batch larger than the bound is kept whole."""
    config = SyslogSinkConfig("127.0.0.1", tcp.port, timeout=5.0, resend_bytes=5000)
    sink = SyslogSink(config, clock)
    for i in range(10):
        sink.send(event_lines(2, start=2 * i))  # about 1 KB each
    assert 5000 <= sink.unconfirmed < 6200
    large = event_lines(1, size=8000, start=100)
    sink.send(large)
    assert sink.unconfirmed >= 8000  # the newest batch, although past the bound
    sink.close()


def test_a_receiver_that_stops_reading_makes_send_time_out(
    tcp: TcpReceiver, clock: FakeClock
) -> None:
    """Bytes the receiver never acknowledges are not accepted: SinkUnavailable after timeout."""
    sink = SyslogSink(SyslogSinkConfig("127.0.0.1", tcp.port, timeout=0.5), clock)
    conn = None
    try:
        with pytest.raises(SinkUnavailable, match="resend the batch"):
            sink.send(event_lines(20_000, size=1000))  # far more than the socket buffers hold
    finally:
        conn = tcp.accept()
        sink.close()
    assert conn is not None


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def tls_rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    with Rsyslog(tmp_path / "rsyslog", tls=self_signed(tmp_path / "tls")) as r:
        yield r


@pytest.mark.slow  # rsyslog
def test_tls_delivers_to_rsyslog_with_a_verified_certificate(tls_rsyslog: Rsyslog) -> None:
    """RFC 5425: the sink verifies rsyslog's certificate against ca_file and delivers."""
    assert tls_rsyslog.tls is not None
    lines = event_lines(500)
    sink = syslog_sink(tls_rsyslog.port, tls=True, ca_file=tls_rsyslog.tls.cert)
    sink.send(lines[:250])
    sink.send(lines[250:])
    sink.close()
    assert tls_rsyslog.wait_for_lines(500) == lines


@pytest.mark.slow  # rsyslog
def test_tls_refuses_an_untrusted_certificate(tls_rsyslog: Rsyslog, tmp_path: Path) -> None:
    """A certificate not signed by ca_file is a permanent failure: SinkRejected."""
    other = self_signed(tmp_path / "other", "other")
    sink = syslog_sink(tls_rsyslog.port, tls=True, ca_file=other.cert)
    with pytest.raises(SinkRejected, match="not trusted"):
        sink.send(event_lines(1))


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, -1.0, 3601.0])
def test_a_timeout_that_socket_calls_cannot_take_is_a_config_error(timeout: float) -> None:
    """nan and inf passed the old `timeout <= 0` check and failed at the first send."""
    with pytest.raises(ConfigError, match="timeout: must be more than 0"):
        SyslogSinkConfig("127.0.0.1", 514, timeout=timeout)

"""RelpSink: syslog over RELP into a real rsyslogd (imrelp), and against scripted RELP servers."""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import ConfigError
from ingest.export.settings import parse_sink
from ingest.export.sinks import RelpSink, SinkRejected, SinkUnavailable
from ingest.export.sinks.relp import Frame, FrameReader, RelpProtocolError, _status, frame
from ingest.export.sinks.syslog import SyslogSinkConfig
from tests.helpers import Sim, run_cli
from tests.helpers.export import export_config, fill, relp_sink
from tests.receivers import (
    MakeRelpServer,
    Rsyslog,
    Script,
    Session,
    down_then_back,
    event_lines,
    free_port,
    relp_servers,
    self_signed,
    uuids,
    uuids_written,
)
from tests.receivers import (
    send_while as send_lines_while,
)


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    with Rsyslog(tmp_path / "rsyslog", relp=True) as r:
        yield r


# --- frames (no receiver needed) -----------------------------------------------------------------


def test_frames_are_written_and_read_as_librelp_does() -> None:
    """TXNR SP COMMAND SP DATALEN [SP DATA] LF; no data: no SP after DATALEN."""
    assert frame(7, b"syslog", b"<110>1 x") == b"7 syslog 8 <110>1 x\n"
    assert frame(9, b"close") == b"9 close 0\n"
    reader = FrameReader()
    stream = b"2 rsp 6 200 OK\n3 rsp 20 500 message too long\n0 serverclose 0\n"
    frames: list[Frame] = []
    for i in range(len(stream)):  # byte by byte: frames split anywhere are reassembled
        frames += reader.feed(stream[i : i + 1])
    assert frames == [
        Frame(2, b"rsp", b"200 OK"),
        Frame(3, b"rsp", b"500 message too long"),
        Frame(0, b"serverclose", b""),
    ]


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"1 rsp 999999 ",  # an answer too large to be one
        b"1 rsp 2 OKX",  # no trailing LF
        b"x" * 100,
        b"1 rsp 5\n",  # DATALEN without data
    ],
)
def test_anything_but_relp_frames_is_refused(garbage: bytes) -> None:
    with pytest.raises(RelpProtocolError):
        FrameReader().feed(garbage)


def test_relp_settings_are_checked_at_load(tmp_path: Path) -> None:
    """protocol = relp needs a port, takes window, and refuses TCP-only keys, naming them."""
    base = {"name": "r", "type": "syslog", "host": "127.0.0.1", "protocol": "relp"}
    spec = parse_sink({**base, "port": 2514, "window": 16}, "sinks[0]", tmp_path)
    sink = spec.build(FakeClock())
    assert isinstance(sink, RelpSink)
    assert sink.config.window == 16
    bad: list[tuple[dict[str, Any], str]] = [
        ({**base}, "port: required with protocol = relp"),
        ({**base, "port": 2514, "framing": "newline"}, r"sinks\[0\]\.framing: only with"),
        ({**base, "port": 2514, "resend_bytes": 1}, r"sinks\[0\]\.resend_bytes: only with"),
        ({**base, "port": 2514, "window": 0}, "window: 1 to 65536"),
        ({**base, "port": 2514, "protocol": "udp"}, "protocol: 'udp'"),
        ({**base, "protocol": "tcp", "window": 4}, r"sinks\[0\]\.window: only with"),
    ]
    for data, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_sink(data, "sinks[0]", tmp_path)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0, 0.0, 3601.0])
def test_a_timeout_that_is_not_a_finite_number_of_seconds_is_refused(timeout: float) -> None:
    """nan passes "timeout <= 0" and inf is no socket timeout: both failed only mid-send."""
    with pytest.raises(ConfigError, match="timeout: must be"):
        RelpSink(SyslogSinkConfig("127.0.0.1", 2514, protocol="relp", timeout=timeout))


def test_a_status_code_is_three_ascii_digits() -> None:
    assert _status(b"200 OK\nrelp_version=0") == (200, "200 OK")
    assert _status("²²² OK".encode()) == (None, "²²² OK")
    assert _status("٢٠٠ OK".encode())[0] is None  # Arabic-Indic digits


# --- delivery to rsyslogd (imrelp) --------------------------------------------------------------


@pytest.mark.slow  # rsyslog
def test_a_thousand_lines_arrive_intact_in_rsyslog(rsyslog: Rsyslog) -> None:
    """1000 JSON lines (non-ASCII included), in batches larger than the window, come out of
    rsyslog byte for byte, in order."""
    lines = event_lines(1000, size=2500)
    sink = relp_sink(rsyslog.port, window=64)
    for start in range(0, 1000, 250):
        sink.send(lines[start : start + 250])
    sink.close()
    assert rsyslog.wait_for_lines(1000) == lines


@pytest.mark.slow  # rsyslog
def test_rsyslog_down_between_batches_then_back(rsyslog: Rsyslog) -> None:
    """With the receiver gone the next batch raises; after it is back, resending delivers."""
    down_then_back(relp_sink(rsyslog.port), rsyslog)


def send_while(port: int, disrupt: Callable[[], None]) -> tuple[list[bytes], list[str]]:
    """200-line batches through a RELP sink with a window of 32 (see receivers.send_while)."""
    sink = functools.partial(relp_sink, port, window=32)
    return send_lines_while(sink, disrupt, batch=200, goals=(1000, 3000, 5000))


@pytest.mark.slow  # rsyslog
def test_rsyslog_restarted_mid_stream_loses_nothing(rsyslog: Rsyslog) -> None:
    """While rsyslog restarts twice under a sender that resends on SinkUnavailable, every
    line arrives, none cut or merged."""
    sent, failures = send_while(rsyslog.port, rsyslog.restart)
    received = rsyslog.wait_for_lines(len(sent))
    assert set(uuids(received)) == set(uuids(sent)), failures
    assert set(received) <= set(sent)  # no line cut or merged
    assert failures, "the restarts were not noticed: the test proved nothing"


@pytest.mark.slow  # rsyslog
def test_rsyslog_killed_mid_stream_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL twice mid-stream, with a receiver that answers only once a message is written
    (a direct queue): whatever was acknowledged is in the file, the rest is sent again."""
    with Rsyslog(tmp_path / "rsyslog", relp=True, direct=True) as receiver:

        def kill_and_start() -> None:
            receiver.kill()
            receiver.start()

        sent, failures = send_while(receiver.port, kill_and_start)
        received = receiver.wait_for_lines(len(sent))
    assert uuids_written(received) == set(uuids(sent)), failures  # torn lines: see there
    assert failures, "the kills were not noticed: the test proved nothing"


def test_nothing_listening_is_retryable() -> None:
    port = free_port()
    with pytest.raises(SinkUnavailable, match=f"127.0.0.1:{port}"):
        relp_sink(port).send(event_lines(1))


# --- scripted RELP servers -----------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[MakeRelpServer]:
    with relp_servers() as make:
        yield make


def payload(message: bytes) -> bytes:
    """The JSON line inside an RFC 5424 message (after the header and the nil SD)."""
    return message.split(b" - ", 1)[1]


def ack_all(session: Session) -> None:
    session.open()
    while True:
        got = session.next()
        if got.command == b"close":
            session.answer(got, b"")
            return
        session.answer(got)


def ack_then_vanish(count: int) -> Script:
    """Acknowledge ``count`` messages, then end the connection without another answer."""

    def script(session: Session) -> None:
        session.open()
        for _ in range(count):
            session.answer(session.next())
        session.conn.shutdown(socket.SHUT_WR)
        session.drain()

    return script


def test_a_batch_cut_off_mid_way_resends_only_what_was_not_acknowledged(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    """30 of 100 messages acknowledged, then the connection dies: send raises; the caller's
    resend opens a new session with the other 70 only, and the batch is then complete."""
    server = servers(ack_then_vanish(30), ack_all)
    sink = relp_sink(server.port, clock, window=10)
    batch = event_lines(100)
    with pytest.raises(SinkUnavailable, match="70 of 100 messages unacknowledged"):
        sink.send(batch)
    sink.send(batch)
    sink.close()
    server.done.wait(10)
    assert not server.errors
    first, second = server.sessions
    acknowledged = first.syslog_messages()[:30]
    resent = second.syslog_messages()
    assert len(resent) == 70
    assert [payload(m) for m in acknowledged + resent] == batch


def test_the_window_bounds_messages_in_flight(servers: MakeRelpServer, clock: FakeClock) -> None:
    """With window = 8, a server that answers nothing sees exactly 8 messages, then the
    sink gives up after its timeout without having counted any as delivered."""
    seen = threading.Event()

    def silent(session: Session) -> None:
        session.open()
        for _ in range(8):
            session.next()
        seen.set()
        with contextlib.suppress(TimeoutError):
            session.next()  # a ninth would arrive here

    server = servers(silent)
    sink = relp_sink(server.port, clock, window=8, timeout=0.5)
    with pytest.raises(SinkUnavailable, match=r"no RELP answer within 0\.5 s"):
        sink.send(event_lines(50))
    server.done.wait(10)
    assert seen.is_set()
    assert len(server.sessions[0].syslog_messages()) == 8


def refuse_third(session: Session) -> None:
    session.open()
    for i in range(3):
        got = session.next()
        session.answer(got, b"500 message too long" if i == 2 else b"200 OK")


def test_a_500_answer_is_a_rejection_naming_the_message(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    server = servers(refuse_third)
    sink = relp_sink(server.port, clock, window=1)
    with pytest.raises(SinkRejected, match="refused message 2 of the batch: '500 message too"):
        sink.send(event_lines(5))
    sink.close()


def serverclose_after(count: int, sent: threading.Event | None = None) -> Script:
    def script(session: Session) -> None:
        session.open()
        for _ in range(count):
            session.answer(session.next())
        session.conn.sendall(frame(0, b"serverclose"))
        if sent is not None:
            sent.set()
        session.drain()

    return script


def test_serverclose_mid_batch_is_retryable_and_between_batches_quiet(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    """serverclose while messages are in flight: SinkUnavailable. serverclose after a whole
    batch: the next batch opens a new session without an error."""
    idle_close = threading.Event()
    server = servers(serverclose_after(5), serverclose_after(5, idle_close), ack_all)
    sink = relp_sink(server.port, clock, window=1)
    with pytest.raises(SinkUnavailable, match="serverclose"):
        sink.send(event_lines(10))
    sink.send(event_lines(10))  # the five unacknowledged go on session 2
    assert idle_close.wait(5)  # then session 2 ends between batches
    sink.send(event_lines(3, start=10))  # no error: a new session
    sink.close()
    server.done.wait(10)
    assert not server.errors
    first, second, third = (s.syslog_messages() for s in server.sessions)
    assert len(first) == 6  # five acknowledged, the sixth answered by serverclose
    # Five resent; a sixth here means the next batch's first message raced the serverclose
    # and went again on the third session.
    assert [payload(m) for m in second[:5]] == event_lines(5, start=5)
    assert [payload(m) for m in third] == event_lines(3, start=10)


def garbage(session: Session) -> None:
    session.next()
    session.conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def test_a_server_that_is_not_relp_is_unavailable_not_a_crash(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    server = servers(garbage)
    with pytest.raises(SinkUnavailable, match=r"opening a RELP session .* failed"):
        relp_sink(server.port, clock).send(event_lines(1))


def no_syslog(session: Session) -> None:
    session.open(b"\nrelp_version=0\ncommands=somethingelse")


def test_a_server_that_does_not_offer_syslog_is_refused(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    server = servers(no_syslog)
    with pytest.raises(SinkRejected, match="does not take syslog"):
        relp_sink(server.port, clock).send(event_lines(1))


# --- TLS -----------------------------------------------------------------------------------------


@pytest.mark.slow  # rsyslog
def test_relp_over_tls_to_rsyslog(tmp_path: Path) -> None:
    """imrelp with tls="on": the sink verifies the certificate against ca_file, presents
    its own, and delivers."""
    tls = self_signed(tmp_path / "tls")
    with Rsyslog(tmp_path / "rsyslog", tls=tls, relp=True) as receiver:
        lines = event_lines(300)
        # imrelp asks for a client certificate: the receiver's own will do, it is its own CA
        sink = relp_sink(
            receiver.port, tls=True, ca_file=tls.cert, cert_file=tls.cert, key_file=tls.key
        )
        sink.send(lines[:150])
        sink.send(lines[150:])
        sink.close()
        assert receiver.wait_for_lines(300) == lines


# --- end to end: config check and the export command ---------------------------------------------


@pytest.mark.slow  # rsyslog
def test_export_over_relp_end_to_end_with_the_receiver_down_then_back(
    live_sim: Sim, tmp_path: Path, rsyslog: Rsyslog
) -> None:
    """``config check`` accepts a RELP sink; ``oktaduck export`` with rsyslog down fails
    without moving the cursor; once rsyslog is back every stored event arrives, and a
    one-off ``--to relp://`` export sends them all again."""
    db = tmp_path / "okta.duckdb"
    stored = fill(live_sim, db, count=300)
    sinks = (
        f'[[sinks]]\nname = "siem"\ntype = "syslog"\nprotocol = "relp"\nhost = "127.0.0.1"\n'
        f'port = {rsyslog.port}\nwindow = 32\nbatch_events = 100\nretry_for = "1s"\n'
        'timeout = 2.0\nformat = "raw"\n'
    )
    cfg = export_config(tmp_path, sinks, live_sim)
    check = run_cli("config", "check", "--config", str(cfg))
    assert check.returncode == 0, check.stderr
    rsyslog.stop()
    down = run_cli("export", "--config", str(cfg), "--sink", "siem")
    assert down.returncode != 0
    assert "Traceback" not in down.stderr
    assert "cannot connect to 127.0.0.1" in down.stderr, down.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT last_seq FROM export_cursors").fetchall() == [(0,)]
    rsyslog.start()
    up = run_cli("export", "--config", str(cfg), "--sink", "siem")
    assert up.returncode == 0, up.stderr
    received = rsyslog.wait_for_lines(len(stored))
    assert sorted(uuids(received)) == sorted(stored)
    # The one-off export speaks RELP too: every event a second time.
    once = run_cli("export", "--db", str(db), "--to", f"relp://127.0.0.1:{rsyslog.port}")
    assert once.returncode == 0, once.stderr
    received = rsyslog.wait_for_lines(2 * len(stored))
    assert sorted(uuids(received)) == sorted(stored * 2)

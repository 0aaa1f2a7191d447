"""Hostile RELP receivers: servers that drip, flood, lie, reset or speak something else. Each
must end the batch with a one-line error within the sink's timeout, with memory bounded, and
never count a message as delivered without its answer. (TCP receivers that reset under a
batch are in tests/test_sinks_syslog.py.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from ingest.base.clock import FakeClock
from ingest.export.sinks import SinkRejected, SinkUnavailable
from ingest.export.sinks.relp import frame
from tests.helpers.export import relp_sink
from tests.receivers import MakeRelpServer, Script, Session, event_lines, relp_servers


@pytest.fixture
def servers() -> Iterator[MakeRelpServer]:
    with relp_servers() as make:
        yield make


def drip(session: Session) -> None:
    """Answer the open, then send an answer one byte every 0.1 s, never finishing it."""
    session.open()
    session.next()
    for byte in b"2 rsp 6 200 O":
        session.conn.sendall(bytes([byte]))
        time.sleep(0.1)


def test_a_dripping_answer_ends_at_the_timeout_not_per_byte(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    """The timeout bounds waiting for a whole answer, not each read."""
    server = servers(drip)
    sink = relp_sink(server.port, clock, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SinkUnavailable, match=r"no RELP answer within 0\.5 s"):
        sink.send(event_lines(1))
    assert time.monotonic() - started < 1.2


def flood(session: Session) -> None:
    """Claim an answer of almost 1 GB to the open and start sending it."""
    session.next()
    session.conn.sendall(b"1 rsp 999999999 " + b"x" * 65536)


def test_an_answer_claiming_a_gigabyte_is_refused_before_it_is_read(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    server = servers(flood)
    with pytest.raises(SinkUnavailable, match="an answer of 999999999 bytes"):
        relp_sink(server.port, clock).send(event_lines(1))


def answers_the_wrong_transaction(session: Session) -> None:
    session.open()
    session.next()
    session.conn.sendall(frame(999, b"rsp", b"200 OK"))


def test_an_answer_to_a_transaction_never_sent_is_not_an_acknowledgement(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    server = servers(answers_the_wrong_transaction)
    with pytest.raises(SinkUnavailable, match="1 of 1 messages unacknowledged"):
        relp_sink(server.port, clock).send(event_lines(1))


def speaks_http(session: Session) -> None:
    session.next()
    session.conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def test_a_server_that_is_not_relp_gets_one_line(servers: MakeRelpServer, clock: FakeClock) -> None:
    server = servers(speaks_http)
    with pytest.raises(SinkUnavailable) as caught:
        relp_sink(server.port, clock).send(event_lines(1))
    assert "\n" not in str(caught.value)
    assert "opening a RELP session" in str(caught.value)


def control_characters_in_a_refusal(session: Session) -> None:
    session.open()
    session.answer(session.next(), b"500 no\x1b[31m\rway\nmore")


def test_a_refusal_text_is_cut_to_one_printable_line(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    """What a server says in a 500 reaches the error (and the log) as one printable line."""
    server = servers(control_characters_in_a_refusal)
    with pytest.raises(SinkRejected) as caught:
        relp_sink(server.port, clock).send(event_lines(1))
    message = str(caught.value)
    assert "\x1b" not in message and "\r" not in message and "\n" not in message
    assert "more" not in message


def reset_one(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    conn.close()


def test_a_port_that_resets_every_connection_is_retryable(clock: FakeClock) -> None:
    """A listener that accepts and resets at once: a clean SinkUnavailable each time."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    sink = relp_sink(listener.getsockname()[1], clock, timeout=1.0)
    try:
        for _ in range(2):
            thread = threading.Thread(target=reset_one, args=(listener,))
            thread.start()
            # the reset lands after the handshake, but a busy machine (parallel tests) may see
            # it before connect() has returned: either way one clean SinkUnavailable
            with pytest.raises(
                SinkUnavailable, match=r"opening a RELP session|cannot connect"
            ) as caught:
                sink.send(event_lines(1))
            thread.join(5)
            assert "\n" not in str(caught.value)
    finally:
        listener.close()


def chatter_instead_of_closing(stop: threading.Event) -> Script:
    """Acknowledge everything, but answer the ``close`` only with ``rsp`` frames for
    transactions never sent, one every 0.3 s, until the client hangs up."""

    def script(session: Session) -> None:
        session.open()
        while (got := session.next()).command != b"close":
            session.answer(got)
        txnr = 900_000
        while not stop.wait(0.3):
            txnr += 1
            session.conn.sendall(frame(txnr, b"rsp", b"200 OK"))

    return script


def test_close_ends_within_two_seconds_however_the_receiver_chatters(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    """The wait for the answer to ``close`` has one deadline; answers to other transactions
    do not extend it (a SIGTERM would otherwise never complete)."""
    stop = threading.Event()
    server = servers(chatter_instead_of_closing(stop))
    sink = relp_sink(server.port, clock, timeout=30.0)
    sink.send(event_lines(2))
    started = time.monotonic()
    try:
        sink.close()
        elapsed = time.monotonic() - started
    finally:
        stop.set()
    assert elapsed < 3.0
    assert server.sessions[0].frames[-1].command == b"close"


def silent_on_close(stop: threading.Event) -> Script:
    def script(session: Session) -> None:
        session.open()
        while (got := session.next()).command != b"close":
            session.answer(got)
        stop.wait(30)

    return script


def test_close_waits_two_seconds_not_the_timeout_for_a_silent_receiver(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    stop = threading.Event()
    server = servers(silent_on_close(stop))
    sink = relp_sink(server.port, clock, timeout=30.0)
    sink.send(event_lines(1))
    started = time.monotonic()
    try:
        sink.close()
        elapsed = time.monotonic() - started
    finally:
        stop.set()
    assert 1.5 < elapsed < 3.0


def superscript_status(session: Session) -> None:
    """Answer the message with a status of superscript digits, which str.isdigit() takes."""
    session.open()
    session.answer(session.next(), "²²² OK".encode())
    session.drain()


def test_a_status_of_non_ascii_digits_is_a_refusal_not_a_crash(
    servers: MakeRelpServer, clock: FakeClock
) -> None:
    server = servers(superscript_status)
    with pytest.raises(SinkRejected, match="refused message 0"):
        relp_sink(server.port, clock).send(event_lines(1))

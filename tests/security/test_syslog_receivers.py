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
from tests.receivers import MakeRelpServer, Session, event_lines, relp_servers


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

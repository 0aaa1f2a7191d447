"""Syslog over RELP (rsyslog's Reliable Event Logging Protocol): every message acknowledged.

A syslog sink with ``protocol = "relp"`` sends the same RFC 5424 messages as over TCP (see
:mod:`ingest.export.sinks.syslog`), each in its own RELP transaction, optionally over TLS. The
receiver answers every transaction (``rsp`` with ``200 OK``) once it has taken the message into
its queue, so ``send`` returns only when every message of the batch was acknowledged by the
receiving application, not merely by its TCP: the export cursor never moves past a message the
receiver did not confirm.

The protocol, as librelp speaks it: each frame is ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``.
A session starts with ``open`` (offers ``relp_version=0``, ``relp_software``,
``commands=syslog``), answered by ``rsp`` ``200 OK`` and the server's offers; then one
``syslog`` frame per message, transaction numbers counting up from 2 (1 is the ``open``) and
wrapping after 999,999,999 to 1; ``close`` ends it. The server may end a session on its own
with ``serverclose`` (transaction 0), for example when it shuts down.

Up to ``window`` messages (128 by default, as librelp) are in flight before the sink waits for
answers. When the connection breaks mid-batch, ``send`` raises ``SinkUnavailable`` and the
caller resends the batch; the sink remembers which messages of that batch were acknowledged
and sends only the others on the new connection, so a receiver restart mid-stream loses
nothing and repeats nothing it had confirmed. An answer other than 200 (RELP's ``500``) is a
refusal the same batch will meet again: ``SinkRejected`` with the receiver's text.

What "acknowledged" covers is the receiver's business: rsyslog answers once the message is in
its queue; give it a disk-assisted queue (or a direct one) if acknowledged messages must
survive its crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from ingest.base import logs
from ingest.base.clock import Clock
from ingest.base.errors import ConfigError, SinkRejected, SinkUnavailable
from ingest.export.sinks.syslog import SyslogSink, SyslogSinkConfig, read_waiting

TXNR_MAX = 999_999_999
MAX_ANSWER = 64 << 10  # a RELP answer is a status line and a few offers
MAX_TIMEOUT = 3600  # seconds; a socket timeout must be finite
SOFTWARE = "oktaduck"
OFFERS = f"relp_version=0\nrelp_software={SOFTWARE}\ncommands=syslog".encode()


class RelpProtocolError(Exception):
    """The peer sent something that is not a RELP frame (or not one we expect)."""


class SessionEnded(Exception):
    """The server ended the session (``serverclose``)."""


@dataclass(frozen=True)
class Frame:
    txnr: int
    command: bytes
    data: bytes


def frame(txnr: int, command: bytes, data: bytes = b"") -> bytes:
    """One RELP frame: ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``."""
    if data:
        return b"%d %s %d %s\n" % (txnr, command, len(data), data)
    return b"%d %s 0\n" % (txnr, command)


class FrameReader:
    """Splits the bytes a RELP peer sends into frames; refuses anything else."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while (found := self._next()) is not None:
            frames.append(found)
        return frames

    def _next(self) -> Frame | None:
        buffer = self._buffer
        header_end = -1
        spaces = 0
        for i, byte in enumerate(buffer[:64]):
            if byte == 0x20:
                spaces += 1
                if spaces == 3:
                    header_end = i
                    break
            elif byte == 0x0A and spaces == 2:
                header_end = i
                break
        if header_end < 0:
            if len(buffer) >= 64:
                raise RelpProtocolError("a frame header longer than 64 bytes")
            return None
        parts = bytes(buffer[:header_end]).split(b" ")
        if (
            len(parts) != 3
            or not parts[0].isdigit()
            or not parts[1].isalpha()
            or not parts[2].isdigit()
            or len(parts[0]) > 9
            or len(parts[2]) > 9
        ):
            raise RelpProtocolError("not a RELP frame header")
        txnr, command, length = int(parts[0]), parts[1], int(parts[2])
        if length > MAX_ANSWER:
            raise RelpProtocolError(f"an answer of {length} bytes")
        if buffer[header_end] == 0x0A:  # no data
            if length:
                raise RelpProtocolError("DATALEN without data")
            del buffer[: header_end + 1]
            return Frame(txnr, command, b"")
        end = header_end + 1 + length
        if len(buffer) < end + 1:
            return None
        if buffer[end] != 0x0A:
            raise RelpProtocolError("a frame without its trailing LF")
        data = bytes(buffer[header_end + 1 : end])
        del buffer[: end + 1]
        return Frame(txnr, command, data)


def _status(data: bytes) -> tuple[int | None, str]:
    """The code and text of an ``rsp``'s first line (``200 OK``)."""
    line = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    code, _, _ = line.partition(" ")
    text = "".join(c if c.isprintable() else "?" for c in line)[:200]
    # isascii: str.isdigit() also takes digits such as '²', which int() refuses
    numeric = code.isascii() and code.isdigit() and len(code) == 3
    return (int(code) if numeric else None), text


class RelpSink(SyslogSink):
    """Sends RFC 5424 messages as RELP transactions and waits for every acknowledgement."""

    def __init__(self, config: SyslogSinkConfig, clock: Clock | None = None) -> None:
        if not (math.isfinite(config.timeout) and 0 < config.timeout <= MAX_TIMEOUT):
            # nan passes "<= 0" and inf too, then settimeout refuses both mid-send
            raise ConfigError(
                f"timeout: must be a number of seconds above 0 and at most {MAX_TIMEOUT}"
            )
        super().__init__(config, clock)
        self._reader = FrameReader()
        self._txnr = 0
        # The last batch that failed part-way: its fingerprint and the messages acknowledged.
        self._partial: tuple[bytes, set[int]] | None = None

    def __repr__(self) -> str:
        return f"RelpSink(name={self.name!r}, to={self._where!r}, tls={self.config.tls})"

    @property
    def unconfirmed(self) -> int:
        """Nothing stays unconfirmed once ``send`` returned: every message was acknowledged."""
        return 0

    # --- the contract -------------------------------------------------------------------------

    def send(self, lines: Sequence[bytes]) -> None:
        if not lines:
            return
        key = _fingerprint(lines)
        done: set[int] = set()
        if self._partial is not None and self._partial[0] == key:
            done = self._partial[1]
        self._partial = (key, done)
        messages = self.messages(lines)
        todo = [i for i in range(len(messages)) if i not in done]
        if len(todo) < len(messages):
            logs.emit(
                "sink.relp_resume",
                sink=self.name,
                to=self._where,
                acknowledged=len(messages) - len(todo),
                remaining=len(todo),
            )
        kept_alive = self._sock is not None
        try:
            self._deliver(messages, todo, done)
        except (ConnectionError, SessionEnded) as err:
            if not kept_alive or len(messages) - len(done) < len(todo):
                self._fail(err, messages, done)
            # The session kept from the last batch had ended before it answered anything of
            # this one (a serverclose or close racing the first write): one new session, now.
            logs.emit("sink.relp_reconnect", sink=self.name, to=self._where, reason=str(err))
            self._drop()
            try:
                self._deliver(messages, [i for i in todo if i not in done], done)
            except (OSError, RelpProtocolError, SessionEnded) as again:
                self._fail(again, messages, done)
            except SinkRejected:
                self._drop()
                raise
        except (OSError, RelpProtocolError) as err:
            self._fail(err, messages, done)
        except SinkRejected:
            self._drop()
            raise
        self._partial = None

    def _fail(self, err: Exception, messages: list[bytes], done: set[int]) -> NoReturn:
        """Close the session and raise the retryable error for ``err``."""
        self._drop()
        unacknowledged = f"{len(messages) - len(done)} of {len(messages)} messages unacknowledged"
        if isinstance(err, SessionEnded):
            reason = f"{self._where} ended the RELP session ({err})"
        elif isinstance(err, RelpProtocolError):
            reason = f"{self._where} broke the RELP protocol ({err})"
        else:
            reason = f"RELP to {self._where} failed: {err}"
        raise SinkUnavailable(f"{self.name}: {reason}; {unacknowledged}") from None

    def flush(self) -> None:
        """Nothing is buffered: ``send`` returns once every message was acknowledged."""

    def close(self) -> None:
        """End the session politely (``close``, then wait briefly for its answer)."""
        sock = self._sock
        if sock is not None:
            # One deadline for the whole wait: frames answering something else do not extend it.
            deadline = time.monotonic() + min(self.config.timeout, 2.0)
            with contextlib.suppress(OSError, TimeoutError, RelpProtocolError):
                sock.settimeout(min(self.config.timeout, 2.0))
                txnr = self._next_txnr()
                sock.sendall(frame(txnr, b"close"))
                self._wait_for(
                    sock,
                    lambda f: f.txnr == txnr or f.command == b"serverclose",
                    deadline,
                )
        self._drop()

    # --- the session --------------------------------------------------------------------------

    def _deliver(self, messages: list[bytes], todo: list[int], done: set[int]) -> None:
        sock = self._session()
        window = self.config.window
        outstanding: dict[int, int] = {}  # txnr -> index in the batch
        position = 0
        while position < len(todo) or outstanding:
            chunk: list[bytes] = []
            while position < len(todo) and len(outstanding) < window:
                txnr = self._next_txnr()
                outstanding[txnr] = todo[position]
                chunk.append(frame(txnr, b"syslog", messages[todo[position]]))
                position += 1
            if chunk:
                sock.settimeout(self.config.timeout)
                sock.sendall(b"".join(chunk))
            for answer in self._receive(sock, time.monotonic() + self.config.timeout):
                if answer.command == b"serverclose":
                    raise SessionEnded("serverclose")
                if answer.command != b"rsp" or answer.txnr not in outstanding:
                    raise RelpProtocolError(
                        f"unexpected {answer.command.decode('ascii')} {answer.txnr}"
                    )
                code, text = _status(answer.data)
                index = outstanding.pop(answer.txnr)
                if code != 200:
                    raise SinkRejected(
                        f"{self.name}: {self._where} refused message {index} of the batch: {text!r}"
                    )
                done.add(index)

    def _session(self) -> socket.socket:
        """The open RELP session, or a new one (``open`` exchanged) when there is none."""
        if self._sock is not None:
            state = self._idle_state(self._sock)
            if state == "open":
                return self._sock
            logs.emit("sink.relp_reconnect", sink=self.name, to=self._where, reason=state)
            self._drop()
        sock = self._connect()
        self._sock = sock
        self._reader = FrameReader()
        self._txnr = 0
        try:
            txnr = self._next_txnr()
            sock.sendall(frame(txnr, b"open", OFFERS))
            answer = self._wait_for(sock, lambda f: True, time.monotonic() + self.config.timeout)
        except (OSError, TimeoutError, RelpProtocolError) as err:
            self._drop()
            raise SinkUnavailable(
                f"{self.name}: opening a RELP session with {self._where} failed: {err}"
            ) from None
        code, text = _status(answer.data)
        if answer.command != b"rsp" or answer.txnr != txnr or code != 200:
            self._drop()
            raise SinkRejected(
                f"{self.name}: {self._where} refused the RELP session: "
                f"{answer.command.decode('ascii')} {text!r}"
            )
        offers = answer.data.split(b"\n")[1:]
        commands = next((o for o in offers if o.startswith(b"commands=")), b"commands=syslog")
        if b"syslog" not in commands[len(b"commands=") :].split(b","):
            self._drop()
            raise SinkRejected(f"{self.name}: {self._where} does not take syslog over RELP")
        return sock

    def _next_txnr(self) -> int:
        self._txnr = self._txnr % TXNR_MAX + 1
        return self._txnr

    def _receive(self, sock: socket.socket, deadline: float) -> list[Frame]:
        """Read until at least one whole frame is in (none by ``deadline``, a
        ``time.monotonic()`` value: TimeoutError)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no RELP answer within {self.config.timeout:g} s")
            sock.settimeout(remaining)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"no RELP answer within {self.config.timeout:g} s") from None
            if not data:
                raise ConnectionError("connection closed")
            frames = self._reader.feed(data)
            if frames:
                return frames

    def _wait_for(
        self, sock: socket.socket, wanted: Callable[[Frame], bool], deadline: float
    ) -> Frame:
        """The first frame ``wanted`` takes; frames it ignores do not extend ``deadline``."""
        while True:
            for answer in self._receive(sock, deadline):
                if wanted(answer):
                    return answer

    def _idle_state(self, sock: socket.socket) -> str:
        """Between batches a RELP server sends nothing but ``serverclose``; look without
        blocking."""
        try:
            data = read_waiting(sock, self.config.timeout)
        except OSError:
            return "reset"
        if data is None:
            return "open"
        if not data:
            return "closed"
        try:
            frames = self._reader.feed(data)
        except RelpProtocolError:
            return "garbled"
        if any(f.command == b"serverclose" for f in frames):
            return "serverclose"
        return "unexpected answer" if frames else "open"


def _fingerprint(lines: Sequence[bytes]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for line in lines:
        digest.update(b"%d:" % len(line))
        digest.update(line)
    return digest.digest()

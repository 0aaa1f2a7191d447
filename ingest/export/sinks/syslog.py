"""Syslog over TCP (RFC 6587) or TLS (RFC 5425): one RFC 5424 message per NDJSON line.

Each line becomes ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG``:

- PRI = facility * 8 + severity. Facility 13 ("log audit") by default. Severity is the
  configured one, else read from the event (Okta's DEBUG/INFO/WARN/ERROR, ECS ``log.level``,
  OCSF's caption; see ``fields``), else 6 (informational).
- TIMESTAMP is when the batch is sent (UTC, milliseconds, ``Z``), the same for a whole batch;
  the event's own time is inside MSG.
- PROCID is this process's id; MSGID is the event type (``eventType`` or a mapping's name for
  it) when it is printable ASCII, cut to RFC 5424's 32 characters, else ``-``. Each line is
  parsed once to read type and severity (orjson, a few microseconds per line); a line that is
  not a JSON object gets ``-`` and the default severity.
- No structured data (``-``). MSG is the JSON line as UTF-8. RFC 5424 asks for a BOM in front
  of UTF-8 MSG, but receivers keep the BOM as part of the message, so a JSON parser on the
  other side would see three stray bytes before ``{``; JSON is UTF-8 by definition (RFC 8259),
  so the BOM is off unless ``bom`` is set.

Framing: ``octet-counting`` (``LEN SP MSG``, RFC 6587 3.4.1 and the only framing RFC 5425
allows) or ``newline`` (non-transparent, LF after each message, RFC 6587 3.4.2), which is safe
because an NDJSON line never holds a raw LF (a line that does is refused).

What "accepted" means over TCP/TLS: plain syslog has no application acknowledgement, so the
sink counts what TCP can tell. After writing a batch, ``send`` waits (Linux, ``wait_for_ack``)
until the receiver's TCP has acknowledged every byte (``SIOCOUTQ`` = 0), then checks that the
connection is still open; only then does it return, and only then does the export cursor move.
A failure at any step closes the connection and raises ``SinkUnavailable``, so the caller
resends the batch.

Bytes the receiver's TCP acknowledged can still sit unread in its socket buffer, and a receiver
that dies then resets the connection and loses them. So the sink keeps the batches it wrote as
an *unconfirmed tail* (the most recent ``resend_bytes``, 8 MiB by default, above what Linux lets
a receiver buffer), and when the connection ends writes part of it again on the next one,
before the new batch:

- a clean close (FIN) seen between batches: the receiver read every byte (a socket closed with
  unread bytes sends a reset instead), but may not have handled the last batch, the only one
  without a later write to show the receiver still alive after it: that batch is repeated;
- anything else (a reset between batches, a write or acknowledgement wait that fails, a
  timeout): the whole tail is repeated.

Delivery is therefore at-least-once: after a reset the receiver can see up to ``resend_bytes``
of messages twice (one batch after a clean close; each message carries the event's uuid), but
nothing it had not read is lost. What TCP cannot tell is a receiver that read older bytes and
then lost them itself (a crash before its queue reached disk); RELP (``protocol = "relp"``,
:mod:`ingest.export.sinks.relp`), with an acknowledgement per message, closes that.

Receivers limit message size (rsyslog: ``maxMessageSize``, 8 KiB by default); set it above the
longest line, or long events are cut.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import select
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

from ingest.base import logs
from ingest.base.clock import Clock, SystemClock, rfc3339_ms
from ingest.base.errors import ConfigError, SinkRejected, SinkUnavailable
from ingest.export.sinks.base import newline_in_line
from ingest.export.sinks.fields import event_type, syslog_severity

try:
    import fcntl
    import termios

    _OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)  # SIOCOUTQ on Linux
except ImportError:  # pragma: no cover - not POSIX
    _OUTQ = None

Framing = Literal["octet-counting", "newline"]
FRAMINGS: tuple[str, ...] = get_args(Framing)
Protocol = Literal["tcp", "relp"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
RESEND_BYTES = 8 << 20
RELP_WINDOW = 128
BOM = b"\xef\xbb\xbf"
DEFAULT_SEVERITY = 6
_NIL = "-"


_PRINTUSASCII = re.compile(r"[!-~]+")


def _printable(text: str, limit: int) -> bool:
    """RFC 5424 header fields: 1 to ``limit`` printable US-ASCII characters (33-126)."""
    return len(text) <= limit and _PRINTUSASCII.fullmatch(text) is not None


@functools.lru_cache(maxsize=4096)
def _msgid(kind: str | None) -> str:
    """The event type as an RFC 5424 MSGID (at most 32 printable ASCII characters), or ``-``."""
    if kind is None:
        return _NIL
    kind = kind[:32]
    return kind if _printable(kind, 32) else _NIL


@dataclass(frozen=True)
class SyslogSinkConfig:
    host: str
    port: int | None = None  # None: 6514 with TLS (RFC 5425), else 514
    framing: Framing = "octet-counting"
    tls: bool = False
    ca_file: Path | None = None  # None: the system's trusted CAs
    verify: bool = True
    cert_file: Path | None = None  # client certificate, for receivers that ask for one
    key_file: Path | None = None
    server_name: str | None = None  # None: host
    app_name: str = "oktaduck"
    hostname: str | None = None  # None: socket.gethostname()
    facility: int = 13
    severity: int | None = None  # None: from the event, else 6
    bom: bool = False
    timeout: float = 10.0
    wait_for_ack: bool = True
    protocol: Protocol = "tcp"
    resend_bytes: int = RESEND_BYTES  # TCP: how much of the unconfirmed tail is kept
    window: int = RELP_WINDOW  # RELP: messages sent and not yet acknowledged, at most
    name: str = "syslog"

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("host: required")
        if self.framing not in FRAMINGS:
            raise ConfigError(f"framing: {self.framing!r}: use one of {', '.join(FRAMINGS)}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol: {self.protocol!r}: use one of {', '.join(PROTOCOLS)}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"port: {self.port} is not a TCP port")
        if self.protocol == "relp" and self.port is None:
            raise ConfigError("port: required with protocol = relp (RELP has no set port)")
        if not 0 <= self.resend_bytes <= 1 << 30:
            raise ConfigError("resend_bytes: 0 to 1073741824")
        if not 1 <= self.window <= 65536:
            raise ConfigError("window: 1 to 65536 messages")
        if not 0 <= self.facility <= 23:
            raise ConfigError(f"facility: {self.facility} is not 0-23")
        if self.severity is not None and not 0 <= self.severity <= 7:
            raise ConfigError(f"severity: {self.severity} is not 0-7")
        if not _printable(self.app_name, 48):
            raise ConfigError("app_name: 1-48 printable ASCII characters, no spaces")
        if self.hostname is not None and not _printable(self.hostname, 255):
            raise ConfigError("hostname: 1-255 printable ASCII characters, no spaces")
        if not (math.isfinite(self.timeout) and 0 < self.timeout <= 3600):
            raise ConfigError("timeout: must be more than 0 and at most 3600 seconds")
        if (self.key_file or self.cert_file) and not self.tls:
            raise ConfigError("tls: cert_file and key_file need tls = true")

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 6514 if self.tls else 514


def _local_hostname() -> str:
    name = socket.gethostname()
    return name if _printable(name, 255) else _NIL


class SyslogSink:
    """Writes RFC 5424 messages over one TCP (or TLS) connection, reconnecting as needed."""

    def __init__(self, config: SyslogSinkConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self._clock = clock or SystemClock()
        self._context = self._tls_context() if config.tls else None
        self._sock: socket.socket | None = None
        # Batches written and acknowledged by the receiver's TCP, not yet known to be read.
        self._tail: deque[bytes] = deque()
        self._tail_bytes = 0
        self._resend = False  # the tail goes out again before the next batch
        hostname = config.hostname or _local_hostname()
        self._fixed = f" {hostname} {config.app_name} {os.getpid()} "
        self._where = f"{config.host}:{config.effective_port}"

    def __repr__(self) -> str:
        return f"SyslogSink(name={self.name!r}, to={self._where!r}, tls={self.config.tls})"

    # --- the contract -------------------------------------------------------------------------

    def send(self, lines: Sequence[bytes]) -> None:
        if not lines:
            return
        payload = self.frames(lines)
        sock = self._ready()
        if self._resend and self._tail:
            resent = len(self._tail)
            self._write(sock, b"".join(self._tail) + payload)
            logs.emit("sink.syslog_resent", sink=self.name, to=self._where, batches=resent)
        else:
            self._write(sock, payload)
        self._resend = False
        self._keep(payload)

    def _keep(self, payload: bytes) -> None:
        """Add a written batch to the unconfirmed tail, dropping the oldest batches while
        the rest still holds ``resend_bytes``: the newest batch always stays, however large."""
        self._tail.append(payload)
        self._tail_bytes += len(payload)
        while len(self._tail) > 1 and self._tail_bytes - len(self._tail[0]) >= (
            self.config.resend_bytes
        ):
            self._tail_bytes -= len(self._tail.popleft())

    @property
    def unconfirmed(self) -> int:
        """Bytes written that the receiver may not have read yet (re-sent after a reset)."""
        return self._tail_bytes

    def flush(self) -> None:
        """Nothing is buffered: ``send`` returns after the bytes were written and acknowledged."""

    def close(self) -> None:
        self._drop()

    # --- messages -----------------------------------------------------------------------------

    def frames(self, lines: Sequence[bytes]) -> bytes:
        """The batch as framed RFC 5424 messages, stamped with the current time."""
        messages = self.messages(lines)
        if self.config.framing == "octet-counting":
            return b"".join(b"%d %s" % (len(message), message) for message in messages)
        for index, line in enumerate(lines):
            if b"\n" in line:
                raise newline_in_line(index)
        return b"\n".join(messages) + b"\n"

    def messages(self, lines: Sequence[bytes]) -> list[bytes]:
        """One RFC 5424 message per line, without framing, stamped with the current time."""
        stamp = rfc3339_ms(self._clock.now())
        fixed = f" {stamp}{self._fixed}"
        facility = self.config.facility * 8
        bom = BOM if self.config.bom else b""
        messages: list[bytes] = []
        for line in lines:
            severity, msgid = self._read(line)
            messages.append(f"<{facility + severity}>1{fixed}{msgid} - ".encode() + bom + line)
        return messages

    def _read(self, line: bytes) -> tuple[int, str]:
        """Severity and MSGID of one line (defaults when it is not a JSON object)."""
        severity = self.config.severity
        try:
            event: Any = orjson.loads(line)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            return (DEFAULT_SEVERITY if severity is None else severity), _NIL
        if severity is None:
            found = syslog_severity(event)
            severity = DEFAULT_SEVERITY if found is None else found
        return severity, _msgid(event_type(event))

    # --- the connection -----------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        config = self.config
        try:
            context = ssl.create_default_context(
                cafile=str(config.ca_file) if config.ca_file else None
            )
            if not config.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if config.cert_file:
                context.load_cert_chain(
                    str(config.cert_file), str(config.key_file) if config.key_file else None
                )
        except (OSError, ssl.SSLError) as err:
            reason = getattr(err, "strerror", None) or err
            raise ConfigError(f"syslog TLS files: {reason}") from None
        return context

    def _connect(self) -> socket.socket:
        try:
            raw = socket.create_connection(
                (self.config.host, self.config.effective_port), timeout=self.config.timeout
            )
        except OSError as err:
            raise SinkUnavailable(
                f"{self.name}: cannot connect to {self._where}: {err.strerror or err}"
            ) from None
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if self._context is None:
            return raw
        try:
            return self._context.wrap_socket(
                raw, server_hostname=self.config.server_name or self.config.host
            )
        except ssl.SSLCertVerificationError as err:
            raw.close()
            raise SinkRejected(
                f"{self.name}: the certificate of {self._where} is not trusted: "
                f"{err.verify_message}"
            ) from None
        except OSError as err:
            raw.close()
            raise SinkUnavailable(
                f"{self.name}: TLS handshake with {self._where} failed: {err}"
            ) from None

    def _ready(self) -> socket.socket:
        """The open connection, or a new one when the old one was closed meanwhile."""
        if self._sock is not None:
            state = _peer_state(self._sock, self.config.timeout)
            if state == "open":
                return self._sock
            if state == "closed":  # FIN: every byte was read; the last batch maybe not handled
                while len(self._tail) > 1:
                    self._tail_bytes -= len(self._tail.popleft())
            self._resend = True
            logs.emit(
                "sink.syslog_reconnect",
                sink=self.name,
                to=self._where,
                reason=state,
                resend_bytes=self._tail_bytes,
            )
            self._drop()
        self._sock = self._connect()
        return self._sock

    def _write(self, sock: socket.socket, payload: bytes) -> None:
        try:
            sock.sendall(payload)
            if self.config.wait_for_ack:
                self._wait_acked(sock)
            state = _peer_state(sock, self.config.timeout)
        except (OSError, TimeoutError) as err:
            self._resend = True
            self._drop()
            raise SinkUnavailable(
                f"{self.name}: sending to {self._where} failed: {err}; resend the batch"
            ) from None
        if state != "open":
            self._resend = True
            self._drop()
            raise SinkUnavailable(
                f"{self.name}: {self._where} closed the connection ({state}) right after the "
                "batch; resend the batch"
            )

    def _wait_acked(self, sock: socket.socket) -> None:
        """Wait until the receiver's TCP acknowledged every byte written (Linux only).

        The kernel offers no event for acknowledgements, so the send queue is polled with
        short, growing pauses (on loopback or a LAN it is empty at the first or second look).
        Each pause is a ``select`` on the socket, so a close or reset ends the wait at once.
        """
        deadline = time.monotonic() + self.config.timeout
        pause = 0.0005
        while (pending := _unacknowledged(sock)) > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{pending} bytes not acknowledged within {self.config.timeout:g} s"
                )
            readable, _, _ = select.select([sock], [], [], min(pause, remaining))
            if readable and (state := _peer_state(sock, self.config.timeout)) != "open":
                raise ConnectionError(f"connection {state} with {pending} bytes unacknowledged")
            pause = min(pause * 2, 0.05)

    def _drop(self) -> None:
        """Close the connection; the unconfirmed tail stays for the next one."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _unacknowledged(sock: socket.socket) -> int:
    """Bytes written to ``sock`` that its peer has not acknowledged yet (0 when unknown)."""
    if _OUTQ is None:
        return 0
    try:
        answer = fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", answer)[0])


def _peer_state(sock: socket.socket, timeout: float) -> Literal["open", "closed", "reset"]:
    """Whether the peer closed (FIN), reset (RST) or kept the connection, without blocking.

    A syslog receiver sends nothing, so anything readable is the end of the connection or
    bytes to drop (TLS session tickets are handled inside ``recv``), up to 1 MiB a look.
    """
    try:
        for _ in range(16):
            data = read_waiting(sock, timeout)
            if data is None:
                return "open"
            if not data:
                return "closed"
    except OSError:
        return "reset"
    return "open"


def read_waiting(sock: socket.socket, timeout: float) -> bytes | None:
    """What the peer sent that can be read now, without blocking (64 KiB at most): None when
    nothing is waiting, b"" when the peer closed the connection (FIN). A reset, or a socket
    closed here, raises OSError. The socket waits ``timeout`` again afterwards.

    Shared by the syslog and RELP sinks, which look between batches at a connection that
    should be quiet.
    """
    pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except ValueError:  # closed: its fileno() is -1
        raise OSError("the socket is closed") from None
    if not readable and not pending:
        return None
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)

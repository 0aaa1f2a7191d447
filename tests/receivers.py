"""Real receivers for sink tests: an HTTP server with scripted failures and an rsyslogd runner.

``HttpReceiver`` is a stdlib HTTP server on 127.0.0.1 in a thread. Each request takes the next
behaviour from its script (then ``default``): ``Reply`` (any status, headers and body),
``Drop`` (read half the body, then reset the connection without answering) or ``Hang`` (read
the request, answer nothing until the client gives up). ``down()`` closes the listening socket
and every open connection so new connections are refused; ``up()`` listens again on the same
port. Every request is recorded (``requests``); ``accepted`` are those answered with 2xx.

With ``tls`` (a ``TlsFiles``) it serves HTTPS with that certificate.

``Rsyslog`` runs a real ``rsyslogd -n`` with a generated configuration in a temporary
directory: ``imtcp`` on a free 127.0.0.1 port (octet-counted and LF framing both on, optional
TLS with the OpenSSL driver), or with ``relp`` ``imrelp`` instead (RELP, optionally over TLS),
writing each message's MSG as one line to ``messages.log``. When rsyslogd (or, for TLS, its
OpenSSL driver or the openssl command; for RELP, its ``imrelp`` module) is missing, the tests
that need it fail with the install command when the ``CI`` environment variable is set, and are
skipped otherwise.

``RelpServer`` plays a RELP receiver from scripts, one per accepted connection: each script
reads frames (``Session.next``) and answers them as it likes, to test the RELP sink against
servers that fail on purpose.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from ingest.base.errors import SinkUnavailable
from ingest.export.sinks.base import Sink
from ingest.export.sinks.relp import Frame, FrameReader, frame

INSTALL = "apt-get update && apt-get install -y rsyslog rsyslog-openssl rsyslog-relp openssl"
HEC_SUCCESS = b'{"text":"Success","code":0}'


def missing(what: str) -> NoReturn:
    """Fail under CI (the dependency is part of the CI image), skip elsewhere."""
    message = f"{what} is not installed; install it with: {INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.02,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition()`` until true or ``timeout`` seconds pass (then fail with ``what``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = HEC_SUCCESS
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)


@dataclass(frozen=True)
class Drop:
    """Read half of the body, then reset the connection without answering."""


@dataclass(frozen=True)
class Hang:
    """Read the request and answer nothing for ``seconds`` (or until the receiver stops)."""

    seconds: float = 5.0


Behaviour = Reply | Drop | Hang


def retry_later(status: int = 429, retry_after: str | None = "2") -> Reply:
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Reply(status, b'{"text":"Server is busy","code":9}', headers)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    raw_body: bytes
    status: int | None = None  # None: dropped or left hanging

    @property
    def body(self) -> bytes:
        """The body as sent before any Content-Encoding."""
        if self.headers.get("content-encoding") == "gzip":
            return gzip.decompress(self.raw_body)
        return self.raw_body

    @property
    def lines(self) -> list[bytes]:
        return self.body.splitlines()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: HttpReceiver

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        # Headers and body go out in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK hold the body back about 40 ms per answer.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.receiver._connections.add(conn)
        self.receiver.connections_opened += 1
        return conn, address

    def shutdown_request(self, request: Any) -> None:
        self.receiver._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or hang up are part of the tests; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        receiver = self.server.receiver
        behaviour = receiver._next()
        length = int(self.headers.get("Content-Length", "0"))
        split = urlsplit(self.path)
        request = Request(
            "POST",
            split.path,
            dict(parse_qsl(split.query)),
            {k.lower(): v for k, v in self.headers.items()},
            b"",
        )
        if isinstance(behaviour, Drop):
            request.raw_body = self.rfile.read(length // 2)
            receiver._record(request)
            linger = struct.pack("ii", 1, 0)  # close with RST, like a crashed server
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.close_connection = True
            self.connection.close()
            return
        request.raw_body = self.rfile.read(length)
        if isinstance(behaviour, Hang):
            receiver._record(request)
            receiver._stopped.wait(behaviour.seconds)
            self.close_connection = True
            return
        request.status = behaviour.status
        receiver._record(request)  # before answering: the client may look as soon as it has one
        self.send_response(behaviour.status)
        for name, value in behaviour.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(behaviour.body)))
        self.end_headers()
        self.wfile.write(behaviour.body)


class HttpReceiver:
    def __init__(
        self, *script: Behaviour, default: Behaviour | None = None, tls: TlsFiles | None = None
    ) -> None:
        self.default = default or Reply()
        self.tls = tls
        self.requests: list[Request] = []
        self._script: deque[Behaviour] = deque(script)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._connections: set[socket.socket] = set()
        self.connections_opened = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def accepted(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def accepted_lines(self) -> list[bytes]:
        return [line for r in self.accepted for line in r.lines]

    def script(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def up(self) -> None:
        """Listen (again, on the same port once it has one)."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert, self.tls.key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Refuse connections: stop listening and cut every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def stop(self) -> None:
        self._stopped.set()
        self.down()

    def __enter__(self) -> HttpReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- rsyslog -------------------------------------------------------------------------------------


def rsyslogd_path() -> str | None:
    found = shutil.which("rsyslogd")
    if found:
        return found
    for candidate in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd"):
        if Path(candidate).exists():
            return candidate
    return None


def require_rsyslogd(tls: bool = False, relp: bool = False) -> str:
    path = rsyslogd_path()
    if path is None:
        missing("rsyslogd (Debian package rsyslog)")
    if relp and not _has_module("imrelp.so"):
        missing("rsyslog's RELP input (Debian package rsyslog-relp)")
    if tls and not relp and not _has_module("lmnsd_ossl.so"):
        missing("rsyslog's OpenSSL driver (Debian package rsyslog-openssl)")
    return path


def _has_module(name: str) -> bool:
    """Whether an rsyslog module is installed (Debian: /usr/lib/<triplet>/rsyslog)."""
    directories = [*Path("/usr/lib").glob("*/rsyslog"), Path("/usr/lib/rsyslog")]
    return any((d / name).exists() for d in directories)


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for localhost and 127.0.0.1; it is its own CA."""

    cert: Path
    key: Path


def self_signed(directory: Path, name: str = "receiver") -> TlsFiles:
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("the openssl command (Debian package openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / f"{name}.crt", directory / f"{name}.key")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(files.key),
            "-out",
            str(files.cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return files


@dataclass
class Rsyslog:
    """One rsyslogd in the foreground, receiving on 127.0.0.1:``port``."""

    workdir: Path
    tls: TlsFiles | None = None
    port: int = field(default_factory=free_port)
    max_message_size: str = "256k"
    relp: bool = False
    direct: bool = False  # RELP: the ruleset runs in imrelp's thread, so rsp 200 = written
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.binary = require_rsyslogd(tls=self.tls is not None, relp=self.relp)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.output = self.workdir / "messages.log"
        self.config = self.workdir / "rsyslog.conf"
        self.pidfile = self.workdir / "rsyslogd.pid"
        self.log = self.workdir / "rsyslogd.out"

    def _config_text(self) -> str:
        if self.relp:
            return self._relp_config_text()
        tls_global = tls_module = ""
        if self.tls is not None:
            tls_global = (
                f' defaultNetstreamDriver="ossl"'
                f' defaultNetstreamDriverCAFile="{self.tls.cert}"'
                f' defaultNetstreamDriverCertFile="{self.tls.cert}"'
                f' defaultNetstreamDriverKeyFile="{self.tls.key}"'
            )
            tls_module = (
                ' streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon"'
            )
        return (
            f'global(workDirectory="{self.workdir}" maxMessageSize="{self.max_message_size}"'
            f"{tls_global})\n"
            f'module(load="imtcp"{tls_module})\n'
            'template(name="msgonly" type="string" string="%msg%\\n")\n'
            'ruleset(name="sink") {\n'
            f'  action(type="omfile" file="{self.output}" template="msgonly")\n'
            "}\n"
            f'input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="sink"'
            ' supportOctetCountedFraming="on")\n'
        )

    def _relp_config_text(self) -> str:
        queue = ' queue.type="Direct"' if self.direct else ""
        tls = ""
        if self.tls is not None:
            tls = (
                f' tls="on" tls.authMode="certvalid" tls.cacert="{self.tls.cert}"'
                f' tls.mycert="{self.tls.cert}" tls.myprivkey="{self.tls.key}"'
            )
        return (
            f'global(workDirectory="{self.workdir}" maxMessageSize="{self.max_message_size}")\n'
            'module(load="imrelp")\n'
            'template(name="msgonly" type="string" string="%msg%\\n")\n'
            f'ruleset(name="sink"{queue}) {{\n'
            f'  action(type="omfile" file="{self.output}" template="msgonly")\n'
            "}\n"
            f'input(type="imrelp" address="127.0.0.1" port="{self.port}" ruleset="sink"{tls})\n'
        )

    def start(self, timeout: float = 10.0) -> None:
        self.config.write_text(self._config_text(), encoding="utf-8")
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "-n", "-i", str(self.pidfile), "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = self._proc

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"rsyslogd exited with {proc.returncode}:\n{self.log_text()}")
            try:
                if self.tls is None:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                else:  # a TLS listener may take connections before it completes handshakes
                    self._handshake()
            except OSError:
                return False
            return True

        wait_until(listening, timeout, f"rsyslogd on port {self.port}", detail=self.log_text)

    def _handshake(self) -> None:
        """A TLS handshake with the listener, presenting its own certificate (imrelp asks
        for one); OSError until it completes."""
        assert self.tls is not None
        context = ssl.create_default_context(cafile=str(self.tls.cert))
        context.load_cert_chain(str(self.tls.cert), str(self.tls.key))
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1"),
        ):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: no chance to drain a queue or close a session."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return "(no rsyslogd output)"

    def lines(self) -> list[bytes]:
        try:
            return self.output.read_bytes().splitlines()
        except FileNotFoundError:
            return []

    def wait_for_lines(self, count: int, timeout: float = 15.0) -> list[bytes]:
        """Poll the output file until it holds at least ``count`` lines (rsyslog writes
        asynchronously)."""
        wait_until(
            lambda: len(self.lines()) >= count,
            timeout,
            f"{count} lines from rsyslogd",
            interval=0.05,
            detail=lambda: f"{len(self.lines())} lines so far; rsyslogd said:\n{self.log_text()}",
        )
        return self.lines()

    def __enter__(self) -> Rsyslog:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- scripted RELP servers -------------------------------------------------------------------

Script = Callable[["Session"], None]


class Session:
    """One accepted connection of a scripted RELP server."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.reader = FrameReader()
        self.frames: list[Frame] = []
        self._ready: list[Frame] = []

    def next(self) -> Frame:
        while not self._ready:
            data = self.conn.recv(65536)
            if not data:
                raise ConnectionError("client closed")
            self._ready += self.reader.feed(data)
        got = self._ready.pop(0)
        self.frames.append(got)
        return got

    def answer(self, got: Frame, data: bytes = b"200 OK") -> None:
        self.conn.sendall(frame(got.txnr, b"rsp", data))

    def open(
        self, offers: bytes = b"\nrelp_version=0\nrelp_software=test\ncommands=syslog"
    ) -> None:
        got = self.next()
        assert got.command == b"open"
        self.answer(got, b"200 OK" + offers)

    def drain(self) -> None:
        """Read (and record) until the client closes, so closing here never resets."""
        with contextlib.suppress(ConnectionError, TimeoutError):
            while True:
                self.next()

    def syslog_messages(self) -> list[bytes]:
        return [f.data for f in self.frames if f.command == b"syslog"]


class RelpServer:
    """Runs one script per accepted connection, in order; records every session."""

    def __init__(self, *scripts: Script) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sessions: list[Session] = []
        self.errors: list[BaseException] = []
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(scripts,), daemon=True)
        self._thread.start()

    def _serve(self, scripts: tuple[Script, ...]) -> None:
        try:
            for script in scripts:
                self.listener.settimeout(10)
                conn, _ = self.listener.accept()
                conn.settimeout(10)
                session = Session(conn)
                self.sessions.append(session)
                try:
                    script(session)
                except ConnectionError:
                    pass
                finally:
                    conn.close()
        except BaseException as err:  # the test reads it
            self.errors.append(err)
        finally:
            self.done.set()

    def close(self) -> None:
        self.listener.close()
        self._thread.join(10)


MakeRelpServer = Callable[..., RelpServer]


@contextlib.contextmanager
def relp_servers() -> Iterator[MakeRelpServer]:
    """Make scripted RELP servers (``make(script, ...)``); all are closed at the end."""
    made: list[RelpServer] = []

    def make(*scripts: Script) -> RelpServer:
        made.append(RelpServer(*scripts))
        return made[-1]

    try:
        yield make
    finally:
        for server in made:
            server.close()


# --- lines to send -------------------------------------------------------------------------------


def event_lines(count: int, size: int = 400, start: int = 0) -> list[bytes]:
    """``count`` Okta-like events as NDJSON lines of about ``size`` bytes, with non-ASCII text."""
    lines = []
    for i in range(start, start + count):
        event = {
            "uuid": f"{i:08d}-0000-4000-8000-000000000000",
            "published": f"2026-11-01T12:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
            "eventType": "user.session.start",
            "severity": ("INFO", "WARN", "ERROR", "DEBUG")[i % 4],
            "displayMessage": 'Connexion réussie ✓ 日本語 — "quoted" \\ tab\t',
            "actor": {"alternateId": f"user{i}@example.com", "displayName": "Zoë Ångström"},
        }
        base = len(orjson.dumps(event))
        event["pad"] = "x" * max(0, size - base - 9)
        lines.append(orjson.dumps(event))
    return lines


def uuids(lines: list[bytes]) -> list[str]:
    return [orjson.loads(line)["uuid"] for line in lines]


def uuids_written(lines: list[bytes]) -> set[str]:
    """Every event uuid in a receiver's output file, torn lines included: a SIGKILL can cut
    the line rsyslogd was writing, and the restarted one appends after it, so such a line
    holds part of one event and all of the next. Only whole events count."""
    found = set()
    for line in lines:
        for start in [m.start() for m in re.finditer(rb'\{"uuid":', line)] or [0]:
            end = line.find(b'{"uuid":', start + 1)
            try:
                found.add(orjson.loads(line[start : end if end > 0 else None])["uuid"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # the torn part
    return found


# --- senders that ride out a receiver going away ------------------------------------------------


def down_then_back(sink: Sink, receiver: Rsyslog) -> None:
    """With the receiver stopped the next batch raises SinkUnavailable; once it is back, the
    caller's resend and one more batch deliver all 300 lines."""
    sink.send(event_lines(100))
    receiver.stop()
    with pytest.raises(SinkUnavailable):
        sink.send(event_lines(100, start=100))
    receiver.start()
    sink.send(event_lines(100, start=100))  # the caller's resend
    sink.send(event_lines(100, start=200))
    sink.close()
    received = receiver.wait_for_lines(300)
    assert set(uuids(received)) == set(uuids(event_lines(300)))


def _enough(sent: list[bytes], goal: int) -> bool:
    return len(sent) >= goal


def send_while(
    open_sink: Callable[[], Sink],
    disrupt: Callable[[], None],
    batch: int,
    goals: tuple[int, ...],
) -> tuple[list[bytes], list[str]]:
    """Send ``batch``-line batches from a sink of ``open_sink``, resending on SinkUnavailable
    as the export loop does, and call ``disrupt`` each time a goal of lines sent is reached
    (but the last). Returns the lines sent and the failures' messages."""
    sent: list[bytes] = []
    failures: list[str] = []
    stop = threading.Event()

    def sender() -> None:
        with contextlib.closing(open_sink()) as sink:
            while not stop.is_set():
                lines = event_lines(batch, size=1000, start=len(sent))
                deadline = time.monotonic() + 20
                while True:
                    try:
                        sink.send(lines)
                        break
                    except SinkUnavailable as err:
                        failures.append(str(err))
                        assert time.monotonic() < deadline, "the receiver did not come back"
                        time.sleep(0.01)  # the caller's backoff, kept short for the test
                sent.extend(lines)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        for goal in goals:
            wait_until(functools.partial(_enough, sent, goal), 20, f"{goal} lines sent")
            if goal != goals[-1]:
                disrupt()
    finally:
        stop.set()
        thread.join(30)
    return sent, failures

"""The daemon's local HTTP API: health, status, feeds and read-only SQL.

While the daemon runs it holds DuckDB's write lock, so other processes cannot open the file;
``oktaduck sql``, ``feed``, ``status`` and ``export`` then come here instead and print the same
output. The daemon writes the API's address and token to ``<database>.api.json`` (mode 0600)
so the CLI of the same user can find it.

Only its owner can use it:

- Every route needs ``Authorization: Bearer TOKEN``. The token is ``api.token_file`` /
  ``api.token_env`` when configured, otherwise one generated at first start into
  ``<database>.api.token`` (mode 0600 from creation, reused later). ``/healthz`` without a
  token answers only ``{"ok": true|false}``.
- A ``Host`` other than the listen address or ``localhost`` (421), any ``Origin`` (403) and a
  POST whose content type a web page could send without asking (415) are refused, so neither a
  cross-site request nor DNS rebinding reaches it from a browser.
- A request (line, headers and body) must arrive within ``api.request_timeout`` in all; bodies
  need a valid ``Content-Length`` of at most 1 MiB (no chunked uploads). Half-sent requests wait
  in one reader thread, not in a thread each, and at most ``api.workers`` requests run at once
  (a few more wait; past that: 503). ``/healthz`` has a worker of its own.
- Every refusal is a JSON body ``{"error": "..."}`` with a 4xx/5xx status.

Answers with rows are streamed (HTTP/1.1 chunked). A query that fails after the first rows
were sent, or whose answer passes ``api.max_result_bytes``, ends its body with a line
``{"error": "..."}`` and *no* terminating chunk: a generic client sees a truncated transfer,
``oktaduck`` prints the message. A query stops when its client goes away (a client that
shuts down its sending side while the query runs counts as gone: neither curl nor oktaduck
does that); a request cut short that way before it is complete gets a 400.

Routes (GET unless said otherwise; ``format`` = table, json, ndjson or csv; ``timeout``, e.g.
``30s``, shortens ``[query] timeout`` for one query):

- ``/healthz``: 200 when every source is healthy, 503 otherwise (with a token: why)
- ``/metrics``: Prometheus text format
- ``/api/status?format=``, ``/api/sinks?format=``: the rows of ``oktaduck status``
- ``/api/feeds``: the feeds with their parameters
- ``/api/feeds/NAME?format=&PARAM=VALUE...``: run a feed
- ``POST /api/sql?format=&timeout=`` with the SQL as an ``application/sql`` body (or
  ``application/json`` ``{"sql": "..."}``): one read-only SELECT
- ``/api/export?format=raw|normalized|ecs|ocsf&since=&until=&filter=&q=&fields=``: NDJSON
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import io
import logging
import os
import re
import resource
import secrets
import selectors
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.client import HTTPException, parse_headers
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import duckdb
import orjson

from ingest.base.clock import Clock
from ingest.base.errors import ConfigError, OktaduckError, QueryRefused
from ingest.base.logs import emit
from ingest.base.secrets import Secret
from ingest.base.tablewriter import FORMATS, write_rows
from ingest.base.timeparse import parse_duration, parse_time
from ingest.config import ApiConfig
from ingest.export.oneoff import Selection, select_lines
from ingest.feeds.feedfile import load_feeds
from ingest.feeds.run import run_feed
from ingest.mapping import CompiledMapping
from ingest.store.limits import QueryLimits
from ingest.store.query import (
    Cancel,
    ReadOnlyCursor,
    Result,
    run_user_query,
    sink_status,
    status,
)

MAX_BODY = 1 << 20
MAX_HEAD = 64 << 10  # request line and headers
QUEUED_PER_WORKER = 2  # requests that may wait for a busy worker, per worker
HEALTH_QUEUE = 16
MAX_BUFFERED = 32 << 20  # bytes of unfinished requests held, all connections together
MAX_PENDING = 256  # connections still sending their request (fewer under a low fd limit)
STOP_SECONDS = 5.0  # how long stop() waits for cancelled queries to end
WRITE_TIMEOUT = 30.0  # seconds one write to a client may block
DRAIN_SECONDS = 1.0  # after refusing a request, how long its unread body is discarded
POST_TYPES = ("application/sql", "application/json")
CONTENT_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "table": "text/plain; charset=utf-8",
}
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# An export through the API may take long (it is bounded by the stored range); it stops when
# its client hangs up.
EXPORT_LIMITS = QueryLimits(timeout=24 * 3600.0)

Health = Callable[[], tuple[bool, dict[str, Any]]]
_Run = Callable[[duckdb.DuckDBPyConnection, QueryLimits, Cancel], Result]


def announce_path(db: Path) -> Path:
    """Where the daemon writes its API address and token for the CLI."""
    return db.with_name(db.name + ".api.json")


def token_path(db: Path) -> Path:
    """Where the daemon keeps the API token it generated."""
    return db.with_name(db.name + ".api.token")


def api_token(config: ApiConfig, db: Path) -> Secret:
    """The configured token, or the one generated at first start next to ``db``."""
    configured = config.token()
    if configured is not None:
        return configured
    path = token_path(db)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    except OSError as err:
        raise ConfigError(f"cannot read the API token {path}: {err.strerror}") from None
    if text and _owner_only(path):
        return Secret(text, origin=f"file:{path}")
    token = secrets.token_urlsafe(32)
    _write_private(path, token.encode() + b"\n")
    return Secret(token, origin=f"file:{path}")


def _owner_only(path: Path) -> bool:
    """A token file anyone else could read (or a link) is replaced, not trusted."""
    st = path.lstat()
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only, never visible half-written or
    with wider permissions (a fresh file created 0600, then renamed over the old one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {err.strerror}") from None


class ApiServer:
    """Serve the API: one thread reads requests, a bounded pool answers them."""

    def __init__(
        self,
        config: ApiConfig,
        con: duckdb.DuckDBPyConnection,
        clock: Clock,
        health: Health,
        normalized: CompiledMapping,
        token: Secret,
        metrics: Callable[[], str] | None = None,
        limits: QueryLimits | None = None,
    ) -> None:
        self.config = config
        self.limits = limits or QueryLimits()
        self.con = con
        self.normalized = normalized
        self.clock = clock
        self.health = health
        self.metrics = metrics
        self.token = token
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        try:
            self.listener = socket.create_server(
                (config.host, config.port), family=family, backlog=64
            )
        except OSError as err:
            raise ConfigError(
                f"api.listen: cannot listen on {config.host}:{config.port}: {err.strerror}"
            ) from None
        self.listener.setblocking(False)
        self.hosts = _allowed_hosts(config.host, self.port)
        self.workers = ThreadPoolExecutor(config.workers, thread_name_prefix="api")
        self.health_worker = ThreadPoolExecutor(1, thread_name_prefix="api-health")
        self.queued = config.workers * (1 + QUEUED_PER_WORKER)
        self.busy = {"work": 0, "health": 0}
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)
        self.running: set[Callable[[], None]] = set()
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.max_pending = max(8, min(MAX_PENDING, soft // 4))
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.pending: dict[socket.socket, _Pending] = {}
        self.buffered = 0  # bytes of requests still arriving, all connections together
        self.stopping = False
        self.watcher = _Watcher()
        self.thread = threading.Thread(target=self._loop, name="api", daemon=True)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    @property
    def url(self) -> str:
        host = str(self.listener.getsockname()[0])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def start(self, announce: Path | None = None) -> None:
        self.thread.start()
        self.watcher.start()
        if announce is not None:
            doc = {"url": self.url, "token": self.token.reveal()}
            _write_private(announce, orjson.dumps(doc))
        emit("api.started", url=self.url)

    def stop(self, announce: Path | None = None) -> None:
        if announce is not None:
            announce.unlink(missing_ok=True)
        self.stopping = True
        self.wake_w.send(b"x")
        self.thread.join(5)
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.health_worker.shutdown(wait=False, cancel_futures=True)
        with self.idle:  # running queries are cancelled, so the store can close after this
            for cancel in list(self.running):
                cancel()
            self.idle.wait_for(lambda: not any(self.busy.values()), STOP_SECONDS)
        self.watcher.stop()
        self.wake_w.close()

    def running_query(self, cancel: Callable[[], None]) -> Callable[[], None]:
        """Register a running query's cancel for ``stop``; returns the unregistering call."""
        with self.lock:
            self.running.add(cancel)
            self.idle.notify_all()
        return lambda: self._done_query(cancel)

    def _done_query(self, cancel: Callable[[], None]) -> None:
        with self.lock:
            self.running.discard(cancel)

    def authorized(self, header: str | None) -> bool:
        """Whether ``header`` is ``Bearer <token>`` (compared in constant time)."""
        if header is None:
            return False
        expected = f"Bearer {self.token.reveal()}".encode()
        return hmac.compare_digest(header.encode("utf-8", "surrogateescape"), expected)

    # -- the reader thread: accepts, reads whole requests, hands them to a worker ----------

    def _loop(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self.stopping:
                timeout = self._expire()
                for key, _ in self.selector.select(timeout):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._client(key.fileobj)  # type: ignore[arg-type]
        finally:
            for sock in list(self.pending):
                self._forget(sock)
            self.selector.close()
            self.listener.close()
            self.wake_r.close()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.wake_r.recv(4096)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # out of file descriptors: make room, try again later
                if err.errno in (errno.EMFILE, errno.ENFILE) and self.pending:
                    self._forget(min(self.pending, key=lambda s: self.pending[s].started))
                return
            if len(self.pending) >= self.max_pending:  # the oldest unfinished request goes
                self._forget(min(self.pending, key=lambda s: self.pending[s].started))
            sock.setblocking(False)
            now = time.monotonic()
            self.pending[sock] = _Pending(now, now + self.config.request_timeout)
            self.selector.register(sock, selectors.EVENT_READ, "client")

    def _expire(self) -> float:
        """Answer 408 to requests past their deadline; the seconds until the next one."""
        now = time.monotonic()
        nearest = 1.0
        for sock, p in list(self.pending.items()):
            if p.deadline <= now:
                if p.draining:
                    self._forget(sock)
                else:
                    self._refuse(sock, 408, "the request was not sent in time")
            else:
                nearest = min(nearest, p.deadline - now)
        return max(nearest, 0.01)

    def _client(self, sock: socket.socket) -> None:
        """Whatever one connection sends, the reader thread goes on for the others."""
        try:
            self._readable(sock)
        except Exception as err:
            emit("api.failed", logging.ERROR, error=f"{type(err).__name__}: {err}")
            self._forget(sock)

    def _readable(self, sock: socket.socket) -> None:
        p = self.pending[sock]
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if p.buffer and not p.draining:  # half-closed mid-request: it can still read
                self._refuse(sock, 400, "the request ended before it was complete")
            else:
                self._forget(sock)
            return
        if p.draining:
            p.buffer_size += len(data)
            if p.buffer_size > MAX_BODY:
                self._forget(sock)
            return
        p.buffer += data
        self.buffered += len(data)
        if self.buffered > MAX_BUFFERED:  # many large bodies at once: this one waits
            self._refuse(sock, 503, "the API is busy; try again shortly", retry_after=True)
            return
        try:
            request = p.parse()
        except _Refused as refused:
            self._refuse(sock, refused.status, str(refused))
            return
        if request is not None:
            self._dispatch(sock, request)
        elif p.continue_due:
            p.continue_due = False
            with contextlib.suppress(OSError):
                sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _dispatch(self, sock: socket.socket, request: _Request) -> None:
        lane = "health" if request.path == "/healthz" else "work"
        limit = HEALTH_QUEUE if lane == "health" else self.queued
        with self.lock:
            full = self.busy[lane] >= limit
            if not full:
                self.busy[lane] += 1
        if full:
            self._refuse(sock, 503, "the API is busy; try again shortly", retry_after=True)
            return
        self.selector.unregister(sock)
        self._release(self.pending.pop(sock))
        pool = self.health_worker if lane == "health" else self.workers
        try:
            pool.submit(self._serve, sock, request, lane)
        except RuntimeError:  # shutting down
            sock.close()

    def _serve(self, sock: socket.socket, request: _Request, lane: str) -> None:
        try:
            sock.setblocking(True)
            sock.settimeout(WRITE_TIMEOUT)
            _Handler(sock, request, self)
        except OSError:
            pass  # the client went away
        except Exception as err:
            emit("api.failed", logging.ERROR, error=f"{type(err).__name__}: {err}")
        finally:
            with self.lock:
                self.busy[lane] -= 1
                self.idle.notify_all()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            sock.close()

    def _refuse(
        self, sock: socket.socket, status: int, message: str, *, retry_after: bool = False
    ) -> None:
        """Answer from the reader thread, then discard what the client still sends for a
        moment, so it reads the answer instead of a reset connection."""
        extra = b"Retry-After: 1\r\n" if retry_after else b""
        sock_data = _response_head(status, "application/json", extra)
        body = orjson.dumps({"error": message}) + b"\n"
        sock_data += b"Content-Length: %d\r\n\r\n" % len(body) + body
        emit("api.refused", status=status, error=message)
        try:
            sock.send(sock_data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._forget(sock)
            return
        p = self.pending[sock]
        self._release(p)
        p.draining = True
        p.buffer_size = 0
        p.deadline = time.monotonic() + DRAIN_SECONDS

    def _release(self, p: _Pending) -> None:
        self.buffered -= len(p.buffer)
        p.buffer = b""

    def _forget(self, sock: socket.socket) -> None:
        p = self.pending.pop(sock, None)
        if p is not None:
            self._release(p)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)
        sock.close()


def _target_path(target: str) -> str:
    """The path of a request target, for routing and logs; never raises."""
    try:
        return urlsplit(target).path
    except ValueError:  # e.g. "//[x": not a URL, routed nowhere
        return target.split("?", 1)[0]


def _allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The ``Host`` values a request may carry; None (any) on a wildcard address, where the
    token alone guards the API."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        return None
    shown = f"[{host}]" if ":" in host else host
    names = {shown.lower(), "localhost"}
    return frozenset({*names, *(f"{n}:{port}" for n in names)})


def _response_head(status: int, content_type: str, extra: bytes = b"") -> bytes:
    phrase = HTTPStatus(status).phrase.encode()
    return (
        b"HTTP/1.1 %d %s\r\nServer: oktaduck\r\nConnection: close\r\n"
        b"Content-Type: %s\r\nCache-Control: no-store\r\n%s"
    ) % (status, phrase, content_type.encode(), extra)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Request:
    def __init__(self, raw: bytes, path: str) -> None:
        self.raw = raw
        self.path = path


class _Pending:
    """A connection whose request has not fully arrived."""

    def __init__(self, started: float, deadline: float) -> None:
        self.started = started
        self.deadline = deadline
        self.buffer = b""
        self.buffer_size = 0
        self.draining = False
        self.head_end = -1
        self.length = 0
        self.continue_due = False  # the client waits for "100 Continue" before its body

    def parse(self) -> _Request | None:
        """The whole request once it is in, None while it is still coming."""
        if self.head_end < 0:
            end = _HEAD_END.search(self.buffer, 0, MAX_HEAD + 4)
            if end is None:
                if len(self.buffer) > MAX_HEAD:
                    raise _Refused(431, "request line and headers are larger than 64 KiB")
                return None
            self.head_end = end.end()
            if not self.buffer[: end.start()].split(b"\n", 1)[0].strip():
                raise _Refused(400, "the request line is empty")
            self.length, expects = _body_length(self.buffer[: end.start()])
            self.continue_due = expects and len(self.buffer) < self.head_end + self.length
        if len(self.buffer) < self.head_end + self.length:
            return None
        line = self.buffer.split(b"\n", 1)[0].split()
        target = line[1].decode("latin-1") if len(line) > 1 else ""
        return _Request(self.buffer[: self.head_end + self.length], _target_path(target))


def _body_length(head: bytes) -> tuple[int, bool]:
    """The body's length from the headers, and whether the client expects "100 Continue"
    before sending it; refuses what the API does not accept."""
    lines = head.split(b"\n", 1)
    method = lines[0].split(b" ", 1)[0]
    try:
        headers = parse_headers(io.BytesIO(lines[1] + b"\r\n\r\n" if len(lines) > 1 else b"\r\n"))
    except (HTTPException, ValueError):
        raise _Refused(431, "too many or malformed headers") from None
    if headers.get_all("Transfer-Encoding"):
        raise _Refused(411, "chunked request bodies are not accepted; send Content-Length")
    values = headers.get_all("Content-Length") or []
    if not values:
        if method == b"POST":
            raise _Refused(411, "a POST needs a Content-Length header")
        return 0, False
    texts = {v.strip() for value in values for v in value.split(",")}
    if len(texts) != 1:
        raise _Refused(400, "conflicting Content-Length headers")
    (text,) = texts
    if not re.fullmatch(r"[0-9]{1,19}", text):
        raise _Refused(400, f"Content-Length must be a number of bytes, got {text[:40]!r}")
    length = int(text)
    if length > MAX_BODY:
        raise _Refused(413, "request body larger than 1 MiB")
    expects = (headers.get("Expect") or "").strip().lower() == "100-continue"
    return length, expects and length > 0


class _Watcher:
    """One thread noticing clients that hang up while their query runs."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="api-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.running = False
        self.wake_w.send(b"x")
        self.thread.join(5)
        self.wake_w.close()

    def watch(self, sock: socket.socket, gone: Callable[[], None]) -> None:
        with self.lock:
            self.selector.register(sock, selectors.EVENT_READ, gone)
        self.wake_w.send(b"x")

    def unwatch(self, sock: socket.socket) -> None:
        with self.lock, contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)

    def _loop(self) -> None:
        try:
            while self.running:
                for key, _ in self.selector.select(1.0):
                    if key.data is None:
                        with contextlib.suppress(BlockingIOError):
                            self.wake_r.recv(4096)
                        continue
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    self.unwatch(sock)
                    try:
                        hung_up = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                    except BlockingIOError:
                        hung_up = False
                    except OSError:
                        hung_up = True
                    if hung_up:
                        try:
                            key.data()
                        except Exception as err:  # the watcher goes on for the others
                            emit("api.failed", logging.ERROR, error=f"{type(err).__name__}: {err}")
        finally:
            self.selector.close()
            self.wake_r.close()


class _ResultTooLarge(OktaduckError):
    pass


class _Unsupported(OktaduckError):
    pass


class _Chunked:
    """The body as HTTP/1.1 chunks, text in, at most ``cap`` bytes (then _ResultTooLarge)."""

    def __init__(self, sock: socket.socket, cap: int | None) -> None:
        self.sock = sock
        self.cap = cap
        self.sent = 0
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= 1 << 16:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.parts:
            data = "".join(self.parts).encode("utf-8")
            self.parts.clear()
            self.size = 0
            self.send(data)

    def send(self, data: bytes) -> None:
        if not data:
            return
        if self.cap is not None and self.sent + len(data) > self.cap:
            whole = data.rfind(b"\n", 0, self.cap - self.sent) + 1  # the lines that fit
            if whole:
                self.sent += whole
                self.sock.sendall(b"%x\r\n%s\r\n" % (whole, data[:whole]))
            raise _ResultTooLarge(
                f"the answer is larger than api.max_result_bytes ({self.cap} bytes); "
                "narrow the query (fewer columns, a LIMIT, a shorter time range)"
            )
        self.sent += len(data)
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def end(self) -> None:
        self.flush()
        self.sock.sendall(b"0\r\n\r\n")

    def fail(self, message: str) -> None:
        """End the body with an error line and no final chunk: the transfer is incomplete."""
        self.parts.clear()
        line = b"\n" + orjson.dumps({"error": message}) + b"\n"
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(line), line))


class _SocketWriter(io.RawIOBase):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.sendall(data)
        return len(data)


class _Handler(BaseHTTPRequestHandler):
    server_version = "oktaduck"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def __init__(self, sock: socket.socket, request: _Request, api: ApiServer) -> None:
        self.api = api
        self.raw = request.raw
        self.sock = sock
        self.started = False
        super().__init__(sock, ("", 0), None)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.sock
        self.rfile = io.BytesIO(self.raw)
        self.wfile = _SocketWriter(self.sock)  # type: ignore[assignment]

    def finish(self) -> None:
        pass

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_expect_100(self) -> bool:
        return True  # the reader thread said "100 Continue" when the body was due

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = _target_path(getattr(self, "path", ""))
        emit("api.request", path=path[:200], status=int(code) if str(code).isdigit() else code)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every refusal, including the standard library's own, as JSON."""
        self.close_connection = True
        if self.started:
            return
        self.request_version = "HTTP/1.1"  # headers even for a request that was not HTTP
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send(code, {"error": message or phrase})

    def send_response(self, code: int, message: str | None = None) -> None:
        self.started = True
        super().send_response(code, message)
        self.send_header("Connection", "close")
        self.send_header("Cache-Control", "no-store")

    def do_GET(self) -> None:
        self._guarded("GET")

    def do_POST(self) -> None:
        self._guarded("POST")

    def _guarded(self, method: str) -> None:
        try:
            self._dispatch(method)
        except QueryRefused as err:
            self.send_error(403, str(err))
        except _Unsupported as err:
            self.send_error(415, str(err))
        except OktaduckError as err:
            self.send_error(400, str(err))
        except OSError:
            raise  # the client went away
        except Exception as err:
            emit(
                "api.failed",
                logging.ERROR,
                path=_target_path(self.path)[:200],
                error=f"{type(err).__name__}: {err}",
            )
            self.send_error(500, "internal error; the daemon's log says more")

    def _refusal(self, method: str) -> tuple[int, str] | None:
        hosts = self.api.hosts
        host = (self.headers.get("Host") or "").strip().lower()
        if not host:
            return 400, "a Host header is required"
        if hosts is not None and host not in hosts:
            return 421, "this API answers only to its own address or localhost"
        if self.headers.get("Origin") is not None:
            return 403, "requests from web pages (with an Origin header) are refused"
        if self.headers.get("Sec-Fetch-Site") not in (None, "none", "same-origin"):
            return 403, "requests from web pages are refused"
        return None

    def _dispatch(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
        except ValueError:
            raise ConfigError("the request target is not a valid URL") from None
        refusal = self._refusal(method)
        if refusal is not None:
            self.send_error(*refusal)
            return
        authorized = self.api.authorized(self.headers.get("Authorization"))
        if url.path == "/healthz" and method == "GET":
            ok, details = self.api.health()
            self._send(200 if ok else 503, details if authorized else {"ok": ok})
            return
        if not authorized:
            self.send_response(401)
            body = orjson.dumps({"error": "missing or wrong API token"}) + b"\n"
            self.send_header("WWW-Authenticate", 'Bearer realm="oktaduck"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        try:
            query = dict(parse_qsl(url.query, keep_blank_values=True, max_num_fields=100))
        except ValueError:
            raise ConfigError("too many query parameters") from None
        timeout = query.pop("timeout", None)  # the CLI's --timeout: at most the daemon's
        if url.path == "/metrics" and method == "GET" and self.api.metrics is not None:
            text = self.api.metrics().encode()
            self._send_bytes(200, text, "text/plain; version=0.0.4; charset=utf-8")
        elif url.path == "/api/status" and method == "GET":
            now = self.api.clock.now()
            self._query(lambda con, lim, c: status(con, now, lim, cancel=c), query, timeout)
        elif url.path == "/api/sinks" and method == "GET":
            now = self.api.clock.now()
            self._query(lambda con, lim, c: sink_status(con, now, lim, cancel=c), query, timeout)
        elif url.path == "/api/feeds" and method == "GET":
            self._send(200, _feed_list())
        elif url.path.startswith("/api/feeds/") and method == "GET":
            name = url.path.removeprefix("/api/feeds/")
            fmt = query.pop("format", "json")
            now = self.api.clock.now()
            self._query(
                lambda con, lim, c: run_feed(con, name, query, now, lim, cancel=c),
                {"format": fmt},
                timeout,
            )
        elif url.path == "/api/export" and method == "GET":
            self._export(query)
        elif url.path == "/api/sql" and method == "POST":
            sql = self._sql()
            self._query(lambda con, lim, c: run_user_query(con, sql, lim, cancel=c), query, timeout)
        elif url.path in ("/api/sql", "/healthz", "/metrics", "/api/status", "/api/export"):
            self.send_error(405, f"{method} is not allowed on {url.path}")
        else:
            self.send_error(404, f"no route {method} {url.path[:200]}")

    def _sql(self) -> str:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind not in POST_TYPES:
            raise _Unsupported(f"send the SQL as {' or '.join(POST_TYPES)}, not {kind!r}")
        body = self.rfile.read()
        if kind == "application/json":
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise ConfigError("the body is not JSON") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("sql"), str):
                raise ConfigError('expected a JSON body {"sql": "SELECT ..."}')
            return str(doc["sql"])
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("the SQL is not UTF-8") from None

    def _query(self, run: _Run, query: dict[str, str], timeout: str | None) -> None:
        """Run a query (on a read-only cursor of its own, within the query limits), stream its
        rows, and cancel it if the client hangs up meanwhile."""
        fmt = query.get("format", "json")
        if fmt not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}")
        cancel = Cancel()
        gone = threading.Event()
        finished = threading.Event()

        def hang_up() -> None:
            if finished.is_set():  # the answer was complete: nothing to cancel
                return
            gone.set()
            emit("api.query_cancelled", path=_target_path(self.path), reason="client gone")
            cancel.cancel()

        watcher = self.api.watcher
        watcher.watch(self.sock, hang_up)
        done = self.api.running_query(cancel.cancel)
        try:
            try:
                result = run(self.api.con, _limits(timeout, self.api.limits), cancel)
            except OktaduckError:
                if gone.is_set():
                    return
                raise
            try:
                self._stream(result, fmt, gone)
            finally:
                result.close()
        finally:
            finished.set()
            done()
            watcher.unwatch(self.sock)

    def _stream(self, result: Result, fmt: str, gone: threading.Event) -> None:
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES[fmt])
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        out = _Chunked(self.sock, self.api.config.max_result_bytes)
        try:
            write_rows(result.columns, result.rows, fmt, out, json_columns=result.json_columns)
            out.end()
        except OktaduckError as err:
            if not gone.is_set():
                result.cancel()
                emit("api.query_failed", path=_target_path(self.path), error=str(err))
                out.fail(str(err))

    def _export(self, query: dict[str, str]) -> None:
        """Formatted NDJSON of a time range (for ``oktaduck export`` while the daemon runs)."""
        now = self.api.clock.now()
        try:
            fields = orjson.loads(query["fields"]) if query.get("fields") else None
        except orjson.JSONDecodeError:
            raise ConfigError("fields: expected a JSON object of fields to add") from None
        if fields is not None and not isinstance(fields, dict):
            raise ConfigError("fields: expected a JSON object of fields to add")
        try:
            since = parse_time(query.get("since", "7d"), now, "since")
            until = parse_time(query.get("until", "now"), now, "until")
        except (ValueError, OverflowError):
            raise ConfigError("since/until: a time out of range") from None
        selection = Selection(
            format=query.get("format", "raw"),
            since=since,
            until=until,
            filter=query.get("filter") or None,
            q=query.get("q") or None,
            fields=fields,
        )
        reader = ReadOnlyCursor(self.api.con, EXPORT_LIMITS)
        self.api.watcher.watch(self.sock, reader.cancel)
        done = self.api.running_query(reader.cancel)
        try:
            batches = select_lines(reader.cursor, selection, self.api.normalized)
            first = next(batches, [])  # errors (bad filter, bad format) surface before headers
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPES["ndjson"])
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            out = _Chunked(self.sock, None)
            try:
                for lines in _chain(first, batches):
                    if lines:
                        out.send(b"\n".join(lines) + b"\n")
                out.end()
            except OktaduckError as err:
                out.fail(str(err))
            except duckdb.Error as err:
                out.fail(str(reader.error(err)))
        except duckdb.Error as err:
            raise reader.error(err) from None
        finally:
            done()
            self.api.watcher.unwatch(self.sock)
            reader.close()

    def _send(self, status: int, body: Any) -> None:
        self._send_bytes(status, orjson.dumps(body) + b"\n", "application/json")

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _limits(timeout: str | None, daemon: QueryLimits) -> QueryLimits:
    """The daemon's limits, or a shorter ``timeout`` a request asks for."""
    if timeout is None:
        return daemon
    seconds = parse_duration(timeout, "timeout").total_seconds()
    if seconds <= 0:
        raise ConfigError("timeout: must be longer than 0s")
    return QueryLimits(timeout=min(seconds, daemon.timeout))


def _chain(first: list[bytes], rest: Iterator[list[bytes]]) -> Iterator[list[bytes]]:
    yield first
    yield from rest


def _feed_list() -> list[dict[str, Any]]:
    return [
        {
            "name": feed.name,
            "title": feed.title,
            "description": feed.description,
            "params": [
                {"name": p.name, "type": p.type, "default": p.default, "doc": p.doc}
                for p in feed.all_params
            ],
        }
        for feed in load_feeds().values()
    ]

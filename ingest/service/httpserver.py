"""A small HTTP/1.1 server that holds up against its clients, and knows nothing of routes.

One thread reads requests, a bounded pool answers them:

- A request (line, headers and body) must arrive within ``request_timeout`` in all; bodies
  need a valid ``Content-Length`` of at most 1 MiB (no chunked uploads). Half-sent requests wait
  in one reader thread, not in a thread each, and at most ``workers`` requests run at once (a
  few more wait; past that: 503). The health path has a worker of its own.
- The reader thread holds at most ``MAX_PENDING`` unfinished requests and ``MAX_BUFFERED``
  bytes of them; past that the oldest goes, or the newest is told to try again (503).
- A ``Host`` other than the listen address or ``localhost`` (421) and any ``Origin`` (403) are
  refused (``httpanswer.RequestHandler.refusal``), so no browser reaches the server by DNS
  rebinding or from another site.
- Every refusal is a JSON body ``{"error": "..."}`` with a 4xx/5xx status.
- A worker's answer may be streamed (``httpanswer.Chunked``, with an optional cap), and a
  ``httpanswer.Watcher`` notices a client that hangs up while its answer is being made.

This module reads requests and hands them out; ``httpanswer`` holds what a worker answers
with. ``HttpServer.handle`` answers one complete request on a worker thread; a subclass says
how (``ingest.service.api`` does, with a ``RequestHandler`` subclass holding its routes).
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import re
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.client import HTTPException, parse_headers

import orjson

from ingest.base.errors import ConfigError
from ingest.base.logs import emit
from ingest.service.httpanswer import Request, Watcher, target_path

MAX_BODY = 1 << 20
MAX_HEAD = 64 << 10  # request line and headers
QUEUED_PER_WORKER = 2  # requests that may wait for a busy worker, per worker
HEALTH_QUEUE = 16
MAX_BUFFERED = 32 << 20  # bytes of unfinished requests held, all connections together
MAX_PENDING = 256  # connections still sending their request (fewer under a low fd limit)
STOP_SECONDS = 5.0  # how long stop() waits for cancelled queries to end
WRITE_TIMEOUT = 30.0  # seconds one write to a client may block
DRAIN_SECONDS = 1.0  # after refusing a request, how long its unread body is discarded
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class HttpServer:
    """Serve HTTP: one thread reads requests, a bounded pool answers them (``handle``).

    ``setting`` names the listen address in the one-line error when it cannot be bound;
    ``health_path`` is the path served by a worker of its own, so a busy pool does not make
    the service look dead."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        workers: int,
        request_timeout: float,
        health_path: str,
        setting: str,
    ) -> None:
        self.request_timeout = request_timeout
        self.health_path = health_path
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.listener = socket.create_server((host, port), family=family, backlog=64)
        except OSError as err:
            raise ConfigError(
                f"{setting}: cannot listen on {host}:{port}: {err.strerror}"
            ) from None
        self.listener.setblocking(False)
        self.hosts = allowed_hosts(host, self.port)
        self.workers = ThreadPoolExecutor(workers, thread_name_prefix="api")
        self.health_worker = ThreadPoolExecutor(1, thread_name_prefix="api-health")
        self.queued = workers * (1 + QUEUED_PER_WORKER)
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
        self.watcher = Watcher()
        self.thread = threading.Thread(target=self._loop, name="api", daemon=True)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    @property
    def url(self) -> str:
        host = str(self.listener.getsockname()[0])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def handle(self, sock: socket.socket, request: Request) -> None:
        """Answer one complete request on ``sock`` (a worker thread; blocking, with a write
        timeout). The server closes the connection afterwards."""
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()
        self.watcher.start()

    def stop(self) -> None:
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
            self.pending[sock] = _Pending(now, now + self.request_timeout)
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

    def _dispatch(self, sock: socket.socket, request: Request) -> None:
        lane = "health" if request.path == self.health_path else "work"
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

    def _serve(self, sock: socket.socket, request: Request, lane: str) -> None:
        try:
            sock.setblocking(True)
            sock.settimeout(WRITE_TIMEOUT)
            self.handle(sock, request)
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
        sock_data = response_head(status, "application/json", extra)
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


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The ``Host`` values a request may carry; None (any) on a wildcard address, where the
    token alone guards the API."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        return None
    shown = f"[{host}]" if ":" in host else host
    names = {shown.lower(), "localhost"}
    return frozenset({*names, *(f"{n}:{port}" for n in names)})


def response_head(status: int, content_type: str, extra: bytes = b"") -> bytes:
    phrase = HTTPStatus(status).phrase.encode()
    return (
        b"HTTP/1.1 %d %s\r\nServer: oktaduck\r\nConnection: close\r\n"
        b"Content-Type: %s\r\nCache-Control: no-store\r\n%s"
    ) % (status, phrase, content_type.encode(), extra)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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

    def parse(self) -> Request | None:
        """The whole request once it is in, None while it is still coming."""
        if self.head_end < 0:
            end = _HEAD_END.search(self.buffer, 0, MAX_HEAD + 4)
            if end is None:
                if len(self.buffer) > MAX_HEAD:
                    raise _Refused(431, "request line and headers are larger than 64 KiB")
                return None
            self.head_end = end.end()
            # as the handler reads it: Latin-1 text split on whitespace, which for Python's
            # str includes \xa0, \x85 and \x1c-\x1f (a line of those alone got no answer)
            if not self.buffer[: end.start()].split(b"\n", 1)[0].decode("latin-1").split():
                raise _Refused(400, "the request line is empty")
            self.length, expects = _body_length(self.buffer[: end.start()])
            self.continue_due = expects and len(self.buffer) < self.head_end + self.length
        if len(self.buffer) < self.head_end + self.length:
            return None
        line = self.buffer.split(b"\n", 1)[0].split()
        target = line[1].decode("latin-1") if len(line) > 1 else ""
        return Request(self.buffer[: self.head_end + self.length], target_path(target))


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

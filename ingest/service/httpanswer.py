"""Answering one request of ``ingest.service.httpserver``: the request as the reader thread
read it, a handler that refuses in JSON, chunked bodies with a cap, and the watcher that
notices a client hanging up while its answer is being made.

Nothing here knows a route: ``ingest.service.api`` subclasses ``RequestHandler`` with its own.
"""

from __future__ import annotations

import contextlib
import io
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import orjson

from ingest.base.errors import ResultTooLarge
from ingest.base.logs import emit


def target_path(target: str) -> str:
    """The path of a request target, for routing and logs; never raises."""
    try:
        return urlsplit(target).path
    except ValueError:  # e.g. "//[x": not a URL, routed nowhere
        return target.split("?", 1)[0]


class Request:
    """A whole request as it arrived (line, headers, body) and its path, for choosing a lane."""

    def __init__(self, raw: bytes, path: str) -> None:
        self.raw = raw
        self.path = path


class Watcher:
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
                    try:
                        # The request was read whole: bytes after it (a stray CRLF, a
                        # pipelined request) are dropped and the watch goes on.
                        hung_up = sock.recv(1 << 16, socket.MSG_DONTWAIT) == b""
                    except BlockingIOError:
                        hung_up = False
                    except OSError:
                        hung_up = True
                    if hung_up:
                        self.unwatch(sock)
                        try:
                            key.data()
                        except Exception as err:  # the watcher goes on for the others
                            emit("api.failed", logging.ERROR, error=f"{type(err).__name__}: {err}")
        finally:
            self.selector.close()
            self.wake_r.close()


class Chunked:
    """The body as HTTP/1.1 chunks, text in, at most ``cap`` bytes (then ``ResultTooLarge``
    with ``too_large`` as its message, after the whole lines that fit)."""

    def __init__(self, sock: socket.socket, cap: int | None, too_large: str = "") -> None:
        self.sock = sock
        self.cap = cap
        self.too_large = too_large
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
            raise ResultTooLarge(self.too_large)
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


class SocketWriter(io.RawIOBase):
    """A blocking socket as the handler's ``wfile``: every write is sent whole."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.sendall(data)
        return len(data)


class RequestHandler(BaseHTTPRequestHandler):
    """One request, read whole by the reader thread, answered on a worker: refusals as JSON,
    ``Connection: close`` and ``Cache-Control: no-store`` on every answer, one ``api.request``
    log line. A subclass defines ``do_GET``/``do_POST`` and checks ``refusal()`` first."""

    server_version = "oktaduck"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def __init__(self, sock: socket.socket, request: Request, hosts: frozenset[str] | None) -> None:
        self.hosts = hosts
        self.raw = request.raw
        self.sock = sock
        self.started = False
        super().__init__(sock, ("", 0), None)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.sock
        self.rfile = io.BytesIO(self.raw)
        self.wfile = SocketWriter(self.sock)  # type: ignore[assignment]

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
        path = target_path(getattr(self, "path", ""))
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
        self.send_json(code, {"error": message or phrase})

    def send_response(self, code: int, message: str | None = None) -> None:
        self.started = True
        super().send_response(code, message)
        self.send_header("Connection", "close")
        self.send_header("Cache-Control", "no-store")

    def refusal(self) -> tuple[int, str] | None:
        """The status and message for a request no browser may make, None for the others."""
        hosts = self.hosts
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

    def send_json(self, status: int, body: Any) -> None:
        self.send_bytes(status, orjson.dumps(body) + b"\n", "application/json")

    def send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

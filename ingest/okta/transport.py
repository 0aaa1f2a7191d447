"""An HTTP transport whose requests end at a deadline, or at once when a stop is asked for.

httpx's timeouts are per operation: ``read=60`` allows 60 s between two bytes, so a server
that drips one byte a second keeps a request alive for ever, and a stop request (SIGTERM)
would wait for it. Here the source's ``timeout`` is the time for the WHOLE request: connect,
TLS handshake, sending it, the headers and the body.

How: httpcore does all its socket work through a network backend, and httpx's transport
builds its connection pool on one. :class:`DeadlineBackend` wraps the standard synchronous
backend. The request in progress on the current thread is described by a :func:`deadline`
context (the ``OktaClient`` opens one around each request, body included); every socket
operation in it gets ``min(its own timeout, time left)``, and a read waits in slices of at
most :data:`SLICE` seconds, checking the stop event between slices. So a drip in the
headers or in the body ends at the deadline with a timeout, and a stop ends the request
within a fraction of a second with :class:`RequestAbandoned`. A read that times out has
consumed nothing (for TLS, the partial record stays in the TLS layer), so resuming it after
a slice is safe. Writes and connects are not sliced (a write that timed out may have sent
part of its buffer): they only get the time left, which for a GET is plenty.

A watchdog thread that closes the socket would do the same, but it races with the pool
reusing the connection, and costs a thread per client. Outside a ``deadline`` context the
backend behaves exactly as httpcore's own.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import httpcore
import httpx

SLICE = 0.25  # longest single wait of a read, so that a stop is seen this quickly

T = TypeVar("T")


class RequestAbandoned(Exception):
    """A stop was requested while a request was in progress; its answer was not read."""


class _Deadline:
    def __init__(self, seconds: float | None, stop: threading.Event | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds
        self.stop = stop
        self.expired = False

    def left(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise RequestAbandoned
        left = self.left()
        if left is not None and left <= 0:
            self.expired = True
            raise httpcore.ReadTimeout(f"no complete answer within {self.seconds:g}s")

    def bound(self, timeout: float | None) -> float | None:
        """``timeout`` cut to the time left (a small positive number once it has passed)."""
        left = self.left()
        if left is None:
            return timeout
        left = max(left, 0.001)
        return left if timeout is None else min(timeout, left)


_current = threading.local()


def _active() -> _Deadline | None:
    found: _Deadline | None = getattr(_current, "deadline", None)
    return found


@contextlib.contextmanager
def deadline(seconds: float | None, stop: threading.Event | None = None) -> Iterator[_Deadline]:
    """Every socket operation of this thread inside the block ends by ``seconds`` from now
    (``None``: no total limit) and gives up with :class:`RequestAbandoned` once ``stop`` is
    set. The yielded object's ``expired`` says whether the deadline is what ended it."""
    outer = _active()
    current = _Deadline(seconds, stop)
    _current.deadline = current
    try:
        yield current
    finally:
        _current.deadline = outer


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        limit = _active()
        if limit is None:
            return self._inner.read(max_bytes, timeout)
        # the operation's own timeout counts from now; the deadline from the request's start
        ends = None if timeout is None else time.monotonic() + timeout
        while True:
            limit.check()
            wait = limit.bound(SLICE)
            if ends is not None and wait is not None:
                wait = max(0.001, min(wait, ends - time.monotonic()))
            try:
                return self._inner.read(max_bytes, wait)
            except httpcore.ReadTimeout:
                if ends is not None and time.monotonic() >= ends:
                    raise
                # a slice ended: check the stop and the deadline, then wait again

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _checked(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _checked(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _checked(timeout: float | None) -> float | None:
    limit = _active()
    if limit is None:
        return timeout
    limit.check()
    return limit.bound(timeout)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, bounded by the thread's current :func:`deadline`."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(
            _wrap_timeout(
                lambda: self._inner.connect_tcp(
                    host, port, _checked(timeout), local_address, socket_options
                )
            )
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _checked(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _wrap_timeout(connect: Callable[[], T]) -> T:
    """A connect cut short by the deadline says so, like a read."""
    limit = _active()
    try:
        return connect()
    except httpcore.ConnectTimeout:
        if limit is not None and (limit.left() or 1.0) <= 0:
            limit.expired = True
        raise


def deadline_transport(verify: str | bool, proxy: str | None) -> httpx.HTTPTransport:
    """httpx's own transport (TLS settings and proxy as given, no environment) on a
    :class:`DeadlineBackend`."""
    transport = httpx.HTTPTransport(verify=verify, proxy=proxy, trust_env=False)
    pool = transport._pool  # httpx builds the pool without a backend option
    if not isinstance(getattr(pool, "_network_backend", None), httpcore.NetworkBackend):
        raise RuntimeError("this httpcore keeps its network backend elsewhere")
    pool._network_backend = DeadlineBackend(pool._network_backend)
    return transport

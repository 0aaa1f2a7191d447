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
a slice is safe. A TCP connect waits for its handshake in slices too (a non-blocking
connect, as httpcore's backend would make it otherwise). Writes and TLS handshakes are not
sliced (a write that timed out may have sent part of its buffer): they only get the time
left, which for a GET is plenty; nor is the name lookup.

A watchdog thread that closes the socket would do the same, but it races with the pool
reusing the connection, and costs a thread per client. Outside a ``deadline`` context the
backend behaves exactly as httpcore's own.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpcore
import httpx
from httpcore._backends.sync import SyncStream  # the stream httpcore's own backend returns

from ingest.base.errors import BadResponse

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

    def check(self, timeout: type[httpcore.TimeoutException] = httpcore.ReadTimeout) -> None:
        if self.stop is not None and self.stop.is_set():
            raise RequestAbandoned
        left = self.left()
        if left is not None and left <= 0:
            self.expired = True
            raise timeout(f"no complete answer within {self.seconds:g}s")

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
        limit = _active()
        if limit is None or not isinstance(self._inner, httpcore.SyncBackend):
            return _Stream(
                _wrap_timeout(
                    lambda: self._inner.connect_tcp(
                        host, port, _checked(timeout), local_address, socket_options
                    )
                )
            )
        sock = _connect(host, port, timeout, local_address, socket_options or (), limit)
        return _Stream(SyncStream(sock))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, _checked(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _connect(
    host: str,
    port: int,
    timeout: float | None,
    local_address: str | None,
    socket_options: Iterable[httpcore.SOCKET_OPTION],
    limit: _Deadline,
) -> socket.socket:
    """``socket.create_connection`` as httpcore's backend does it, but waiting for the
    handshake in slices, so that a stop or the deadline ends an unanswered connect too."""
    ends = None if timeout is None else time.monotonic() + timeout
    failure: OSError | None = None
    try:
        addresses = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except OSError as err:
        raise httpcore.ConnectError(str(err)) from None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            if local_address is not None:
                sock.bind((local_address, 0))
            sock.setblocking(False)
            code = sock.connect_ex(address)
            waiting = select.poll()
            waiting.register(sock, select.POLLOUT)
            while code in (errno.EINPROGRESS, errno.EALREADY, errno.EAGAIN):
                limit.check(httpcore.ConnectTimeout)
                now = time.monotonic()
                if ends is not None and now >= ends:
                    raise httpcore.ConnectTimeout("timed out")
                wait = limit.bound(SLICE) or SLICE
                if ends is not None:
                    wait = min(wait, ends - now)
                if waiting.poll(max(1, int(wait * 1000))):
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            sock.setblocking(True)
            for option in socket_options:
                sock.setsockopt(*option)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as err:
            sock.close()
            failure = err
        except BaseException:
            sock.close()
            raise
    raise httpcore.ConnectError(str(failure or f"no address for {host}"))


def _wrap_timeout(connect: Callable[[], T]) -> T:
    """A connect cut short by the deadline says so, like a read."""
    limit = _active()
    try:
        return connect()
    except httpcore.ConnectTimeout:
        if limit is not None and (limit.left() or 1.0) <= 0:
            limit.expired = True
        raise


def shared_ssl_context(verify: str | bool) -> ssl.SSLContext:
    """One SSL context for every client with the same TLS settings (``verify``: True, False
    or a CA bundle's path). Each context holds its own copy of the CA certificates, ~0.7 MB:
    a daemon with 50 orgs spent 36 MB on them. A bundle changed on disk since gets a new
    one (a SIGHUP reload makes new clients)."""
    changed = 0
    if isinstance(verify, str):
        with contextlib.suppress(OSError, ValueError):
            changed = Path(verify).stat().st_mtime_ns
    return _ssl_context(verify, changed)


@functools.lru_cache(maxsize=16)
def _ssl_context(verify: str | bool, changed: int) -> ssl.SSLContext:
    if isinstance(verify, bool):  # certifi's CA certificates, or no verification
        return httpx.create_ssl_context(verify=verify, trust_env=False)
    if Path(verify).is_dir():  # a folder of hashed certificates
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def deadline_transport(
    verify: str | bool, proxy: str | None, max_bytes: int = 128 << 20
) -> BoundedTransport:
    """httpx's own transport (TLS settings and proxy as given, no environment) on a
    :class:`DeadlineBackend`, its answers bounded by :class:`BoundedTransport`."""
    context = shared_ssl_context(verify)
    transport = httpx.HTTPTransport(verify=context, proxy=proxy, trust_env=False)
    pool = transport._pool  # httpx builds the pool without a backend option
    if not isinstance(getattr(pool, "_network_backend", None), httpcore.NetworkBackend):
        raise RuntimeError("this httpcore keeps its network backend elsewhere")
    pool._network_backend = DeadlineBackend(pool._network_backend)
    return BoundedTransport(transport, max_bytes)


class CorruptBody(Exception):
    """A compressed answer that does not decompress (retried like a truncated body)."""


class BoundedTransport(httpx.BaseTransport):
    """Decompresses every answer itself, in bounded steps, and caps its size.

    httpx inflates each received chunk whole (64 KiB of a gzip bomb become 64 MiB at once)
    and reads bodies it is asked to read without limit: the answers an OAuth flow looks at,
    or a 401 before its retry. Here an answer passes through already decompressed (its
    ``Content-Encoding`` and ``Content-Length`` removed): a 2xx answer larger than
    ``max_bytes``, as sent or decompressed, or in an encoding other than gzip or deflate,
    fails with ``BadResponse`` while it is read; any other answer is cut at
    ``max_error_bytes`` (only its error envelope is of use).
    """

    def __init__(
        self, inner: httpx.BaseTransport, max_bytes: int, max_error_bytes: int = 65536
    ) -> None:
        self._inner = inner
        self.max_bytes = max_bytes
        self.max_error_bytes = max_error_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        ok = 200 <= response.status_code < 300
        limit = self.max_bytes if ok else self.max_error_bytes
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        request_id = response.headers.get("x-okta-request-id")

        def refuse(message: str) -> BadResponse:
            response.close()
            return BadResponse(message, status=response.status_code, request_id=request_id)

        wbits = WBITS.get(encoding, -1)
        if wbits == -1 and ok:
            raise refuse(
                f"Okta answered in the content encoding {encoding[:40]!r}, which was not asked for"
            )
        declared = response.headers.get("content-length", "")
        if ok and declared.isdigit() and int(declared) > limit:
            raise refuse(too_large_message(limit, "as sent"))
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length")
        ]
        stream = response.stream
        assert isinstance(stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=_Capped(stream, wbits, limit, ok, response.status_code, request_id),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


# zlib's window bits for each content encoding Okta may use; 0 is none, deflate is
# zlib-wrapped (or gzip: 32 reads either header).
WBITS = {"identity": 0, "": 0, "gzip": 16 + 15, "x-gzip": 16 + 15, "deflate": 32 + 15}


def too_large_message(limit: int, what: str) -> str:
    return (
        f"Okta's answer is larger than max_response_bytes ({limit} bytes {what}); "
        "the page was not used"
    )


class Oversize(Exception):
    """A body past its limit: ``what`` is "as sent" or "decompressed"."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def inflate_capped(raw: Iterable[bytes], wbits: int, limit: int) -> Iterator[bytes]:
    """The body read from ``raw``, decompressed with ``wbits`` (0: as it is), in bounded steps.

    Yields at most ``limit`` bytes in all, then raises ``Oversize`` if there was more, as
    received or decompressed; no step inflates more than ``limit`` + 1 bytes, so a gzip bomb
    is stopped after its first chunk. Corrupt compressed data raises ``zlib.error``. Shared by
    ``BoundedTransport`` and the client's own guard for any other ``httpx.Client``.
    """
    inflate = zlib.decompressobj(wbits) if wbits else None
    received = size = 0
    for chunk in raw:
        received += len(chunk)
        if received > limit:
            raise Oversize("as sent")
        data = chunk
        while data:
            if inflate is None:
                out, data = data, b""
            else:
                out = inflate.decompress(data, limit - size + 1)
                data = inflate.unconsumed_tail
            size += len(out)
            if size > limit:
                yield out[: len(out) - (size - limit)]
                raise Oversize("decompressed")
            yield out
    if inflate is not None:
        tail = inflate.flush(limit - size + 1)
        yield tail[: limit - size]
        if size + len(tail) > limit:
            raise Oversize("decompressed")


class _Capped(httpx.SyncByteStream):
    def __init__(
        self,
        inner: httpx.SyncByteStream,
        wbits: int,
        limit: int,
        strict: bool,
        status: int,
        request_id: str | None,
    ) -> None:
        self._inner = inner
        self._wbits = wbits
        self._limit = limit
        self._strict = strict  # past the limit: fail (a page) or stop reading (an error)
        self._status = status
        self._request_id = request_id

    def _fail(self, what: str) -> BadResponse:
        return BadResponse(
            too_large_message(self._limit, what), status=self._status, request_id=self._request_id
        )

    def __iter__(self) -> Iterator[bytes]:
        if self._wbits == -1:
            return  # an error answer in an unknown encoding: its envelope is of no use
        try:
            yield from inflate_capped(self._inner, self._wbits, self._limit)
        except Oversize as over:
            if self._strict:
                raise self._fail(over.what) from None
        except zlib.error:
            if self._strict:
                raise CorruptBody(
                    "HTTP 200 with a body that is not valid compressed data"
                ) from None

    def close(self) -> None:
        self._inner.close()

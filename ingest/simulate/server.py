"""The simulated org over HTTP: ``GET /api/v1/logs`` plus a loopback-only control API.

``POST /oauth2/v1/token`` serves the org's OAuth service apps (``OrgConfig.oauth``, see
``ingest.simulate.oauth``); ``/api/v1/logs`` then accepts their ``Bearer``/``DPoP`` tokens.

Control API (POST, loopback clients only):

- ``/__sim/events``: body is NDJSON or a JSON array of events. With ``late_seconds=S`` the
  events are persisted now although published earlier (an event without ``published`` gets
  now - S); without it they are persisted shortly after their ``published``.
- ``/__sim/generate?count=N&minutes=M``: generate N events over the last M minutes.
- ``/__sim/faults?kind=K&count=N``: queue faults (see ``FAULT_KINDS``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

import orjson

from ingest.base.clock import rfc3339_ms
from ingest.base.errors import ConfigError
from ingest.simulate import responses as r
from ingest.simulate.generator import LOCK
from ingest.simulate.oauth import TOKEN_PATH
from ingest.simulate.options import SimulateOptions, options_from
from ingest.simulate.org import DEMO_TOKEN, OrgConfig, SimulatedOrg, http_date
from ingest.simulate.responses import SimResponse

LOGS_PATH = "/api/v1/logs"
_LOOPBACK = ("127.", "::1", "::ffff:127.")
_MAX_BODY = 64 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    org: SimulatedOrg

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, resets) are expected here; stay quiet."""


class _Server6(_Server):
    address_family = socket.AF_INET6


def _json(status: int, payload: Any, extra: tuple[tuple[str, str], ...] = ()) -> SimResponse:
    return SimResponse(status, (("Content-Type", r.JSON), *extra), orjson.dumps(payload))


def _not_found(path: str) -> SimResponse:
    body = r.envelope(
        r.E_NOT_FOUND,
        "oae0simulator0notfound0",
        f"Not found: Resource not found: {path} (Simulated endpoint)",
    )
    return SimResponse(404, (("Content-Type", r.JSON),), body)


def _bad_control(message: str) -> SimResponse:
    body = r.envelope(r.E_VALIDATION, "oae0simulator0control00", message)
    return SimResponse(400, (("Content-Type", r.JSON),), body)


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """Events from an NDJSON or JSON-array body; raise ValueError on anything else."""
    text = body.strip()
    if not text:
        return []
    try:
        if text.startswith(b"["):
            loaded = orjson.loads(text)
        else:
            loaded = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    except orjson.JSONDecodeError as err:
        raise ValueError(f"body is neither NDJSON nor a JSON array: {err}") from err
    if not isinstance(loaded, list) or not all(isinstance(e, dict) for e in loaded):
        raise ValueError("every event must be a JSON object")
    return loaded


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are counted by the org; no access log on stderr."""

    def _request_url(self) -> str:
        if self.path.startswith(("http://", "https://")):
            return self.path
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        return f"{scheme}://{host}{self.path}"

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        if split.path != LOGS_PATH:
            self._send(_not_found(split.path))
            return
        params: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            params.setdefault(key, value)
        org = self.server.org
        authorization, dpop = self.headers.get("Authorization"), self.headers.get("DPoP")
        self._send(org.logs(params, authorization, self._request_url(), dpop))

    def do_POST(self) -> None:
        split = urlsplit(self.path)
        body = self._body()
        if split.path == TOKEN_PATH:
            content_type, dpop = self.headers.get("Content-Type"), self.headers.get("DPoP")
            self._send(self.server.org.token(body, content_type, dpop, self._request_url()))
            return
        if not split.path.startswith("/__sim/"):
            if split.path == LOGS_PATH:
                payload = r.envelope(r.E_METHOD, "oae0simulator0method000")
                self._send(SimResponse(405, (("Content-Type", r.JSON),), payload))
            else:
                self._send(_not_found(split.path))
            return
        if not str(self.client_address[0]).startswith(_LOOPBACK):
            self._send(_json(403, {"error": "the control API only answers loopback clients"}))
            return
        if body is None:
            self._send(_bad_control("a Content-Length body is required"))
            return
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            self._send(_control(self.server.org, split.path, params, body))
        except ValueError as err:
            self._send(_bad_control(str(err)))

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            return None if self.headers.get("Transfer-Encoding") else b""
        size = int(length) if length.isdigit() else -1
        if not 0 <= size <= _MAX_BODY:
            return None
        return self.rfile.read(size)

    def _send(self, response: SimResponse) -> None:
        if response.reset:
            self._reset()
            return
        self.send_response_only(response.status)
        if response.header("Date") is None:
            self.send_header("Date", http_date(self.server.org.now()))
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if response.cut_at is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.cut_at is None:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: response.cut_at])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self) -> None:
        """Drop the connection with a TCP reset and no response at all."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


def _control(org: SimulatedOrg, path: str, params: dict[str, str], body: bytes) -> SimResponse:
    if path == "/__sim/events":
        events = parse_events(body)
        if "late_seconds" in params:
            late = timedelta(seconds=_number(params, "late_seconds", 0))
            now = org.now()
            for event in events:
                event.setdefault("published", rfc3339_ms(now - late))
            added = org.add_late(events, persisted_at=now)
        else:
            added = org.add(events)
        return _json(200, {"added": added})
    if path == "/__sim/generate":
        count = int(_number(params, "count", 100))
        minutes = _number(params, "minutes", 60)
        if count < 0 or minutes <= 0:
            raise ValueError("count must be >= 0 and minutes > 0")
        now = org.now()
        events = org.generator.stream(count, now - timedelta(minutes=minutes), now)
        return _json(200, {"added": org.add(events)})
    if path == "/__sim/faults":
        kind = params.get("kind", "")
        count = int(_number(params, "count", 1))
        org.inject(kind, count)
        return _json(200, {"queued": org.pending_faults()})
    return _not_found(path)


def _number(params: dict[str, str], name: str, default: float) -> float:
    if name not in params:
        return default
    try:
        return float(params[name])
    except ValueError as err:
        raise ValueError(f"{name} must be a number") from err


class SimulatorServer:
    """Serve ``org`` on ``host:port`` (0 = any free port) from a background thread."""

    def __init__(
        self,
        org: SimulatedOrg,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: serve HTTPS with this server context (a test's own certificate)."""
        self.org = org
        self.tls = tls
        server_class = _Server6 if ":" in host else _Server
        self._server: _Server = server_class((host, port), _Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._server.org = org
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="okta-simulator",
            daemon=True,
        )
        self._thread.start()

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server (``https://`` with ``tls``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- `oktaduck simulate` -------------------------------------------------------------------

TRICKLE_INTERVAL = 5.0


def seed_org(org: SimulatedOrg, count: int, hours: float) -> None:
    """Fill ``org`` with ``count`` events over the last ``hours``.

    Included: a failed-login burst ending in a lockout, and about 1% late events that are
    persisted 10 to 120 seconds from now (they show up to pollers a little later).
    """
    now = org.now()
    start = now - timedelta(hours=hours)
    gen = org.generator
    burst = min(25, count // 20)
    late = count // 100
    bulk = count - burst - late
    if bulk > 0:
        org.add(gen.stream(bulk, start, now))
    if burst:
        begin = now - timedelta(hours=hours) / 3
        attempts = gen.failed_login_burst(burst - 1, begin)
        victim = gen.user(str(attempts[0]["actor"]["alternateId"])) if attempts else None
        address = str(attempts[0]["client"]["ipAddress"]) if attempts else None
        locked_at = begin + timedelta(seconds=3 * burst)
        org.add([*attempts, gen.event(LOCK, locked_at, actor=victim, ip=address)])
    if late:
        window = min(timedelta(minutes=30), timedelta(hours=hours))
        for i, event in enumerate(gen.stream(late, now - window, now)):
            org.add_late([event], persisted_at=now + timedelta(seconds=10 + (110 * i) // late))


def _install_signals(stop: threading.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGINT/SIGTERM (main thread only); return a function restoring them."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: object) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def serve_forever(
    options: SimulateOptions,
    *,
    stop: threading.Event | None = None,
    ready: Callable[[SimulatorServer], None] | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve a seeded simulated org until SIGINT/SIGTERM (or ``stop`` is set).

    The org accepts the token in ``OKTA_API_TOKEN`` when set, else the demo token
    ``sim-demo-token``. With ``trickle_per_minute`` new events keep arriving every few seconds.
    """
    env_token = os.environ.get("OKTA_API_TOKEN", "").strip()
    config = OrgConfig(
        tokens=frozenset({env_token or DEMO_TOKEN}),
        limit=options.rate_limit,
        window_seconds=options.window_seconds,
        seed=options.seed,
    )
    org = SimulatedOrg(config)
    seed_org(org, options.events, options.hours)
    stop = stop or threading.Event()
    try:
        server = SimulatorServer(org, options.host, options.port)
    except OSError as err:
        raise ConfigError(f"cannot listen on {options.host}:{options.port}: {err}") from err
    with server:
        source = (
            "token: the value of OKTA_API_TOKEN"
            if env_token
            else f"token: the demo token {DEMO_TOKEN} (not a secret)"
        )
        print(
            f"Simulated Okta org at {server.url} with {len(org)} events; {source}; Ctrl-C stops it",
            file=out or sys.stdout,
            flush=True,
        )
        restore = _install_signals(stop)
        try:
            if ready is not None:
                ready(server)
            _trickle(org, options.trickle_per_minute, stop)
        finally:
            restore()


def _trickle(org: SimulatedOrg, per_minute: float, stop: threading.Event) -> None:
    """Add about ``per_minute`` new events per minute until ``stop`` is set."""
    last = org.now()
    owed = 0.0
    while not stop.wait(TRICKLE_INTERVAL):
        now = org.now()
        owed += per_minute * (now - last).total_seconds() / 60
        count = int(owed)
        if count and now > last:
            owed -= count
            org.add_late(org.generator.stream(count, last, now), persisted_at=now)
        last = now


def run(args: argparse.Namespace) -> int:
    """``oktaduck simulate``: serve until interrupted; return the exit code."""
    serve_forever(options_from(args))
    return 0

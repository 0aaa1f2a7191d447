"""The daemon's local HTTP API: health, status, feeds and read-only SQL.

While the daemon runs it holds DuckDB's write lock, so other processes cannot open the file;
``oktaduck sql``, ``feed`` and ``status`` then come here instead and print the same output.
The API listens on loopback by default and requires a bearer token when bound elsewhere. The
daemon writes its address to ``<database>.api.json`` so the CLI can find it.

Routes (GET unless said otherwise; ``format`` = table, json, ndjson or csv):

- ``/healthz``: 200 when every source is healthy, 503 otherwise (JSON body says why)
- ``/metrics``: Prometheus text format
- ``/api/status?format=``: the rows of ``oktaduck status``
- ``/api/feeds``: the feeds with their parameters
- ``/api/feeds/NAME?format=&PARAM=VALUE...``: run a feed
- ``POST /api/sql?format=`` with the SQL as the body: one read-only SELECT
- ``/api/export?format=raw|normalized|ecs|ocsf&since=&until=&filter=&q=``: formatted NDJSON
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import duckdb
import orjson

from ingest.clock import Clock
from ingest.config import ApiConfig
from ingest.errors import ConfigError, OktaduckError, QueryRefused, StoreError
from ingest.feeds.catalog import load_feeds
from ingest.feeds.run import run_feed
from ingest.logs import emit
from ingest.mapping import CompiledMapping
from ingest.output import FORMATS, write_rows
from ingest.store.query import Result, run_user_query, sink_status, status

MAX_BODY = 1 << 20
CONTENT_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "table": "text/plain; charset=utf-8",
}


Health = Callable[[], tuple[bool, dict[str, Any]]]


class ApiServer:
    """Serve the API from background threads over the daemon's database."""

    def __init__(
        self,
        config: ApiConfig,
        con: duckdb.DuckDBPyConnection,
        clock: Clock,
        health: Health,
        normalized: CompiledMapping,
        metrics: Callable[[], str] | None = None,
    ) -> None:
        self.config = config
        self.con = con
        self.normalized = normalized
        self.clock = clock
        self.health = health
        self.metrics = metrics
        handler = type("Handler", (_Handler,), {"api": self})
        try:
            self.httpd = ThreadingHTTPServer((config.host, config.port), handler)
        except OSError as err:
            raise ConfigError(
                f"api.listen: cannot listen on {config.host}:{config.port}: {err.strerror}"
            ) from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="api", daemon=True)

    @property
    def url(self) -> str:
        address, port = self.httpd.server_address[:2]
        host = address.decode() if isinstance(address, bytes) else str(address)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def start(self, announce: Path | None = None) -> None:
        self.thread.start()
        if announce is not None:
            announce.write_bytes(orjson.dumps({"url": self.url}))
            announce.chmod(0o600)
        emit("api.started", url=self.url)

    def stop(self, announce: Path | None = None) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if announce is not None:
            announce.unlink(missing_ok=True)

    def authorized(self, header: str | None) -> bool:
        token = self.config.token()
        if token is None:
            return True
        expected = f"Bearer {token.reveal()}"
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())


def announce_path(db: Path) -> Path:
    """Where the daemon writes its API address for the CLI."""
    return db.with_name(db.name + ".api.json")


class _Handler(BaseHTTPRequestHandler):
    api: ApiServer
    server_version = "oktaduck"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        emit("api.request", path=urlsplit(self.path).path, status=args[1] if len(args) > 1 else "")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if not self.api.authorized(self.headers.get("Authorization")):
            self._send(401, {"error": "missing or wrong API token"})
            return
        try:
            if url.path == "/healthz" and method == "GET":
                ok, body = self.api.health()
                self._send(200 if ok else 503, body)
            elif url.path == "/metrics" and method == "GET" and self.api.metrics is not None:
                text = self.api.metrics().encode()
                self._send_bytes(200, text, "text/plain; version=0.0.4; charset=utf-8")
            elif url.path == "/api/status" and method == "GET":
                self._rows(status(self.api.con.cursor(), self.api.clock.now()), query)
            elif url.path == "/api/sinks" and method == "GET":
                self._rows(sink_status(self.api.con.cursor(), self.api.clock.now()), query)
            elif url.path == "/api/feeds" and method == "GET":
                self._send(200, _feed_list())
            elif url.path.startswith("/api/feeds/") and method == "GET":
                name = url.path.removeprefix("/api/feeds/")
                fmt = query.pop("format", "json")
                cursor = self.api.con.cursor()
                self._rows(run_feed(cursor, name, query, self.api.clock.now()), {"format": fmt})
            elif url.path == "/api/export" and method == "GET":
                self._export(query)
            elif url.path == "/api/sql" and method == "POST":
                sql = self._body().decode("utf-8", errors="replace")
                self._rows(run_user_query(self.api.con.cursor(), sql), query)
            else:
                self._send(404, {"error": f"no route {method} {url.path}"})
        except QueryRefused as err:
            self._send(403, {"error": str(err)})
        except (ConfigError, StoreError, OktaduckError) as err:
            self._send(400, {"error": str(err)})

    def _export(self, query: dict[str, str]) -> None:
        """Formatted NDJSON of a time range (for ``oktaduck export`` while the daemon runs)."""
        from ingest.export.oneoff import Selection, select_lines
        from ingest.feeds.catalog import parse_time

        now = self.api.clock.now()
        selection = Selection(
            format=query.get("format", "raw"),
            since=parse_time(query.get("since", "7d"), now, "since"),
            until=parse_time(query.get("until", "now"), now, "until"),
            filter=query.get("filter") or None,
            q=query.get("q") or None,
            fields=orjson.loads(query["fields"]) if query.get("fields") else None,
        )
        batches = select_lines(self.api.con.cursor(), selection, self.api.normalized)
        first = next(batches, [])  # errors (bad filter, bad format) surface before the headers
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES["ndjson"])
        self.end_headers()
        for lines in (first, *batches):
            if lines:
                self.wfile.write(b"\n".join(lines) + b"\n")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ConfigError("request body too large")
        return self.rfile.read(length)

    def _rows(self, result: Result, query: dict[str, str]) -> None:
        fmt = query.get("format", "json")
        if fmt not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}")
        # Rows stream straight to the socket (HTTP/1.0: the end of the body closes it).
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES[fmt])
        self.end_headers()
        out = _Utf8(self.wfile)
        write_rows(result.columns, result.rows, fmt, out, json_columns=result.json_columns)
        out.flush()

    def _send(self, status: int, body: Any) -> None:
        self._send_bytes(status, orjson.dumps(body) + b"\n", "application/json")

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Utf8:
    """Text to a binary stream, buffered in 64 KiB writes."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
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
            self.raw.write("".join(self.parts).encode("utf-8"))
            self.parts.clear()
            self.size = 0


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

"""The daemon's local HTTP API: health, status, feeds and read-only SQL.

This module holds the routes and who may use them; the HTTP server under them (the reader
thread, deadlines, the worker pool, the Host/Origin checks, JSON refusals, chunked answers)
is ``ingest.service.httpserver`` with ``httpanswer``, which know nothing of oktaduck.

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
- ``/api/leases`` (a daemon on a lake): who holds each source's, sink's and the
  housekeeping's lease, until when, and whether it is this daemon
- ``/api/feeds``: the feeds with their parameters
- ``/api/feeds/NAME?format=&PARAM=VALUE...``: run a feed
- ``POST /api/sql?format=&timeout=`` with the SQL as an ``application/sql`` body (or
  ``application/json`` ``{"sql": "..."}``): one read-only SELECT
- ``/api/export?format=raw|normalized|ecs|ocsf&since=&until=&filter=&q=&fields=``: NDJSON
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import duckdb
import orjson

from ingest.base.clock import Clock
from ingest.base.errors import ConfigError, OktaduckError, QueryRefused, StoreInvalidated
from ingest.base.logs import emit
from ingest.base.secrets import Secret
from ingest.base.tablewriter import FORMATS, write_rows
from ingest.base.timeparse import parse_duration, parse_time
from ingest.config import ApiConfig
from ingest.export.oneoff import Selection, select_lines
from ingest.feeds.feedfile import load_feeds
from ingest.feeds.run import run_feed
from ingest.mapping import CompiledMapping
from ingest.service.httpanswer import Chunked, Request, RequestHandler, target_path
from ingest.service.httpserver import HttpServer
from ingest.store.lake import open_cursor, stale
from ingest.store.limits import QueryLimits
from ingest.store.query import (
    Cancel,
    ReadOnlyCursor,
    Result,
    run_user_query,
    sink_status,
    status,
)

POST_TYPES = ("application/sql", "application/json")
CONTENT_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "table": "text/plain; charset=utf-8",
}
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


class ApiServer(HttpServer):
    """Serve the API on ``config.listen``: the bounded server of ``httpserver``, the routes
    of ``_Handler``."""

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
        leases: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.config = config
        self.leases = leases
        self.limits = limits or QueryLimits()
        self.con = con
        self.invalidated = False  # a query found ``con`` of no use: the daemon starts again
        self.normalized = normalized
        self.clock = clock
        self.health = health
        self.metrics = metrics
        self.token = token
        super().__init__(
            config.host,
            config.port,
            workers=config.workers,
            request_timeout=config.request_timeout,
            health_path="/healthz",
            setting="api.listen",
        )

    def confirm_stale(self) -> bool:
        """After a query failed the way a connection of no use fails: whether the store's
        connection really is (then ``invalidated`` is set and the daemon starts again). A
        query's own error can read the same (``error('...')`` raises any text), so a fixed
        query on a cursor of its own decides."""
        try:
            cursor = open_cursor(self.con)
            try:
                cursor.execute("SELECT count(*) FROM events").fetchall()
            finally:
                cursor.close()
        except duckdb.Error as err:
            self.invalidated |= stale(err)
        return self.invalidated

    def start(self, announce: Path | None = None) -> None:
        super().start()
        if announce is not None:
            doc = {"url": self.url, "token": self.token.reveal()}
            _write_private(announce, orjson.dumps(doc))
        emit("api.started", url=self.url)

    def stop(self, announce: Path | None = None) -> None:
        if announce is not None:
            announce.unlink(missing_ok=True)
        super().stop()

    def handle(self, sock: socket.socket, request: Request) -> None:
        _Handler(sock, request, self)

    def authorized(self, header: str | None) -> bool:
        """Whether ``header`` is ``Bearer <token>`` (compared in constant time)."""
        if header is None:
            return False
        expected = f"Bearer {self.token.reveal()}".encode()
        return hmac.compare_digest(header.encode("utf-8", "surrogateescape"), expected)

    # -- the reader thread: accepts, reads whole requests, hands them to a worker ----------


class _Unsupported(OktaduckError):
    pass


class _Handler(RequestHandler):
    """The API's routes, on the request handling of ``httpanswer.RequestHandler``."""

    def __init__(self, sock: socket.socket, request: Request, api: ApiServer) -> None:
        self.api = api
        super().__init__(sock, request, api.hosts)

    def do_GET(self) -> None:
        self._guarded("GET")

    def do_POST(self) -> None:
        self._guarded("POST")

    def _guarded(self, method: str) -> None:
        try:
            self._dispatch(method)
        except QueryRefused as err:
            self.send_error(403, str(err))
        except StoreInvalidated as err:  # the daemon opens the store again (daemon.run)
            stale = self.api.confirm_stale()
            self.send_error(503 if stale else 400, str(err))
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
                path=target_path(self.path)[:200],
                error=f"{type(err).__name__}: {err}",
            )
            self.send_error(500, "internal error; the daemon's log says more")

    def _dispatch(self, method: str) -> None:
        try:
            url = urlsplit(self.path)
        except ValueError:
            raise ConfigError("the request target is not a valid URL") from None
        refusal = self.refusal()
        if refusal is not None:
            self.send_error(*refusal)
            return
        authorized = self.api.authorized(self.headers.get("Authorization"))
        if url.path == "/healthz" and method == "GET":
            ok, details = self.api.health()
            self.send_json(200 if ok else 503, details if authorized else {"ok": ok})
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
            self.send_bytes(200, text, "text/plain; version=0.0.4; charset=utf-8")
        elif url.path == "/api/status" and method == "GET":
            now = self.api.clock.now()
            self._query(lambda con, lim, c: status(con, now, lim, cancel=c), query, timeout)
        elif url.path == "/api/sinks" and method == "GET":
            now = self.api.clock.now()
            self._query(lambda con, lim, c: sink_status(con, now, lim, cancel=c), query, timeout)
        elif url.path == "/api/leases" and method == "GET" and self.api.leases is not None:
            self.send_json(200, self.api.leases())
        elif url.path == "/api/feeds" and method == "GET":
            self.send_json(200, _feed_list())
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
            emit("api.query_cancelled", path=target_path(self.path), reason="client gone")
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
        cap = self.api.config.max_result_bytes
        out = Chunked(self.sock, cap, _too_large(cap))
        try:
            write_rows(result.columns, result.rows, fmt, out, json_columns=result.json_columns)
            out.end()
        except OktaduckError as err:
            if not gone.is_set():
                result.cancel()
                emit("api.query_failed", path=target_path(self.path), error=str(err))
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
            out = Chunked(self.sock, None)
            try:
                for lines in _chain(first, batches):
                    if lines:
                        out.send(b"\n".join(lines) + b"\n")
                out.end()
            except OktaduckError as err:
                out.fail(str(err))
            except duckdb.Error as err:
                error = reader.error(err)
                if isinstance(error, StoreInvalidated):
                    self.api.confirm_stale()
                out.fail(str(error))
        except duckdb.Error as err:
            raise reader.error(err) from None
        finally:
            done()
            self.api.watcher.unwatch(self.sock)
            reader.close()


def _limits(timeout: str | None, daemon: QueryLimits) -> QueryLimits:
    """The daemon's limits, or a shorter ``timeout`` a request asks for."""
    if timeout is None:
        return daemon
    seconds = parse_duration(timeout, "timeout").total_seconds()
    if seconds <= 0:
        raise ConfigError("timeout: must be longer than 0s")
    return QueryLimits(timeout=min(seconds, daemon.timeout))


def _too_large(cap: int | None) -> str:
    return (
        f"the answer is larger than api.max_result_bytes ({cap} bytes); "
        "narrow the query (fewer columns, a LIMIT, a shorter time range)"
    )


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

"""No secret in any output: a canary token echoed back by hostile servers never gets out.

An Okta org (or a proxy in front of it) that answers an error with the request's
``Authorization`` header in the body, in ``WWW-Authenticate`` and in the request id; an HTTP
sink receiver whose 4xx/5xx body holds the sink token; an OAuth token endpoint that echoes the
client assertion and the DPoP proof. Every channel is searched for the canary: the CLI's
stdout and stderr, the structured log lines, the daemon's log, ``/healthz`` and ``status``,
the export cursors and the DuckDB file's bytes (with its WAL).
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import duckdb
import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ingest.base import redact as redaction
from ingest.base.clock import FakeClock
from ingest.base.errors import AuthFailed, OktaduckError, RateLimited, SourceError
from ingest.base.logs import JsonFormatter
from ingest.base.secrets import Secret
from ingest.collect.connect import open_client
from ingest.collect.settings import SourceConfig
from ingest.export.sinks.http import HttpSink, HttpSinkConfig
from ingest.okta.client import ClientPolicy, OktaClient
from ingest.okta.oauth import OAuthAuth
from ingest.okta.oauth_config import OAuthConfig
from ingest.okta.urls import OrgURL
from tests.helpers import REPO, START, TOKEN, TOKEN_ENV, Daemon, Sim, make_sim, run_cli
from tests.receivers import HttpReceiver, Reply

CANARY_ENV = "OKTADUCK_CANARY_TOKEN"
SINK_ENV = "OKTADUCK_CANARY_SINK_TOKEN"


def canary(kind: str) -> str:
    return f"{kind}-canary-{secrets.token_hex(16)}"


def assert_clean(text: str | bytes, *values: str) -> None:
    """Neither the value nor its first 16 characters (a truncated echo) is in ``text``."""
    data = text if isinstance(text, bytes) else text.encode()
    for value in values:
        for piece in (value, value[:16], quote(value, safe="")):
            assert piece.encode() not in data, f"{piece[:8]}... leaked"


# -- a hostile Okta: every error echoes what the client sent ---------------------------------


@dataclass
class EchoOkta:
    """An HTTP server on 127.0.0.1 answering every request with ``status`` and an echo."""

    status: int = 401
    token_status: int = 400
    seen: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # for a 200: echoed in each
    echo_in_link: bool = False  # for a 200: the next link's query carries what was sent

    def __post_init__(self) -> None:
        echo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                sent = " | ".join(
                    f"{name}: {self.headers.get(name)}"
                    for name in ("Authorization", "DPoP")
                    if self.headers.get(name)
                )
                echo.seen.append(sent)
                body = {
                    "errorCode": f"E0000011 {sent}",
                    "errorSummary": f"Invalid token provided: {sent}",
                    "errorId": sent,
                    "errorCauses": [{"errorSummary": f"you sent {sent}"}],
                }
                headers = {"X-Okta-Request-Id": sent, "Content-Type": "application/json"}
                if echo.status == 200:
                    page = [{**e, "displayMessage": sent, "echo": [sent]} for e in echo.events]
                    if echo.echo_in_link:
                        after = quote(sent, safe="")
                        link = f"<{echo.url}/api/v1/logs?after={after}>"
                        headers["Link"] = f'{link}; rel="next"'
                    self.answer(200, orjson.dumps(page), headers)
                    return
                if echo.status in (401, 403):
                    headers["WWW-Authenticate"] = f'Bearer realm="{sent}", error="invalid_token"'
                self.answer(echo.status, orjson.dumps(body), headers)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                assertion = form.get("client_assertion", [""])[0]
                sent = f"assertion {assertion} DPoP {self.headers.get('DPoP', '')}"
                echo.seen.append(sent)
                body = {"error": "invalid_client", "error_description": f"rejected {sent}"}
                headers = {"X-Okta-Request-Id": sent, "Content-Type": "application/json"}
                self.answer(echo.token_status, orjson.dumps(body), headers)

            def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[EchoOkta]:
    server = EchoOkta()
    yield server
    server.stop()


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Every oktaduck log line of the test, through the real formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("oktaduck")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- the redaction itself --------------------------------------------------------------------


def test_a_registered_secret_is_hidden_in_every_form_it_may_be_echoed_in() -> None:
    value = canary("plain") + " +/&="
    Secret(value)
    shown = redaction.redact(
        f"raw {value}; url {quote(value, safe='')}; json {json.dumps(value)}; cut {value[:14]}"
    )
    assert shown.count("***") == 4
    assert_clean(shown, value)
    assert redaction.redact("nothing secret here") == "nothing secret here"


def test_short_values_are_not_registered_and_transient_ones_are_bounded() -> None:
    Secret("abc1234")  # 7 characters: would blank out ordinary words
    assert redaction.redact("abc1234 stays") == "abc1234 stays"
    first = canary("transient")
    redaction.register(first, transient=True)
    assert redaction.redact(first) == "***"
    for _ in range(redaction.TRANSIENT_KEPT):
        redaction.register(canary("later"), transient=True)
    assert redaction.redact(first) == first  # pushed out by newer run-time values
    kept = canary("kept")
    Secret(kept)
    for _ in range(redaction.TRANSIENT_KEPT):
        redaction.register(canary("later"), transient=True)
    assert redaction.redact(kept) == "***"  # a configured secret stays registered


def test_errors_and_log_lines_redact_themselves(log_text: io.StringIO) -> None:
    value = canary("api")
    Secret(value, origin="env:X")
    err = SourceError(f"boom {value}", status=401, error_summary=value, request_id=value)
    assert_clean(str(err), value)
    assert_clean(repr(err), value)
    assert_clean(f"{err.error_summary} {err.request_id}", value)
    logging.getLogger("oktaduck").warning("%s", "x", extra={"fields": {"why": value}})
    logging.getLogger("oktaduck.lib").warning("library says %s", value)
    text = log_text.getvalue()
    assert text.count("***") == 2
    assert_clean(text, value)


# -- Okta errors through `oktaduck poll` ------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 400, 404, 500])
@pytest.mark.slow  # a CLI poll per status
def test_poll_never_shows_an_echoed_api_token(status: int, echo: EchoOkta, tmp_path: Path) -> None:
    token = canary("ssws")
    echo.status = status
    config = write_config(
        tmp_path / "c.toml",
        f"""
[storage]
path = "db.duckdb"
[[sources]]
name = "evil"
org_url = "{echo.url}"
token_env = "{CANARY_ENV}"
retry_for = "1s"
""",
    )
    run = run_cli("--log-level", "debug", "poll", "--config", str(config), env={CANARY_ENV: token})
    assert run.returncode == 1, run.stderr
    assert echo.seen and token in echo.seen[0]  # the server did get it, and echoed it
    assert "***" in run.stderr
    assert_clean(run.stdout + run.stderr, token)
    for line in run.stderr.splitlines():
        if line.startswith("{"):
            orjson.loads(line)  # structured lines stay JSON after redaction
    for path in tmp_path.glob("db.duckdb*"):
        assert_clean(path.read_bytes(), token)


def poll_echo(echo: EchoOkta, db: Path, count: int) -> tuple[str, subprocess.CompletedProcess[str]]:
    """``oktaduck poll`` into ``db`` of ``count`` recent events from an org that answers 200
    and echoes the request's token; returns the canary token and the run."""
    token = canary("ssws")
    now = datetime.now(UTC)
    echo.status = 200
    echo.events = make_sim(None).org.generator.stream(count, now - timedelta(minutes=5), now)
    run = run_cli(
        "poll", "--org", echo.url, "--db", str(db), "--token-env", CANARY_ENV,
        env={CANARY_ENV: token},
    )  # fmt: skip
    return token, run


def test_events_that_echo_the_token_are_stored_without_it(echo: EchoOkta, tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    token, run = poll_echo(echo, db, 3)
    assert run.returncode == 0, run.stderr
    assert token in echo.seen[0]
    con = duckdb.connect(str(db), read_only=True)
    try:
        (stored,) = con.execute("SELECT count(*) FROM events").fetchone() or (0,)
    finally:
        con.close()
    assert stored == 3
    exported = run_cli("export", "--to", "stdout", "--db", str(db), "--since", "1h")
    assert exported.stdout.count("SSWS ***") == 6  # displayMessage and echo, three times
    assert_clean(run.stdout + run.stderr + exported.stdout + exported.stderr, token)
    for path in tmp_path.glob("db.duckdb*"):
        assert_clean(path.read_bytes(), token)


def test_a_next_link_that_echoes_the_token_is_refused_and_not_stored(
    echo: EchoOkta, tmp_path: Path
) -> None:
    echo.echo_in_link = True
    token, run = poll_echo(echo, tmp_path / "db.duckdb", 2)
    assert run.returncode == 1
    assert "carries a secret" in run.stderr
    assert_clean(run.stdout + run.stderr, token)
    for path in tmp_path.glob("db.duckdb*"):
        assert_clean(path.read_bytes(), token)


def test_a_rate_limited_poll_never_shows_the_token(echo: EchoOkta, log_text: io.StringIO) -> None:
    token = canary("ssws")
    echo.status = 429
    clock = FakeClock(START)
    source = SourceConfig(name="evil", org=OrgURL.parse(echo.url), token_env=CANARY_ENV)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CANARY_ENV, token)
        client = open_client(source, clock)
    client = OktaClient(
        client.org, client.http, clock, ClientPolicy(max_rate_wait=10, concurrency_backoff=2)
    )
    with pytest.raises(RateLimited) as caught, client.http:
        client.fetch(source.org.logs_url)
    assert len(echo.seen) > 1
    assert_clean(str(caught.value) + log_text.getvalue(), token)


# -- OAuth: assertions, DPoP proofs and access tokens ------------------------------------------


def oauth_source(tmp_path: Path, url: str, dpop: bool) -> OAuthConfig:
    from tests.helpers.oauth import pem_file

    key = pem_file(tmp_path / "app.pem", ec.generate_private_key(ec.SECP256R1()))
    return OAuthConfig("0oa-canary-app", key, "kid-1", None, ("okta.logs.read",), dpop)


@pytest.mark.parametrize("dpop", [False, True])
def test_a_token_endpoint_echoing_the_client_assertion_and_proof_shows_neither(
    dpop: bool, echo: EchoOkta, tmp_path: Path, log_text: io.StringIO
) -> None:
    clock = FakeClock(START)
    auth = OAuthAuth(oauth_source(tmp_path, echo.url, dpop), echo.url, clock)
    client = OktaClient(
        OrgURL.parse(echo.url),
        httpx.Client(auth=auth, trust_env=False),
        clock,
        ClientPolicy(retry_for=1),
    )
    with pytest.raises(AuthFailed) as caught, client.http:
        client.fetch(OrgURL.parse(echo.url).logs_url)
    sent = echo.seen[0].split()
    assertion, proof = sent[1], (sent[3] if dpop else "")
    assert assertion.count(".") == 2 and (proof.count(".") == 2 or not dpop)
    shown = str(caught.value) + repr(caught.value) + log_text.getvalue()
    assert "***" in shown
    assert_clean(shown, assertion, *([proof] if dpop else []))


# -- sinks: a receiver that echoes the sink token ------------------------------------------------


def echoing_receiver(token: str, status: int) -> HttpReceiver:
    body = orjson.dumps({"text": f"bad token Splunk {token}", "code": 4, "echo": token})
    return HttpReceiver(default=Reply(status, body, (("Content-Type", "application/json"),)))


@pytest.mark.parametrize("status", [401, 403, 400, 413, 500, 503])
def test_a_sink_never_shows_its_echoed_token(status: int) -> None:
    token = canary("hec")
    with echoing_receiver(token, status) as receiver:
        sink = HttpSink(HttpSinkConfig(url=receiver.url, token=Secret(token)))
        with pytest.raises(OktaduckError) as caught:
            sink.send([b'{"a":1}'])
        sink.close()
    assert receiver.requests[0].headers["authorization"] == f"Bearer {token}"
    assert "***" in str(caught.value)
    assert_clean(str(caught.value) + repr(caught.value), token)


def test_a_credential_set_through_sink_headers_is_never_shown() -> None:
    key = canary("apikey")
    with echoing_receiver(key, 403) as receiver:
        sink = HttpSink(HttpSinkConfig(url=receiver.url, headers={"X-API-Key": key}))
        with pytest.raises(OktaduckError) as caught:
            sink.send([b'{"a":1}'])
        sink.close()
    assert receiver.requests[0].headers["x-api-key"] == key
    assert "***" in str(caught.value)
    assert_clean(str(caught.value), key)


# -- the daemon: log, /healthz, status, export cursors, the database ------------------------------


def fetch(url: str, token: str | None = None) -> bytes:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bytes(answer.read())
    except urllib.error.HTTPError as err:  # 503: a source is unhealthy
        return bytes(err.read())


@pytest.mark.slow  # starts the daemon
def test_the_daemon_keeps_echoed_tokens_out_of_every_output(
    live_sim: Sim, echo: EchoOkta, tmp_path: Path
) -> None:
    api_token, sink_token = canary("ssws"), canary("hec")
    now = datetime.now(UTC)
    live_sim.org.add(live_sim.org.generator.stream(20, now - timedelta(minutes=30), now))
    with echoing_receiver(sink_token, 401) as receiver:
        config = write_config(
            tmp_path / "c.toml",
            f"""
[storage]
path = "db.duckdb"
[api]
listen = "127.0.0.1:0"
[[sources]]
name = "acme"
org_url = "{live_sim.url}"
token_env = "{TOKEN_ENV}"
lookback = "1h"
[[sources]]
name = "evil"
org_url = "{echo.url}"
token_env = "{CANARY_ENV}"
[[sinks]]
name = "hec"
type = "http"
preset = "splunk-hec-raw"
url = "{receiver.url}"
token_env = "{SINK_ENV}"
interval = "1s"
retry_for = "1s"
""",
        )
        env = {TOKEN_ENV: TOKEN, CANARY_ENV: api_token, SINK_ENV: sink_token}
        daemon = Daemon(config, env)

        def failed_both(logs: list[dict[str, Any]]) -> bool:
            events = {(g["event"], g.get("source") or g.get("sink")) for g in logs}
            return ("poll.failed", "evil") in events and any(
                g.get("sink") == "hec" and g.get("error") for g in logs
            )

        logs = daemon.wait_for(failed_both, timeout=60)
        api = next(g["url"] for g in logs if g["event"] == "api.started")
        healthz = fetch(f"{api}/healthz")  # what anyone may see
        announced = orjson.loads((tmp_path / "db.duckdb.api.json").read_bytes())
        details = fetch(f"{api}/healthz", announced.get("token"))  # what its owner sees
        assert daemon.stop() == 0
        export = run_cli(
            "export", "--sink", "hec", "--config", str(config), env={SINK_ENV: sink_token}
        )
    assert export.returncode == 1 and "***" in export.stdout + export.stderr
    assert b"***" in details and b"evil" in details
    assert receiver.requests and echo.seen and api_token in echo.seen[0]
    log = orjson.dumps(daemon.logs).decode()
    assert "***" in log
    status = run_cli("status", "--db", str(tmp_path / "db.duckdb"), "--format", "table")
    assert status.returncode == 0, status.stderr
    assert "hec:" in status.stdout  # the sink's last error is shown...
    con = duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True)
    try:
        (stored,) = con.execute("SELECT last_error FROM export_cursors").fetchone() or ("",)
    finally:
        con.close()
    assert "***" in stored  # ...and was stored redacted
    outputs = [
        healthz.decode(),
        details.decode(),
        log,
        status.stdout,
        status.stderr,
        export.stdout,
        export.stderr,
    ]
    outputs.append(stored)
    assert_clean("\n".join(outputs), api_token, sink_token)
    for path in tmp_path.glob("db.duckdb*"):
        assert_clean(path.read_bytes(), api_token, sink_token)


def test_unexpected_exceptions_and_library_warnings_are_reported_redacted(tmp_path: Path) -> None:
    value = canary("boom")
    script = tmp_path / "boom.py"
    script.write_text(
        "import os, threading\n"
        "from ingest.base import logs\n"
        "from ingest.base.secrets import Secret\n"
        "logs.setup('info')\n"
        "s = Secret(os.environ['V'])\n"
        "import logging, warnings\n"
        "logging.getLogger('somelib').warning('lib %s', s.reveal())\n"
        "warnings.warn('careful ' + s.reveal())\n"
        "t = threading.Thread(target=lambda: (_ for _ in ()).throw(RuntimeError(s.reveal())))\n"
        "t.start(); t.join()\n"
        "raise RuntimeError('main ' + s.reveal())\n"
    )
    run = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={"V": value, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=30,
        check=False,
    )
    assert run.returncode == 1
    assert "RuntimeError: main ***" in run.stderr and "RuntimeError: ***" in run.stderr
    lines = [orjson.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines] == ["somelib.message", "py.message"]
    assert lines[0]["message"] == "lib ***" and "UserWarning: careful ***" in lines[1]["message"]
    assert_clean(run.stderr, value)

"""Outbound: no proxy from the environment, and no secret in clear text to a proxy.

A tiny proxy on 127.0.0.1 records every byte it receives. With ``HTTP_PROXY``,
``HTTPS_PROXY`` and ``ALL_PROXY`` pointing at it, neither an HTTP sink, nor ``oktaduck
export --to``, nor the Okta client sends it anything. A proxy that is configured carries only
a ``CONNECT`` tunnel to an ``https://`` target, and an ``http://`` target with a proxy is
refused when the configuration is loaded.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import ConfigError, OktaduckError, UnsafeURL
from ingest.base.secrets import Secret
from ingest.collect.connect import open_client
from ingest.collect.settings import SourceConfig
from ingest.config import load_config
from ingest.export.sinks.http import HttpSink, HttpSinkConfig
from ingest.okta.urls import OrgURL
from tests.helpers import START, TOKEN, TOKEN_ENV, Sim, run_cli, source_for
from tests.receivers import HttpReceiver

SINK_TOKEN = "sink-token-for-the-outbound-tests-0123"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


class RecordingProxy:
    """Accepts connections, records what arrives, answers 502 and closes."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 1 << 20:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                with proxy.lock:
                    proxy.received.append(data)
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def everything(self) -> bytes:
        with self.lock:
            return b"".join(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    server = RecordingProxy()
    yield server
    server.stop()


@pytest.fixture
def proxy_env(proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every proxy variable pointing at the recording proxy, nothing exempted."""
    env = {name: proxy.url for name in PROXY_VARIABLES}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return env


def test_the_http_sink_ignores_proxy_variables(
    proxy: RecordingProxy, proxy_env: dict[str, str]
) -> None:
    with HttpReceiver() as receiver:
        sink = HttpSink(HttpSinkConfig(url=receiver.url, token=Secret(SINK_TOKEN)))
        sink.send([b'{"n":1}', b'{"n":2}'])
        sink.close()
    assert receiver.accepted_lines() == [b'{"n":1}', b'{"n":2}']
    assert proxy.everything() == b""


def test_a_one_off_export_ignores_proxy_variables(
    live_sim: Sim, proxy: RecordingProxy, proxy_env: dict[str, str], tmp_path: Path
) -> None:
    db = tmp_path / "okta.duckdb"
    now = datetime.now(UTC)
    live_sim.org.add(live_sim.org.generator.stream(5, now - timedelta(minutes=30), now))
    poll = run_cli(
        "poll", "--org", live_sim.url, "--db", str(db), "--token-env", TOKEN_ENV,
        env={**proxy_env, TOKEN_ENV: TOKEN},
    )  # fmt: skip
    assert poll.returncode == 0, poll.stderr
    with HttpReceiver() as receiver:
        run = run_cli(
            "export",
            "--to",
            receiver.url,
            "--db",
            str(db),
            env={**proxy_env, "OKTADUCK_EXPORT_TOKEN": SINK_TOKEN},
        )
    assert run.returncode == 0, run.stderr
    assert len(receiver.accepted_lines()) == 5
    assert receiver.accepted[0].headers["authorization"] == f"Bearer {SINK_TOKEN}"
    assert proxy.everything() == b""


def test_the_okta_client_ignores_proxy_variables(
    sim: Sim, proxy: RecordingProxy, proxy_env: dict[str, str], token_env: str
) -> None:
    sim.org.add(sim.org.generator.stream(5, START - timedelta(minutes=30), START))
    client = open_client(source_for(sim), FakeClock(START))
    with client.http:
        page = client.fetch(OrgURL.parse(sim.url).logs_url)
    assert page.decoded
    assert proxy.everything() == b""


def test_a_configured_proxy_only_sees_a_tunnel(proxy: RecordingProxy) -> None:
    target = "https://127.0.0.1:9/services/collector"
    sink = HttpSink(
        HttpSinkConfig(url=target, token=Secret(SINK_TOKEN), proxy=proxy.url, timeout=5)
    )
    with pytest.raises(OktaduckError):
        sink.send([b'{"secret":"event"}'])
    sink.close()
    seen = proxy.everything()
    assert seen.startswith(b"CONNECT 127.0.0.1:9 ")
    assert SINK_TOKEN.encode() not in seen and b"event" not in seen


def test_the_source_proxy_is_used_only_when_configured(
    proxy: RecordingProxy, token_env: str
) -> None:
    source = SourceConfig(
        name="acme",
        org=OrgURL.parse("https://127.0.0.1:9"),
        token_env=TOKEN_ENV,
        proxy=proxy.url,
        timeout=5,
    )
    client = open_client(source, FakeClock(START))
    with client.http, pytest.raises(httpx.ProxyError):
        client.http.get(source.org.logs_url)
    seen = proxy.everything()
    assert seen.startswith(b"CONNECT 127.0.0.1:9 ")
    assert TOKEN.encode() not in seen


def config_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "oktaduck.toml"
    path.write_text(body)
    return path


def test_a_plain_http_org_with_a_proxy_is_refused_at_load(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        '[[sources]]\nname = "a"\norg_url = "http://127.0.0.1:8080"\n'
        'proxy = "http://proxy.internal:3128"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and "sources[0].proxy" in str(caught.value)
    check = run_cli("config", "check", "--config", str(path))
    assert check.returncode == 2 and "sources[0].proxy" in check.stderr


def test_a_plain_http_sink_with_a_proxy_is_refused_at_load(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        '[[sources]]\nname = "a"\norg_url = "https://acme.okta.com"\n'
        '[[sinks]]\nname = "hec"\ntype = "http"\nurl = "http://splunk.internal:8088"\n'
        'allow_insecure = true\nproxy = "http://proxy.internal:3128"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and "sinks[0]" in message and "proxy" in message


def test_open_client_refuses_a_proxy_for_a_plain_http_org(token_env: str) -> None:
    source = SourceConfig(
        name="acme", org=OrgURL.parse("http://127.0.0.1:9"), token_env=TOKEN_ENV, proxy="http://p:1"
    )
    with pytest.raises(UnsafeURL):
        open_client(source, FakeClock(START))


def test_a_proxy_password_is_never_shown(tmp_path: Path) -> None:
    password = "proxy-password-0123456789"
    config = HttpSinkConfig(url="https://127.0.0.1:9", proxy=f"http://u:{password}@127.0.0.1:9")
    assert password not in repr(config)
    err = ConfigError(f"cannot reach http://u:{password}@127.0.0.1:9")
    assert password not in str(err)

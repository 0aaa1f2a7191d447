"""The simulator over real HTTP: headers, links, control API, faults and the serve command."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from ingest.base.clock import FakeClock, rfc3339_ms
from ingest.base.errors import ConfigError
from ingest.simulate import DEMO_TOKEN, OrgConfig, SimulatedOrg, SimulatorServer
from ingest.simulate import server as server_module
from ingest.simulate.options import SimulateOptions, add_arguments, options_from
from ingest.simulate.server import (
    parse_events,
    seed_org,
    serve_forever,
)

TOKEN = "test-token"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
AUTH = {"Authorization": f"SSWS {TOKEN}"}


@dataclass
class Sim:
    clock: FakeClock
    org: SimulatedOrg
    server: SimulatorServer
    client: httpx.Client

    @property
    def logs_url(self) -> str:
        return f"{self.server.url}/api/v1/logs"


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    started: list[Sim] = []

    def make(timeout: float = 5, **config: Any) -> Sim:
        clock = FakeClock(NOW)
        config.setdefault("tokens", frozenset({TOKEN}))
        org = SimulatedOrg(OrgConfig(now=clock.now, **config))
        sim = Sim(clock, org, SimulatorServer(org), httpx.Client(headers=AUTH, timeout=timeout))
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.client.close()
        sim.server.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


def add_some(sim: Sim, count: int = 5) -> list[dict[str, Any]]:
    events = sim.org.generator.stream(count, NOW - timedelta(minutes=30), NOW)
    sim.org.add(events, delay=0)
    return events


# -- headers and links -----------------------------------------------------------------------


def test_link_headers_are_two_separate_lines(sim: Sim) -> None:
    add_some(sim)
    url = f"{sim.logs_url}?limit=2"
    response = sim.client.get(url)
    lines = response.headers.get_list("link")
    assert len(lines) == 2
    assert lines[0] == f'<{url}>; rel="self"'
    assert lines[1].endswith('>; rel="next"') and "&after=" in lines[1]
    assert response.links["next"]["url"] == lines[1][1 : lines[1].index(">")]


def test_every_response_carries_okta_headers_and_the_fake_date(sim: Sim) -> None:
    statuses = [
        sim.client.get(sim.logs_url).status_code,
        sim.client.get(f"{sim.logs_url}?limit=-1").status_code,
        httpx.get(sim.logs_url, headers={"Authorization": "SSWS nope"}).status_code,
    ]
    assert statuses == [200, 400, 401]
    for response in (
        sim.client.get(sim.logs_url),
        sim.client.get(f"{sim.logs_url}?limit=-1"),
        httpx.get(sim.logs_url, headers={"Authorization": "SSWS nope"}),
    ):
        headers = response.headers
        assert headers["Content-Type"] == "application/json"
        assert len(headers["X-Okta-Request-Id"]) == 27
        assert headers["X-Rate-Limit-Limit"] == "600"
        assert int(headers["X-Rate-Limit-Remaining"]) <= 600
        assert int(headers["X-Rate-Limit-Reset"]) == int(NOW.timestamp()) + 60
        assert headers["Date"] == "Sun, 01 Nov 2026 12:00:00 GMT"
    ids = {sim.client.get(sim.logs_url).headers["X-Okta-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_self_link_is_the_request_url_exactly_and_next_replaces_after(sim: Sim) -> None:
    add_some(sim, 3)
    query = "limit=1&foo=a%2Bb&since=2026-11-01T11%3A00%3A00.000Z&after=0_0&sortOrder=ASCENDING"
    url = f"{sim.logs_url}?{query}"
    response = sim.client.get(url)
    assert response.links["self"]["url"] == url
    following = response.links["next"]["url"]
    assert following.startswith(f"{sim.logs_url}?limit=1&foo=a%2Bb&since=2026-11-01T11%3A00%3A")
    assert following.endswith("&sortOrder=ASCENDING") and "after=0_0" not in following
    assert following.count("after=") == 1


def test_self_link_uses_the_host_header(sim: Sim) -> None:
    response = sim.client.get(f"{sim.logs_url}?limit=5", headers={"Host": "acme.okta.test"})
    assert response.links["self"]["url"] == "http://acme.okta.test/api/v1/logs?limit=5"


def test_unknown_paths_are_404_with_an_okta_envelope(sim: Sim) -> None:
    response = sim.client.get(f"{sim.server.url}/api/v1/users")
    assert response.status_code == 404
    assert response.json()["errorCode"] == "E0000007"
    assert set(response.json()) == {
        "errorCode",
        "errorSummary",
        "errorLink",
        "errorId",
        "errorCauses",
    }
    assert sim.client.post(sim.logs_url).json()["errorCode"] == "E0000022"
    assert sim.client.post(f"{sim.server.url}/elsewhere").status_code == 404


def test_server_binds_an_ephemeral_loopback_port_and_stops(sim: Sim) -> None:
    assert sim.server.url == f"http://127.0.0.1:{sim.server.port}"
    assert sim.server.port > 0
    sim.server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.logs_url, headers=AUTH, timeout=1)
    sim.server.stop()  # idempotent


# -- control API -----------------------------------------------------------------------------


def test_control_api_adds_ndjson_and_json_array_events(sim: Sim) -> None:
    gen = sim.org.generator
    first = [gen.event("user.session.start", NOW - timedelta(minutes=m)) for m in (9, 8)]
    second = [gen.event("user.authentication.sso", NOW - timedelta(minutes=7))]
    ndjson = b"\n".join(orjson.dumps(e) for e in first) + b"\n"
    assert sim.client.post(f"{sim.server.url}/__sim/events", content=ndjson).json() == {"added": 2}
    array = orjson.dumps(second)
    assert sim.client.post(f"{sim.server.url}/__sim/events", content=array).status_code == 200
    got = sim.client.get(sim.logs_url).json()
    assert [e["uuid"] for e in got] == [e["uuid"] for e in [*first, *second]]


def test_control_api_late_events_are_persisted_now(sim: Sim) -> None:
    add_some(sim, 2)
    cursor = sim.client.get(sim.logs_url).links["next"]["url"]
    old = sim.org.generator.event("group.user_membership.add", NOW - timedelta(hours=3))
    undated = {"uuid": "no-published", "eventType": "x"}
    body = orjson.dumps([old, undated])
    response = sim.client.post(f"{sim.server.url}/__sim/events?late_seconds=600", content=body)
    assert response.json() == {"added": 2}
    got = sim.client.get(cursor).json()
    assert [e["uuid"] for e in got] == [old["uuid"], "no-published"]
    assert got[0] == old
    assert got[1]["published"] == rfc3339_ms(NOW - timedelta(seconds=600))


def test_control_api_generates_events(sim: Sim) -> None:
    response = sim.client.post(f"{sim.server.url}/__sim/generate?count=40&minutes=30")
    assert response.json() == {"added": 40}
    assert len(sim.org) == 40
    sim.clock.advance(60)  # let the last ones' persistence delays pass
    assert len(sim.client.get(f"{sim.logs_url}?limit=1000").json()) == 40


def test_control_api_queues_faults_and_rejects_bad_input(sim: Sim) -> None:
    response = sim.client.post(f"{sim.server.url}/__sim/faults?kind=500&count=2")
    assert response.json() == {"queued": ["500", "500"]}
    bad = sim.client.post(f"{sim.server.url}/__sim/faults?kind=meteor")
    assert bad.status_code == 400 and "unknown fault" in bad.json()["errorSummary"]
    junk = sim.client.post(f"{sim.server.url}/__sim/events", content=b"{not json")
    assert junk.status_code == 400
    count = sim.client.post(f"{sim.server.url}/__sim/generate?count=x")
    assert count.status_code == 400
    assert sim.org.pending_faults() == ["500", "500"]


def test_parse_events_accepts_both_shapes_and_rejects_others() -> None:
    assert parse_events(b' [{"a": 1}] ') == [{"a": 1}]
    assert parse_events(b'{"a": 1}\n\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]
    assert parse_events(b"") == []
    with pytest.raises(ValueError, match="JSON object"):
        parse_events(b"[1, 2]")


# -- faults ----------------------------------------------------------------------------------


def test_fault_500_is_an_okta_internal_error_then_service_resumes(sim: Sim) -> None:
    sim.org.inject("500", count=2)
    first, second, third = (sim.client.get(sim.logs_url) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (500, 500, 200)
    assert first.json()["errorCode"] == "E0000009"
    assert first.headers["X-Okta-Request-Id"]
    assert sim.org.status_counts() == {500: 2, 200: 1}


def test_fault_503_is_an_html_page(sim: Sim) -> None:
    sim.org.inject("503")
    response = sim.client.get(sim.logs_url)
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_fault_truncated_body_is_a_protocol_error(sim: Sim) -> None:
    add_some(sim, 20)
    sim.org.inject("truncated")
    with pytest.raises(httpx.RemoteProtocolError):
        sim.client.get(sim.logs_url)
    assert sim.org.served_uuids() == set()  # an incomplete page does not count as served
    assert len(sim.client.get(sim.logs_url).json()) == 20


def test_fault_invalid_json_is_a_200_that_does_not_parse(sim: Sim) -> None:
    sim.org.inject("invalid_json")
    response = sim.client.get(sim.logs_url)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_fault_slow_times_out_a_short_client_timeout(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(timeout=0.1, slow_seconds=0.4)
    sim.org.inject("slow")
    with pytest.raises(httpx.ReadTimeout):
        sim.client.get(sim.logs_url)


def test_fault_slow_answers_normally_when_the_client_waits(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(timeout=3, slow_seconds=0.2)
    sim.org.inject("slow")
    response = sim.client.get(sim.logs_url)
    assert response.status_code == 200
    assert response.elapsed >= timedelta(seconds=0.2)


def test_fault_reset_drops_the_connection(sim: Sim) -> None:
    sim.org.inject("reset")
    with pytest.raises(httpx.TransportError):
        sim.client.get(sim.logs_url)
    assert sim.client.get(sim.logs_url).status_code == 200
    assert sim.org.status_counts() == {0: 1, 200: 1}


def test_fault_429_resets_a_few_seconds_ahead(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(fault_reset_seconds=7)
    sim.org.inject("429")
    response = sim.client.get(sim.logs_url)
    assert response.status_code == 429
    assert response.json()["errorCode"] == "E0000047"
    assert response.headers["X-Rate-Limit-Remaining"] == "0"
    assert response.headers["X-Rate-Limit-Reset"] == str(int(NOW.timestamp()) + 7)


def test_fault_concurrency_has_zero_limit_and_remaining(sim: Sim) -> None:
    sim.org.inject("concurrency")
    response = sim.client.get(sim.logs_url)
    assert response.status_code == 429
    assert response.headers["X-Rate-Limit-Limit"] == "0"
    assert response.headers["X-Rate-Limit-Remaining"] == "0"


# -- `oktaduck simulate` ---------------------------------------------------------------------


def test_add_arguments_maps_to_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert options_from(parser.parse_args([])) == SimulateOptions()
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--events",
            "10",
            "--trickle",
            "6",
            "--rate-limit",
            "20",
            "--window-seconds",
            "5",
            "--hours",
            "2",
            "--seed",
            "3",
        ]
    )
    assert options_from(args) == SimulateOptions(
        port=0, events=10, hours=2, seed=3, trickle_per_minute=6, rate_limit=20, window_seconds=5
    )
    with pytest.raises(ConfigError, match="port"):
        options_from(parser.parse_args(["--port", "70000"]))


def test_seeded_org_has_a_burst_a_lockout_and_late_events() -> None:
    clock = FakeClock(NOW)
    org = SimulatedOrg(OrgConfig(now=clock.now))
    seed_org(org, 1000, 24)
    assert len(org) == 1000
    visible = org.visible_uuids()
    assert 950 < len(visible) < 1000
    clock.advance(180)
    assert len(org.visible_uuids()) == 1000
    response = org.logs(
        {"limit": "1000", "since": rfc3339_ms(NOW - timedelta(days=2))},
        f"SSWS {DEMO_TOKEN}",
        "http://sim/api/v1/logs",
    )
    events = response.json()
    failures = [e for e in events if (e["outcome"] or {}).get("result") == "FAILURE"]
    by_ip = max(
        {e["client"]["ipAddress"] for e in failures},
        key=lambda ip: sum(e["client"]["ipAddress"] == ip for e in failures),
    )
    assert sum(e["client"]["ipAddress"] == by_ip for e in failures) >= 24
    assert any(e["eventType"] == "user.account.lock" for e in events)


def run_in_thread(
    options: SimulateOptions, stop: threading.Event
) -> tuple[threading.Thread, list[SimulatorServer], io.StringIO]:
    ready = threading.Event()
    servers: list[SimulatorServer] = []
    out = io.StringIO()

    def on_ready(server: SimulatorServer) -> None:
        servers.append(server)
        ready.set()

    thread = threading.Thread(
        target=serve_forever, args=(options,), kwargs={"stop": stop, "ready": on_ready, "out": out}
    )
    thread.start()
    assert ready.wait(10)
    return thread, servers, out


def test_serve_forever_serves_a_seeded_org_with_the_demo_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OKTA_API_TOKEN", raising=False)
    stop = threading.Event()
    thread, servers, out = run_in_thread(SimulateOptions(port=0, events=300), stop)
    try:
        url = servers[0].url
        line = out.getvalue()
        assert line.count("\n") == 1 and url in line and f"demo token {DEMO_TOKEN}" in line
        response = httpx.get(
            f"{url}/api/v1/logs?limit=1000", headers={"Authorization": f"SSWS {DEMO_TOKEN}"}
        )
        assert response.status_code == 200 and len(response.json()) > 250
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_serve_forever_uses_the_environment_token_and_never_prints_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OKTA_API_TOKEN", "s3cret-value")
    stop = threading.Event()
    thread, servers, out = run_in_thread(SimulateOptions(port=0, events=10), stop)
    try:
        url = f"{servers[0].url}/api/v1/logs"
        assert "s3cret-value" not in out.getvalue() and "OKTA_API_TOKEN" in out.getvalue()
        demo = httpx.get(url, headers={"Authorization": f"SSWS {DEMO_TOKEN}"})
        assert demo.status_code == 401
        assert httpx.get(url, headers={"Authorization": "SSWS s3cret-value"}).status_code == 200
    finally:
        stop.set()
        thread.join(5)


def test_serve_forever_reports_a_busy_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match="cannot listen"):
            serve_forever(SimulateOptions(port=port, events=0), stop=threading.Event())


class _TickingStop(threading.Event):
    """A stop event whose waits advance a fake clock instead of sleeping, ``ticks`` times."""

    def __init__(self, clock: FakeClock, ticks: int) -> None:
        super().__init__()
        self.clock = clock
        self.ticks = ticks

    def wait(self, timeout: float | None = None) -> bool:
        if self.ticks == 0:
            return True
        self.ticks -= 1
        self.clock.advance(timeout or 0)
        return False


def test_trickle_keeps_adding_events_that_are_visible_at_once() -> None:
    clock = FakeClock(NOW)
    org = SimulatedOrg(OrgConfig(now=clock.now))
    server_module._trickle(org, 60, _TickingStop(clock, ticks=12))  # one minute of 5 s ticks
    assert len(org) == 60
    assert len(org.visible_uuids()) == 60


def test_module_entry_point_serves_until_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OKTA_API_TOKEN"}
    command = [sys.executable, "-m", "ingest.simulate", "--port", "0", "--events", "50"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" at ", 1)[1].split()[0]
        response = httpx.get(f"{url}/api/v1/logs", headers={"Authorization": f"SSWS {DEMO_TOKEN}"})
        assert response.status_code == 200 and response.json()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0

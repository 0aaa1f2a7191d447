"""The building blocks the tests share: the simulated org, the CLI and daemon runners, the
daemon's configuration file, store readers. Fixtures built on them are in tests/conftest.py;
the feeds' data set is in tests/helpers/feeds.py, the golden cases in tests/helpers/golden.py.

Test modules import from here, never from one another (tests/test_house.py checks it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.collect.settings import SourceConfig
from ingest.okta.client import ClientPolicy
from ingest.okta.urls import OrgURL
from ingest.simulate.org import OrgConfig, SimulatedOrg
from ingest.simulate.server import SimulatorServer
from ingest.store.db import Store

TOKEN = "test-token-0123456789abcdef"
TOKEN_ENV = "OKTADUCK_TEST_TOKEN"
REPO = Path(__file__).resolve().parents[2]
# Real LogEvents from Okta's docs and Cortex XSOAR's content, kept with the tests (README)
SAMPLES = REPO / "tests" / "samples"
START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class Sim:
    org: SimulatedOrg
    server: SimulatorServer
    clock: FakeClock | None

    @property
    def url(self) -> str:
        return self.server.url


def make_sim(clock: FakeClock | None = None, **config: Any) -> Sim:
    settings: dict[str, Any] = {"tokens": frozenset({TOKEN}), "limit": 0, "seed": 3}
    if clock is not None:
        settings["now"] = clock.now
    settings.update(config)
    org = SimulatedOrg(OrgConfig(**settings))
    return Sim(org, SimulatorServer(org), clock)


def source_for(
    sim: Sim, *, page_limit: int = 100, lookback_h: float = 24, **kw: Any
) -> SourceConfig:
    policy = kw.pop("client", ClientPolicy(backoff_initial=0.5, retry_for=120))
    return SourceConfig(
        name="acme",
        org=OrgURL.parse(sim.url),
        token_env=TOKEN_ENV,
        lookback=timedelta(hours=lookback_h),
        page_limit=page_limit,
        client=policy,
        timeout=5.0,
        **kw,
    )


def stored_uuids(db: Path | Store) -> list[str]:
    """The uuids in a store's events table, in table order: of a DuckDB file (opened read-only
    for the call) or of an open ``Store``."""
    if isinstance(db, Store):
        return [r[0] for r in db.con.execute("SELECT uuid FROM events").fetchall()]
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT uuid FROM events").fetchall()]
    finally:
        con.close()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``oktaduck`` in a real subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OKTADUCK_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


def daemon_api(db: Path) -> tuple[str, dict[str, str]]:
    """The running daemon's API URL and the headers that authorize a request to it."""
    doc = orjson.loads(db.with_name(db.name + ".api.json").read_bytes())
    return str(doc["url"]), {"Authorization": f"Bearer {doc['token']}"}


# Fixtures only subprocess tests (the real clock) and rsyslog tests ask for: a test that uses
# one is slow whether or not it says so, and make test-fast leaves it out.
SLOW_FIXTURES = frozenset({"live_sim", "rsyslog", "tls_rsyslog"})


def mark_slow_by_fixture(items: Iterable[pytest.Item]) -> None:
    """Mark ``slow`` every collected test that asks for one of ``SLOW_FIXTURES``."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


_RUNNING: list[Daemon] = []


def reap_daemons() -> None:
    """Kill every daemon a test started and left running (the autouse fixture in conftest)."""
    while _RUNNING:
        daemon = _RUNNING.pop()
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        if daemon.proc.stderr is not None:
            daemon.proc.stderr.close()


class Daemon:
    """``oktaduck run`` in a subprocess, read through its JSON logs on stderr."""

    def __init__(self, config: Path, env: dict[str, str], wrap: tuple[str, ...] = ()) -> None:
        """``wrap``: a command that execs the daemon, e.g. ``("prlimit", "--nofile=160")``."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OKTADUCK_")}
        full_env.update(env)
        self.proc = subprocess.Popen(
            [
                *wrap,
                sys.executable,
                "-m",
                "ingest.cli",
                "--log-level",
                "info",
                "run",
                "--config",
                str(config),
            ],
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=REPO,
        )
        self.logs: list[dict[str, Any]] = []
        _RUNNING.append(self)

    def wait_for(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 180
    ) -> list[dict[str, Any]]:
        """Read log lines until ``done(logs)`` is true; a daemon that goes quiet for longer
        than ``timeout`` is killed so the test fails instead of hanging."""
        assert self.proc.stderr is not None
        watchdog = threading.Timer(timeout, self.proc.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            return self._read_until(done)
        finally:
            watchdog.cancel()

    def _read_until(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.logs.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                raise AssertionError(f"daemon printed a non-JSON line: {line!r}") from None
            if done(self.logs):
                return self.logs
        raise AssertionError(f"daemon exited ({self.proc.wait()}) before: {self.logs[-5:]}")

    def caught_up(self, *sources: str) -> None:
        def done(logs: list[dict[str, Any]]) -> bool:
            seen = {g["source"] for g in logs if g["event"] == "poll.cycle_done" and g["caught_up"]}
            return set(sources) <= seen

        self.wait_for(done)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


def daemon_toml(
    path: Path,
    sources: Iterable[tuple[str, str]] = (("acme", "https://acme.okta.com"),),
    *,
    token_env: str = TOKEN_ENV,
    source_keys: str = "",
    extra: str = "",
    storage: str = "okta.duckdb",
) -> Path:
    """Write a daemon configuration to ``path``: the store (relative paths are relative to the
    file), the query API on an ephemeral loopback port, one ``[[sources]]`` block per
    ``(name, org_url)`` holding ``token_env`` and ``source_keys`` (TOML lines), then ``extra``
    (more tables: sinks, feeds...). Returns ``path``."""
    blocks = [f'[storage]\npath = "{storage}"\n\n[api]\nlisten = "127.0.0.1:0"\n']
    for name, url in sources:
        block = f'[[sources]]\nname = "{name}"\norg_url = "{url}"\ntoken_env = "{token_env}"\n'
        blocks.append(block + (source_keys.strip() + "\n" if source_keys.strip() else ""))
    if extra.strip():
        blocks.append(extra.strip() + "\n")
    path.write_text("\n".join(blocks))
    return path


def acme_config(tmp_path: Path, org_url: str = "https://acme.okta.com", extra: str = "") -> Path:
    """``tmp_path/oktaduck.toml`` for one org: the store ``okta.duckdb`` beside it, the API on
    an ephemeral port, source ``acme`` at ``org_url`` with its token in ``ACME_TOKEN``, polled
    hourly (one cycle in a test), then ``extra`` (sinks, feeds...)."""
    return daemon_toml(
        tmp_path / "oktaduck.toml",
        [("acme", org_url)],
        token_env="ACME_TOKEN",
        source_keys='poll_interval = "1h"',
        extra=extra,
    )


def acme_daemon(
    sim: Sim,
    tmp_path: Path,
    *batches: Iterable[dict[str, Any]],
    wrap: tuple[str, ...] = (),
) -> Iterator[tuple[Daemon, Path]]:
    """For a fixture: a daemon on ``acme_config`` for ``sim``, once each batch of events was
    added to the org and the daemon has caught up; yields it and its store file, then stops
    it unless the test did."""
    for batch in batches:
        sim.org.add(batch)
    d = Daemon(acme_config(tmp_path, sim.url), {"ACME_TOKEN": TOKEN}, wrap)
    d.caught_up("acme")
    yield d, tmp_path / "okta.duckdb"
    if d.proc.poll() is None:
        d.stop()

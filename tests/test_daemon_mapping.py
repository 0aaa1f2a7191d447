"""The daemon maps every source's pages in one shared mapping child, bounds the bytes of
pages in flight across sources, and survives the child's death without losing a page."""

from __future__ import annotations

import dataclasses
import os
import platform
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.base.clock import FakeClock, SystemClock
from ingest.base.errors import ConfigError, MapperFailed
from ingest.collect.budget import ByteBudget, Holding
from ingest.collect.connect import open_client
from ingest.collect.poll import PollResult, poll_cycle
from ingest.config import load_config
from ingest.mapping import CompiledMapping
from ingest.service.daemon import Daemon
from ingest.service.mappers import SharedMapper
from ingest.service.memory import tune_malloc
from ingest.store.db import Store
from ingest.store.lake import open_cursor
from tests.helpers import TOKEN, TOKEN_ENV, Sim, daemon_toml, make_sim, source_for, stored_uuids
from tests.helpers import Daemon as RunningDaemon


def until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait for a state nothing announces (a thread blocked, a poll done), in short slices."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    pause = threading.Event()
    while not check():
        assert datetime.now(UTC) < deadline, "timed out"
        pause.wait(0.02)


# -- the budget on its own ------------------------------------------------------------------


def test_a_take_waits_for_room_first_come_first_served() -> None:
    budget = ByteBudget(100)
    assert budget.take(60)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(budget.take(50)))
    waiter.start()
    until(lambda: budget.waiting == 1)
    assert not budget.try_take(10)  # it would fit, but someone waits before it
    budget.give(60)
    waiter.join(5)
    assert got == [True] and budget.used == 50 and budget.peak == 60 and budget.waits == 1
    budget.give(50)
    assert budget.used == 0


def test_a_page_larger_than_the_budget_goes_alone() -> None:
    budget = ByteBudget(10)
    assert budget.take(500)  # nothing else in flight: it goes
    assert not budget.try_take(1)
    budget.give(500)
    assert budget.try_take(10) and not budget.try_take(1)


def test_a_stopped_wait_takes_nothing() -> None:
    budget = ByteBudget(10)
    assert budget.take(10)
    stop = threading.Event()
    stop.set()
    assert not budget.take(5, stop)
    assert budget.used == 10 and budget.waiting == 0


def test_a_holding_gives_back_what_its_cycle_left() -> None:
    budget = ByteBudget(1 << 20)
    holding = Holding(budget, "acme")
    assert holding.take(holding.estimate(100), None)
    assert budget.used == 100 * 3072  # no page seen yet: 3 KiB an event
    charged = holding.settle(100 * 3072, 100, 200_000)  # the page weighed 200 kB
    assert charged == 200_000 and budget.used == 200_000
    assert budget.estimate("acme", 100) == 200_000  # the next page is expected alike
    holding.release_all()
    assert budget.used == 0 and holding.held == 0


# -- sources sharing a mapping child and a budget --------------------------------------------


@pytest.fixture
def orgs(clock: FakeClock) -> Iterator[list[Sim]]:
    sims = [make_sim(clock, seed=40 + i) for i in range(4)]
    now = clock.now()
    for sim in sims:
        sim.org.add(
            sim.org.generator.stream(900, now - timedelta(hours=6), now - timedelta(minutes=2))
        )
    yield sims
    for sim in sims:
        sim.server.stop()


@pytest.mark.slow  # starts the mapping child
def test_sources_sharing_a_tiny_budget_store_everything_once(
    orgs: list[Sim], store: Store, clock: FakeClock, token_env: str, mapping: CompiledMapping
) -> None:
    # pages of 150 events weigh ~400 kB: the budget holds two of them, four sources want more
    budget = ByteBudget(1 << 20)
    shared = SharedMapper(mapping)
    results: dict[str, PollResult] = {}
    errors: list[BaseException] = []

    def poll(name: str, sim: Sim) -> None:
        source = dataclasses.replace(source_for(sim, page_limit=150), name=name)
        client = open_client(source, clock)
        try:
            results[name] = poll_cycle(source, store, client, clock, mapper=shared, budget=budget)
        except BaseException as err:  # reported below
            errors.append(err)
        finally:
            client.http.close()

    threads = [threading.Thread(target=poll, args=(f"org{i}", sim)) for i, sim in enumerate(orgs)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        shared.close()
    assert errors == []
    assert all(r.caught_up and r.stored == 900 for r in results.values())
    for i, sim in enumerate(orgs):
        got = store.con.execute("SELECT uuid FROM events WHERE source = ?", [f"org{i}"]).fetchall()
        assert sorted(u for (u,) in got) == sorted(sim.org.visible_uuids())
    assert len(stored_uuids(store)) == 3600
    assert budget.used == 0  # every byte given back
    assert budget.waits > 0  # the budget did hold sources back
    assert budget.largest_page > 300_000
    # never more than the budget, but for one page charged over its estimate as it arrived
    assert budget.peak <= budget.capacity + budget.largest_page
    assert shared.starts == 1


@pytest.mark.slow  # starts the mapping child
def test_a_budget_smaller_than_a_page_lets_one_page_at_a_time(
    orgs: list[Sim], store: Store, clock: FakeClock, token_env: str, mapping: CompiledMapping
) -> None:
    budget = ByteBudget(1024)
    with_child = SharedMapper(mapping)
    try:
        for i, sim in enumerate(orgs[:2]):
            source = dataclasses.replace(source_for(sim, page_limit=300), name=f"org{i}")
            client = open_client(source, clock)
            try:
                result = poll_cycle(source, store, client, clock, mapper=with_child, budget=budget)
            finally:
                client.http.close()
            assert result.caught_up and result.stored == 900
    finally:
        with_child.close()
    assert budget.used == 0
    # alone: never a second page beside the one in flight (the first is guessed at 3 KiB an
    # event, the rest from the page before)
    assert budget.peak <= max(300 * 3072, budget.largest_page) * 1.5
    assert len(set(stored_uuids(store))) == 1800


def test_a_closed_shared_mapper_refuses_bodies(mapping: CompiledMapping) -> None:
    shared = SharedMapper(mapping)
    shared.close()
    with pytest.raises(MapperFailed, match="stopping"):
        shared.decode(b"[]")
    assert shared.pid is None and shared.starts == 0


# -- the daemon ------------------------------------------------------------------------------


@pytest.fixture
def live_orgs() -> Iterator[list[Sim]]:
    sims = [make_sim(None, seed=60 + i) for i in range(3)]
    now = datetime.now(UTC)
    for sim in sims:
        sim.org.add(
            sim.org.generator.stream(300, now - timedelta(hours=2), now - timedelta(minutes=1))
        )
    yield sims
    for sim in sims:
        sim.server.stop()


def stored(store: Store) -> int:
    """Events in a store a daemon is writing to (on a cursor of its own)."""
    cursor = open_cursor(store.con)
    try:
        row = cursor.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0
    finally:
        cursor.close()


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow  # a daemon with its mapping child, on the real clock
def test_the_daemon_maps_in_one_child_and_survives_its_death(
    live_orgs: list[Sim], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    config = load_config(
        daemon_toml(
            tmp_path / "oktaduck.toml",
            [(f"org{i}", sim.url) for i, sim in enumerate(live_orgs)],
            source_keys='poll_interval = "1s"\npage_limit = 100',
            extra="[daemon]\nmax_inflight_bytes = 1048576",
        )
    )
    stop = threading.Event()
    daemon = Daemon(config, SystemClock(), stop)
    try:
        daemon.start()
        first = daemon.mapper.pid
        assert first is not None and parent_of(first) == os.getpid()
        until(lambda: all(r.cycles >= 1 for r in daemon.runners))
        assert cpu_ticks(first) > 0  # the child parsed and mapped the pages
        assert stored(daemon.store) == 900
        # the child stops answering; every source's next poll hands it a body and waits
        os.kill(first, signal.SIGSTOP)
        now = datetime.now(UTC)
        for sim in live_orgs:
            late = sim.org.generator.stream(250, now - timedelta(minutes=5), now)
            sim.org.add_late(late, persisted_at=now)  # stored by Okta after the cursor
        until(lambda: daemon.mapper.busy >= 2)
        os.kill(first, signal.SIGKILL)
        until(lambda: any(r.failures for r in daemon.runners))
        failed = next(r for r in daemon.runners if r.failures)
        assert failed.last_error is not None and "\n" not in failed.last_error
        assert "mapping process stopped" in failed.last_error
        # retried at their next poll, with a new child: nothing lost, nothing twice
        until(lambda: stored(daemon.store) == 1650, timeout=90)
        until(lambda: all(r.failures == 0 for r in daemon.runners), timeout=30)
        assert daemon.mapper.restarts == 1 and daemon.mapper.pid not in (None, first)
        metrics = daemon.metrics()
        assert "oktaduck_mapper_restarts_total 1" in metrics
        assert "oktaduck_inflight_budget_bytes 1048576" in metrics
    finally:
        stop.set()
        assert daemon.shutdown()
    assert daemon.mapper.pid is None  # stopped with the daemon
    uuids = stored_uuids(tmp_path / "okta.duckdb")
    assert len(uuids) == len(set(uuids)) == 1650
    assert set(uuids) == set().union(*(sim.org.visible_uuids() for sim in live_orgs))


def test_the_budget_is_configured_within_range(tmp_path: Path) -> None:
    path = daemon_toml(tmp_path / "oktaduck.toml")
    assert load_config(path).daemon.max_inflight_bytes == 64 << 20
    for value, problem in [("1000", "from 1048576 to"), ('"64MiB"', "wrong type"), ("1", "from")]:
        daemon_toml(path, extra=f"[daemon]\nmax_inflight_bytes = {value}")
        with pytest.raises(ConfigError, match=problem) as err:
            load_config(path)
        assert "daemon.max_inflight_bytes" in str(err.value)
    daemon_toml(path, extra="[daemon]\nmappers = 2")
    with pytest.raises(ConfigError, match=r"daemon\.mappers: unknown key"):
        load_config(path)


def test_malloc_is_tuned_on_glibc_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    glibc = platform.libc_ver()[0] == "glibc"
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    expected = {"arena_max": 2, "mmap_threshold": 1 << 20} if glibc else {}
    assert tune_malloc() == expected
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert tune_malloc() == ({"mmap_threshold": 1 << 20} if glibc else {})


@pytest.mark.slow  # `oktaduck run` in a subprocess
def test_a_reload_starts_a_new_child_and_a_stop_ends_it(
    live_orgs: list[Sim], tmp_path: Path
) -> None:
    config = daemon_toml(
        tmp_path / "oktaduck.toml",
        [("org0", live_orgs[0].url)],
        token_env="TOK",
        source_keys='poll_interval = "1h"',
    )
    daemon = RunningDaemon(config, {"TOK": TOKEN})

    def started(count: int) -> Callable[[list[dict[str, Any]]], bool]:
        return lambda logs: sum(g["event"] == "daemon.mapper_started" for g in logs) >= count

    daemon.wait_for(started(1))
    daemon.caught_up("org0")
    first = next(g["pid"] for g in daemon.logs if g["event"] == "daemon.mapper_started")
    assert parent_of(first) == daemon.proc.pid
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(started(2))
    second = [g["pid"] for g in daemon.logs if g["event"] == "daemon.mapper_started"][1]
    assert second != first and parent_of(second) == daemon.proc.pid
    assert not Path(f"/proc/{first}").exists()  # stopped and reaped with the old config
    assert daemon.stop() == 0
    assert not Path(f"/proc/{second}").exists()
    assert len(stored_uuids(tmp_path / "okta.duckdb")) == 300

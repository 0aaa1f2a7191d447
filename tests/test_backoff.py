"""The one retry policy shared by the Okta client, the export loop and the daemon."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from ingest.base.backoff import Backoff
from ingest.base.clock import FakeClock
from ingest.service.daemon import SourceRunner
from ingest.store.db import Store
from tests.helpers import TOKEN_ENV, Sim, source_for


def test_delays_double_from_initial_and_stop_at_the_cap() -> None:
    backoff = Backoff(1.0, 10.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_huge_attempt_count_stays_at_the_cap_without_overflow() -> None:
    assert Backoff(60.0, 3600.0, jitter=0.0).delay(10_000) == 3600.0


def test_jitter_draws_from_the_lower_share_of_the_delay() -> None:
    backoff = Backoff(4.0, 100.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.delay(2) for _ in range(200)]
    assert all(4.0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 100  # really random, not a constant


def test_the_same_seed_gives_the_same_delays() -> None:
    first = Backoff(1.0, 30.0, rng=random.Random(3))
    second = Backoff(1.0, 30.0, rng=random.Random(3))
    assert [first.delay(n) for n in range(1, 8)] == [second.delay(n) for n in range(1, 8)]


@pytest.mark.parametrize("kwargs", [{"initial": -1.0}, {"maximum": -1.0}, {"jitter": 1.5}])
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    settings = {"initial": 1.0, "maximum": 2.0, **kwargs}
    with pytest.raises(ValueError):
        Backoff(**settings)  # type: ignore[arg-type]


def test_the_daemon_backs_off_a_failing_source_by_the_same_policy(
    sim: Sim, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejected token (401) backs off from four poll intervals, doubling up to an hour."""
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    source = source_for(sim, poll_interval=timedelta(seconds=60))
    runner = SourceRunner(source, store, clock, threading.Event())
    waits = []
    try:
        for _ in range(6):
            runner()
            assert runner.retry_at is not None and "E0000011" in (runner.last_error or "")
            waits.append((runner.retry_at - clock.now()).total_seconds())
            clock.advance(waits[-1])
    finally:
        if runner.client is not None:
            runner.client.http.close()
    assert waits == [240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0]
    assert runner.failures == 6

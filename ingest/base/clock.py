"""Time, made explicit: timezone-aware UTC everywhere and waits that tests can skip."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the program needs of time: the current UTC instant and an interruptible wait."""

    def now(self) -> datetime: ...

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait up to ``seconds``; return True when ``stop`` was set (the wait ended early)."""
        ...


_SLICE = 0.5  # seconds


class SystemClock:
    """The real clock. Waits block on an event, so a shutdown interrupts them at once."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if seconds <= 0:
            return bool(stop and stop.is_set())
        if stop is None:
            threading.Event().wait(seconds)
            return False
        # In slices: a signal handler that sets ``stop`` on the main thread is seen within
        # half a second even where a long wait would let the signal sit until it ends.
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if stop.wait(min(left, _SLICE)):
                return True
        return stop.is_set()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock for tests and simulations: ``wait`` advances time instantly and is recorded."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._lock = threading.Lock()
        self.waits: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return True
        self.waits.append(seconds)
        self.advance(max(seconds, 0.0))
        return False


def utc(dt: datetime) -> datetime:
    """Return ``dt`` in UTC; refuse naive datetimes instead of guessing their zone."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: oktaduck only handles timezone-aware times")
    return dt.astimezone(UTC)


def rfc3339_ms(dt: datetime) -> str:
    """Okta's timestamp form: UTC, cut to milliseconds, with a ``Z``.

    For a stored value that must not lose microseconds, see
    ``ingest.mapping.types.rfc3339_exact``.
    """
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc(dt).microsecond // 1000:03d}Z"

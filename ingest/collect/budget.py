"""A bound on the bytes of pages in flight, shared by every source of a daemon.

A page is charged from the moment its request is sent until its group is committed: while
its body is fetched and handed to the mapping child, while the mapped page waits in its
group, and while that group is being written. Before a request is sent, the source reserves
what the page will probably weigh (``estimate``: the page size asked for times the bytes of
an event on the source's last page); once the body has arrived, the reservation becomes the
body's real size. A source that finds the budget spent first hands the pages it holds to
its commit, then waits its turn (first come, first served): every waiting source then holds
only pages being committed, which are given back on their own, so the wait always ends.

Two things can carry the bytes in flight over the budget, and the peak gauge shows by how
much: a page larger than the whole budget, which goes when nothing else is in flight (one
page alone, never a deadlock), and a page heavier than its estimate, whose excess is charged
when it arrives (the body is in memory by then; waiting would not give it back).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

DEFAULT_EVENT_BYTES = 3072  # an Okta event's JSON is ~1-3 KB; a guess until a page says


class ByteBudget:
    """Bytes in flight across sources: ``take`` waits for room, ``give`` returns it."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a budget of at least one byte")
        self.capacity = capacity
        self._used = 0
        self._peak = 0
        self._waits = 0
        self._largest = 0
        self._event_bytes: dict[str, int] = {}  # per source: bytes per event of its last page
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()  # waiting takers, first come first served

    @property
    def used(self) -> int:
        return self._used

    @property
    def peak(self) -> int:
        """The most bytes in flight at any moment so far."""
        return self._peak

    @property
    def waits(self) -> int:
        """How many times a source had to wait for room."""
        return self._waits

    @property
    def largest_page(self) -> int:
        """The largest page charged so far."""
        return self._largest

    @property
    def waiting(self) -> int:
        """Sources waiting for room now."""
        return len(self._queue)

    def _fits(self, n: int) -> bool:
        return self._used == 0 or self._used + n <= self.capacity

    def _add(self, n: int) -> None:
        self._used += n
        self._peak = max(self._peak, self._used)

    def try_take(self, n: int) -> bool:
        """Take ``n`` bytes if they fit now and nobody waits before; never waits."""
        with self._cond:
            if self._queue or not self._fits(n):
                return False
            self._add(n)
            return True

    def take(self, n: int, stop: threading.Event | None = None) -> bool:
        """Wait for room for ``n`` bytes (or for nothing else to be in flight) and take them;
        False, taking nothing, once ``stop`` is set."""
        with self._cond:
            if not self._queue and self._fits(n):
                self._add(n)
                return True
            ticket = object()
            self._queue.append(ticket)
            self._waits += 1
            try:
                while not (self._queue[0] is ticket and self._fits(n)):
                    if stop is not None and stop.is_set():
                        return False
                    self._cond.wait(0.5)  # in slices: a stop is seen at once
                self._add(n)
                return True
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()

    def charge(self, n: int) -> None:
        """Charge ``n`` more bytes without waiting (bytes already in memory), or give back
        ``-n``."""
        with self._cond:
            self._add(n)
            if n < 0:
                self._cond.notify_all()

    def give(self, n: int) -> None:
        self.charge(-n)

    def estimate(self, source: str, events: int) -> int:
        """What a page of ``events`` events of ``source`` will probably weigh."""
        return max(1, events) * self._event_bytes.get(source, DEFAULT_EVENT_BYTES)

    def learn(self, source: str, events: int, size: int) -> None:
        """Remember a page's bytes per event for the source's next estimates."""
        with self._cond:
            self._largest = max(self._largest, size)
            if events > 0:
                self._event_bytes[source] = max(1, size // events)


@dataclass
class Holding:
    """What one poll cycle holds of a budget (None: no budget, nothing is counted). Every
    method is safe from the cycle's threads; ``release_all`` gives back whatever is left
    when the cycle ends, however it ends."""

    budget: ByteBudget | None
    source: str
    held: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def estimate(self, events: int) -> int:
        return 0 if self.budget is None else self.budget.estimate(self.source, events)

    def try_take(self, n: int) -> bool:
        if self.budget is None:
            return True
        with self._lock:
            if not self.budget.try_take(n):
                return False
            self.held += n
            return True

    def take(self, n: int, stop: threading.Event | None) -> bool:
        if self.budget is None:
            return True
        if not self.budget.take(n, stop):
            return False
        with self._lock:
            self.held += n
        return True

    def settle(self, reserved: int, events: int, size: int) -> int:
        """A page arrived: its reservation becomes its real size, which is returned (what
        the page is charged until it is committed)."""
        if self.budget is None:
            return 0
        self.budget.learn(self.source, events, size)
        with self._lock:
            self.budget.charge(size - reserved)
            self.held += size - reserved
        return size

    def release(self, n: int) -> None:
        if self.budget is None or n == 0:
            return
        with self._lock:
            n = min(n, self.held)
            self.held -= n
            self.budget.give(n)

    def release_all(self) -> None:
        self.release(self.held)

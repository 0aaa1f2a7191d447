"""The one retry policy: capped exponential backoff with optional jitter.

Used by the Okta client (a failed request), the export loop (a sink that is down), the
daemon (a source whose poll cycle failed) and the store (a lake commit that lost a race). It
only computes delays; the caller waits with ``Clock.wait(seconds, stop)`` (or schedules the
next try), so a stop still interrupts every wait and tests with a ``FakeClock`` never sleep.
The store's pause after a lost race, milliseconds long, is the one plain sleep.

A library (tenacity, stamina) would bring its own sleeping and its own loop around the call,
while the callers each wait differently (an interruptible wait, a scheduled retry time)
and log their own events; the formula is all they share, so it lives here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

_MAX_DOUBLINGS = 60  # 2**60 times any sane initial delay is past every cap; avoids overflow


@dataclass(frozen=True)
class Backoff:
    """Delays of ``initial * 2**(attempt - 1)`` seconds, capped at ``maximum``.

    ``jitter`` is the share of the delay that is random: with 0.5 (the default) the delay
    is drawn uniformly from ``[d/2, d]``, so clients that failed together do not retry
    together; with 0 it is exact. ``rng`` is injectable for repeatable tests.
    """

    initial: float
    maximum: float
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError("backoff delays cannot be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("backoff jitter is a share between 0 and 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th consecutive failure (counted from 1)."""
        doublings = min(max(attempt, 1) - 1, _MAX_DOUBLINGS)
        delay = min(self.maximum, self.initial * 2.0**doublings)
        if self.jitter:
            return self.rng.uniform(delay * (1.0 - self.jitter), delay)
        return delay

"""Okta's rate-limit headers, and how long to hold back before the next request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx


@dataclass(frozen=True)
class RateLimit:
    """What one response said about the bucket, with the server's clock offset."""

    limit: int
    remaining: int
    reset: datetime
    skew: timedelta  # server clock minus local clock, from the Date header

    @classmethod
    def from_response(cls, response: httpx.Response, local_now: datetime) -> RateLimit | None:
        headers = response.headers
        try:
            limit = int(headers["x-rate-limit-limit"])
            remaining = int(headers["x-rate-limit-remaining"])
            reset = datetime.fromtimestamp(int(headers["x-rate-limit-reset"]), local_now.tzinfo)
        except (KeyError, ValueError, OverflowError, OSError):
            return None
        skew = timedelta(0)
        if "date" in headers:
            try:
                skew = parsedate_to_datetime(headers["date"]) - local_now
            except (TypeError, ValueError):
                skew = timedelta(0)
        return cls(limit, remaining, reset, skew)

    @property
    def is_concurrency(self) -> bool:
        """Okta's concurrency-limit 429 reports both limit and remaining as 0."""
        return self.limit == 0 and self.remaining == 0

    def seconds_until_reset(self, local_now: datetime, buffer: float) -> float:
        """Seconds from now until the window resets on the server's clock, plus a buffer
        (Okta rounds the reset down to whole seconds)."""
        server_now = local_now + self.skew
        return max(0.0, (self.reset - server_now).total_seconds()) + buffer

    def exhausted(self, reserve_share: float) -> bool:
        """True when using another request would eat into the share left to other clients."""
        if self.limit <= 0:
            return False
        return self.remaining <= int(self.limit * reserve_share)

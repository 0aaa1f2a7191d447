"""Durations and points in time as people write them, parsed in one place.

``parse_duration`` reads a config value or a query parameter (``90``, ``"15m"``, ``"7d"``);
``parse_time`` reads a start or end of a range (RFC 3339, ``now``, or relative like ``24h``).
Both answer a one-line ``ConfigError`` naming the key at fault. This module sits at the
bottom of the package: it imports nothing of it but ``ingest.base.errors``, so configuration,
feeds, export and the API all read time the same way without importing each other.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from ingest.base.errors import ConfigError

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|w)?\s*$")
MAX_DURATION = timedelta(days=36500)  # about 100 years: more is a typo, and overflows datetime
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for an error message that stays one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_duration(text: str) -> bool:
    """Whether ``text`` is written like a duration (``90``, ``15m``, ``1.5h``)."""
    return _DURATION.match(text) is not None


def parse_duration(value: object, key: str) -> timedelta:
    """``90``, ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"`` -> timedelta.

    A duration is from 0 to 36500d (about 100 years); NaN, infinity, negative numbers and
    anything larger are refused with a ConfigError naming ``key``.
    """
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if abs(value) < 1e300 else math.inf
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds is None or math.isnan(seconds):
        raise ConfigError(
            f"{key}: expected a duration such as '60s', '15m', '24h' or '7d', got {shown(value)}"
        )
    if not 0 <= seconds <= MAX_DURATION.total_seconds():
        raise ConfigError(
            f"{key}: a duration from 0 to 36500d (about 100 years), got {shown(value)}"
        )
    return timedelta(seconds=seconds)


def parse_time(text: str, now: datetime, key: str) -> datetime:
    """RFC 3339 (``2026-01-02T03:04:05Z``), ``now``, or relative to now (``24h``, ``7d``).

    The result is in UTC and within 36500 days (about 100 years) of ``now``; anything else
    is a one-line ConfigError naming ``key`` and what is accepted.
    """
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        if is_duration(value):  # its own range errors: they name the accepted range
            return now - parse_duration(value, key)
        raise ConfigError(
            f"{key}: expected an RFC 3339 time (2026-01-02T03:04:05Z) or a relative one "
            f"(30m, 24h, 7d), got {shown(text)}"
        ) from None
    if stamp.tzinfo is None:
        raise ConfigError(f"{key}: give a time zone (Z or +HH:MM) in {shown(text)}")
    if abs(stamp - now) > MAX_DURATION:
        raise ConfigError(f"{key}: a time within 36500 days (about 100 years) of now")
    return stamp.astimezone(UTC)

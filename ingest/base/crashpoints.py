"""Crash points for the exactly-once tests.

``OKTADUCK_CRASH_AT=name[:n]`` makes the process kill itself with SIGKILL the n-th time (1 by
default) it passes the named point, so tests can stop a real process between any two steps of
a page. Unset (always, in production) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get("OKTADUCK_CRASH_AT")
    if not spec:
        return None
    name, _, count = spec.partition(":")
    return name, int(count) if count.isdigit() else 1


_TARGET = _target()

POINTS = (
    "poll.fetched",
    "poll.mapped",
    "store.begun",
    "store.events_inserted",
    "store.rejects_inserted",
    "store.cursor_updated",
    "store.committed",
)


def crash_point(name: str) -> None:
    if _TARGET is None or _TARGET[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)

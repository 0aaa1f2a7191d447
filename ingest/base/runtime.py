"""Interpreter settings for a process that moves a lot of JSON through a few threads.

A poll cycle runs a thread that fetches the next page (and, in the daemon, parses and maps
it) and one that waits on DuckDB to commit the previous group. DuckDB and the socket work
without Python's lock, so what limits the overlap is how soon a thread that comes back from
them gets the lock again: CPython hands it over every 5 ms by default, which made the
threaded cycle slower than a serial one (tests/perf). Turning the garbage collector down
here was measured too and left alone: it made the cycle slower and its memory larger (an
httpx response is freed only by the collector); the mapping child of ``poll`` and
``backfill`` turns it off (``ingest/collect/pagemap.py``).
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.0005

_tuned = False


def tune() -> None:
    """Apply the settings above, once per process, at start-up."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    sys.setswitchinterval(SWITCH_INTERVAL_S)

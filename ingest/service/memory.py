"""How the daemon's C allocator hands memory back.

A daemon polling many orgs allocates pages of a few megabytes (bodies, raw texts, Arrow
buffers) from dozens of threads. glibc's malloc gives each thread that contends for it an
arena of its own (up to eight per core) and, after the first large block is freed, raises
its threshold for serving large blocks from the operating system directly up to 32 MiB: from
then on every page-sized block comes from an arena and its memory stays with the process
after it is freed, spread over arenas that no later page reuses. The soak measured this
(docs/performance.md): with the defaults, 20 orgs catching up at once left the daemon at
twice the memory it needs.

``tune_malloc`` caps the arenas and fixes the threshold, so that a page-sized block is
mapped for itself and unmapped when freed. Only glibc has ``mallopt``; elsewhere (musl,
macOS) nothing changes. A ``MALLOC_ARENA_MAX`` or ``MALLOC_MMAP_THRESHOLD_`` in the
environment is the operator's choice and is left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MiB or more are mapped for themselves


def tune_malloc() -> dict[str, int]:
    """Cap glibc's arenas and fix its mmap threshold; returns what was set (empty when
    nothing was: not glibc, or set in the environment already)."""
    if not sys.platform.startswith("linux"):
        return {}
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 -- glibc only: musl's mallopt does nothing
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done: dict[str, int] = {}
    if "MALLOC_ARENA_MAX" not in os.environ and mallopt(M_ARENA_MAX, ARENAS) == 1:
        done["arena_max"] = ARENAS
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        done["mmap_threshold"] = MMAP_THRESHOLD
    return done

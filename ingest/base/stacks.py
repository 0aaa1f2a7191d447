"""Every thread's Python stack on demand, for a daemon that seems stuck (SIGUSR1).

``faulthandler.register(SIGUSR1, all_threads=True)`` walks the other threads' frames from
inside the C signal handler, without the interpreter's lock, and can crash a process whose
threads are running (CPython issue 116008; a full test run here once saw a daemon that had
just caught up die of SIGSEGV on SIGUSR1). ``install`` sets a Python signal handler
instead: it runs on the main thread with the lock held, so no frame it reads can change or
go away under it. The daemon's main thread waits in half-second slices, so the stacks come
within half a second. Each frame is printed as its file, line and function name: never a
value, nor the source text.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from types import FrameType
from typing import TextIO


def dump_stacks(out: TextIO, current: FrameType | None = None) -> None:
    """Write every thread's stack to ``out``, most recent call first; ``current``: where the
    calling thread stands (default: here)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    here = threading.get_ident()
    frames = sys._current_frames()
    if current is not None:
        frames[here] = current
    for ident, frame in frames.items():
        head = "Current thread" if ident == here else "Thread"
        out.write(f"{head} {ident:#018x} ({names.get(ident, '?')}, most recent call first):\n")
        stack = traceback.StackSummary.extract(traceback.walk_stack(frame), lookup_lines=False)
        for entry in stack:
            out.write(f'  File "{entry.filename}", line {entry.lineno} in {entry.name}\n')
        out.write("\n")
    out.flush()


def install(signum: int = signal.SIGUSR1) -> None:
    """Dump every thread's stack to stderr on ``signum`` (call from the main thread)."""

    def handler(number: int, frame: FrameType | None) -> None:
        dump_stacks(sys.stderr, frame)

    signal.signal(signum, handler)

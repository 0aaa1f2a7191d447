"""A progress line on a terminal, redrawn in place while a long command works.

``poll`` and ``backfill`` both draw through :class:`ProgressLine`: the line is rewritten
after a carriage return at most a few times a second, cut to the terminal's width so it
never wraps, and erased before the command prints its summary. When the stream is not a
terminal (a pipe, a file, a service's journal) ``poll`` shows nothing at all; ``backfill``
asks for plain lines instead, one per update, so a long run can still be followed in a log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from ingest.okta.client import ClientStats
from ingest.store.db import CommitResult

REDRAW_INTERVAL = 0.25  # seconds between two redraws: four a second at most
_ERASE = "\x1b[K"  # erase from the cursor to the end of the line


class ProgressLine:
    """One status line on ``stream``.

    On a terminal, :meth:`show` redraws the line in place (``\\r`` then the text), skipping
    updates that come sooner than ``interval`` after the last one unless ``force`` is given,
    and :meth:`clear` erases it. Elsewhere it writes nothing, or, with ``plain_lines``, every
    update as a line of its own.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        plain_lines: bool = False,
        interval: float = REDRAW_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
        columns: int | None = None,
    ) -> None:
        self.stream = stream
        self.columns = columns  # None: the terminal's width, asked at each redraw
        self.terminal = _is_terminal(stream)
        self.plain_lines = plain_lines
        self.interval = interval
        self.monotonic = monotonic
        self.last: float | None = None
        self.drawn = False

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.terminal:
            if self.plain_lines:
                print(text, file=self.stream, flush=True)
            return
        now = self.monotonic()
        if not force and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        # not the last column: a line that fills it wraps on some terminals
        width = (self.columns or _columns(self.stream)) - 1
        self.stream.write("\r" + text[:width] + _ERASE)
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        """Erase the line, so what is printed next starts at the left margin."""
        if self.drawn:
            self.stream.write("\r" + _ERASE)
            self.stream.flush()
            self.drawn = False


class PollProgress:
    """A poll cycle's ``PageHook``: after each committed group it redraws one line with the
    events fetched, the pages, the rate-limit waits (from the client's counters), the rate
    in events a second and the newest ``published`` time stored."""

    def __init__(
        self,
        line: ProgressLine,
        source: str,
        stats: ClientStats,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.line = line
        self.source = source
        self.stats = stats
        self.monotonic = monotonic
        self.started = monotonic()
        self.pages = self.fetched = 0
        self.newest: datetime | None = None

    def __call__(self, pages: int, events: int, result: CommitResult) -> None:
        self.pages += pages
        self.fetched += events
        if result.newest_published is not None:
            self.newest = max(self.newest or result.newest_published, result.newest_published)
        self.line.show(self.text())

    def text(self) -> str:
        elapsed = self.monotonic() - self.started
        rate = self.fetched / elapsed if elapsed > 0 else 0.0
        at = self.newest.strftime("%Y-%m-%d %H:%M:%S") if self.newest else "-"
        waited = self.stats.rate_limit_seconds + self.stats.paced_seconds
        return (
            f"{self.source}: {self.fetched} events, {self.pages} pages, "
            f"rate-limit waits {self.stats.rate_limited} ({waited:.0f}s), "
            f"{rate:.0f} events/s, at {at}"
        )


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False


def _columns(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80
    return max(columns, 20) if columns else 80  # 0: a terminal that does not say

"""The sink contract and its two failures.

A sink takes a batch of NDJSON lines that are already formatted (each one JSON object, without
the trailing newline) and delivers them to one destination.

- ``send(lines)`` MUST return only when the destination has accepted every line of the batch
  (what "accepted" means is written on each sink), and MUST otherwise raise
  :class:`SinkUnavailable` or :class:`SinkRejected`. A batch that raised may have been
  delivered in part, so the caller resends all of it: delivery is at-least-once.
- A sink MUST NOT retry on its own with waits in between; the caller owns retries and backoff.
  A sink MAY reconnect once, immediately, when it finds a kept-alive connection already closed.
- ``flush()`` makes everything sent so far durable and visible; ``close()`` flushes and releases
  the sink's resources. Neither is needed for durability of a batch that ``send`` accepted.
- Messages never contain a secret (tokens, authorization headers).
- A sink is used by one thread at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Protocol

from ingest.base.errors import SinkRejected


class Sink(Protocol):
    name: str

    def send(self, lines: Sequence[bytes]) -> None:
        """Deliver every line (one JSON object, no trailing newline) or raise."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def ndjson(lines: Sequence[bytes]) -> bytes:
    """The batch as NDJSON bytes; refuse a line holding a raw newline (it would split in two)."""
    data = b"\n".join(lines) + b"\n"
    if data.count(b"\n") != len(lines):
        index = next(i for i, line in enumerate(lines) if b"\n" in line)
        raise newline_in_line(index)
    return data


def newline_in_line(index: int) -> SinkRejected:
    return SinkRejected(f"line {index} of the batch contains a raw newline; not NDJSON")


def gzip_member(data: bytes, level: int = 6) -> bytes:
    """``data`` as one complete gzip member (RFC 1952: header, deflate stream, CRC, size)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()

"""NDJSON on standard output (``-o -``): each batch written and flushed before ``send`` returns.

"Accepted" here means handed to the pipe or file behind stdout; what reads it is not ours to
wait for. A reader that went away (``head``, a closed pipe) is permanent: ``SinkRejected``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import BinaryIO

from ingest.base.errors import SinkRejected, SinkUnavailable
from ingest.export.sinks.base import ndjson


class StdoutSink:
    def __init__(self, stream: BinaryIO | None = None, *, name: str = "stdout") -> None:
        self.name = name
        self._stream = stream

    @property
    def stream(self) -> BinaryIO:
        return self._stream if self._stream is not None else sys.stdout.buffer

    def send(self, lines: Sequence[bytes]) -> None:
        if not lines:
            return
        data = ndjson(lines)
        try:
            self.stream.write(data)
            self.stream.flush()
        except BrokenPipeError:
            raise SinkRejected(f"{self.name}: the reader closed the pipe") from None
        except OSError as err:
            raise SinkUnavailable(f"{self.name}: cannot write: {err.strerror or err}") from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise SinkRejected(f"{self.name}: the reader closed the pipe") from None
        except OSError as err:
            raise SinkUnavailable(f"{self.name}: cannot flush: {err.strerror or err}") from None

    def close(self) -> None:
        """Flush; stdout itself stays open (it is not ours)."""
        self.flush()

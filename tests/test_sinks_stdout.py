"""StdoutSink: NDJSON on standard output, flushed per batch; a closed reader is permanent."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ingest.export.sinks import SinkRejected, StdoutSink
from tests.receivers import event_lines

REPO = Path(__file__).resolve().parents[1]


def test_each_batch_is_written_as_ndjson_and_flushed() -> None:
    """Lines come out newline-terminated, in order, and reach the stream before send returns."""
    raw = io.BytesIO()
    stream = io.BufferedWriter(raw)
    sink = StdoutSink(stream)
    sink.send(event_lines(3))
    assert raw.getvalue() == b"".join(line + b"\n" for line in event_lines(3))
    sink.close()


def test_a_closed_pipe_is_a_permanent_failure() -> None:
    """Writing after the reader went away raises SinkRejected, not a BrokenPipeError."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb", buffering=0) as stream:
        sink = StdoutSink(stream)
        with pytest.raises(SinkRejected, match="closed the pipe"):
            sink.send(event_lines(1))


def test_real_stdout_is_binary_and_unchanged() -> None:
    """Through a real process's stdout, the bytes (non-ASCII included) arrive as sent."""
    script = textwrap.dedent(
        """
        from ingest.export.sinks import StdoutSink
        from tests.receivers import event_lines
        StdoutSink().send(event_lines(50))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, check=True, timeout=30
    )
    assert result.stdout.splitlines() == event_lines(50)

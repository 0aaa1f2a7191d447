"""Turning a page's body into rows: parse, keep each event's JSON text, map, build Arrow.

This is most of the Python work of an ingest, and Python runs one thread at a time: done in
the polling process it competes with fetching and committing for the interpreter's lock.
``ProcessMapper`` does it in a child process (``python -m ingest.pagemap``) that reads
bodies on stdin and answers with pickled ``MappedPage`` objects on stdout, one at a time;
the polling process is left with the transport and DuckDB, which run without the lock.
``InlineMapper`` does the same in the calling thread (tests, the demo, the daemon).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import orjson

from ingest.errors import OktaduckError
from ingest.mapping import CompiledMapping, MappedBatch, load_mapping
from ingest.okta.body import BadBody, json_array

if TYPE_CHECKING:
    import pyarrow as pa

_LENGTH = struct.Struct("<Q")
# What the store reads of a mapped batch's Python columns once its Arrow table is built.
KEPT_COLUMNS = ("uuid", "published")


@dataclass(frozen=True)
class MappedPage:
    """A page's events, mapped and ready to commit.

    ``batch.columns`` holds only ``KEPT_COLUMNS``: every mapped column is in ``table`` (the
    accepted events, in order). ``raw`` and ``uuids`` are indexed like the page's events.
    """

    count: int
    batch: MappedBatch
    table: pa.Table
    raw: list[str]
    uuids: list[str | None]

    def __len__(self) -> int:
        return self.count


def map_page(mapping: CompiledMapping, events: list[Any]) -> MappedPage:
    raw = [orjson.dumps(event).decode() for event in events]
    uuids = [
        e.get("uuid") if isinstance(e, dict) and isinstance(e.get("uuid"), str) else None
        for e in events
    ]
    batch = mapping.apply_batch(events)
    table = batch.to_arrow(mapping)
    kept = {name: batch.columns[name] for name in KEPT_COLUMNS}
    return MappedPage(len(events), dataclasses.replace(batch, columns=kept), table, raw, uuids)


class Mapper(Protocol):
    def decode(self, body: bytes) -> MappedPage:
        """The page a body holds; raise ``BadBody`` when it is not a JSON array."""
        ...


class InlineMapper:
    """Maps pages in the calling thread."""

    def __init__(self, mapping: CompiledMapping) -> None:
        self.mapping = mapping

    def decode(self, body: bytes) -> MappedPage:
        return map_page(self.mapping, json_array(body))


class MapperFailed(OktaduckError):
    """The mapping process could not start or stopped unexpectedly."""


class ProcessMapper:
    """Maps pages in a child process; one page at a time, from any thread."""

    def __init__(self, mapping: CompiledMapping) -> None:
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(  # noqa: S603 -- this interpreter, our module, no shell
            [sys.executable, "-m", "ingest.pagemap", str(mapping.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin: IO[bytes] = self._proc.stdin
        self._stdout: IO[bytes] = self._proc.stdout
        try:
            version = self._receive()
        except MapperFailed:
            self.close()
            raise
        if version != mapping.version:
            self.close()
            raise MapperFailed(
                f"the mapping process loaded {mapping.path} as version {version}, not "
                f"{mapping.version}: the file changed meanwhile; run the command again"
            )

    def decode(self, body: bytes) -> MappedPage:
        with self._lock:
            try:
                self._stdin.write(_LENGTH.pack(len(body)))
                self._stdin.write(body)
                self._stdin.flush()
            except OSError:
                raise self._failed() from None
            answer = self._receive()
        if isinstance(answer, BadBody):
            raise answer
        if not isinstance(answer, MappedPage):
            raise MapperFailed(f"the mapping process answered {type(answer).__name__}")
        return answer

    def _receive(self) -> Any:
        head = self._stdout.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            raise self._failed()
        (size,) = _LENGTH.unpack(head)
        data = self._stdout.read(size)
        if len(data) < size:
            raise self._failed()
        return pickle.loads(data)  # noqa: S301 -- our own child's answer

    def _failed(self) -> MapperFailed:
        code = self._proc.wait()
        return MapperFailed(f"the mapping process stopped (exit code {code}); see its error above")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stdout.close()

    def __enter__(self) -> ProcessMapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _send(out: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)))
    out.write(data)
    out.flush()


def serve(mapping_path: Path, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The child's loop: say which mapping version it loaded, then answer body after body
    until stdin closes."""
    mapping = load_mapping(mapping_path)
    _send(stdout, mapping.version)
    while True:
        head = stdin.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            return 0
        (size,) = _LENGTH.unpack(head)
        body = stdin.read(size)
        try:
            answer: object = map_page(mapping, json_array(body))
        except BadBody as err:
            answer = err
        _send(stdout, answer)


def main() -> int:
    """``python -m ingest.pagemap MAPPING``: the child ``ProcessMapper`` starts."""
    # Ctrl-C reaches the whole process group; the parent decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The answers get the real stdout; anything printed goes to stderr instead.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return serve(Path(sys.argv[1]), sys.stdin.buffer, answers)


if __name__ == "__main__":
    # Run from the importable module, so that what is pickled names ingest.pagemap, not
    # __main__.
    from ingest.pagemap import main as module_main

    sys.exit(module_main())

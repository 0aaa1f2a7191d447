"""Turning a page's body into rows: parse, keep each event's JSON text, map.

This is most of the Python work of an ingest, and Python runs one thread at a time: done in
the polling process it competes with fetching and committing for the interpreter's lock.
``ProcessMapper`` does it in a child process (``python -m ingest.collect.pagemap``) that reads
bodies on stdin and answers on stdout (see ``serve``); the polling process is left with the
transport and DuckDB, which run without the lock, and the child maps one page while the
next is fetched. ``InlineMapper`` does the same in the calling thread (tests, the demo, the
daemon).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from array import array
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ingest.base.errors import MapperFailed
from ingest.mapping import CompiledMapping, MappedBatch, load_mapping
from ingest.mapping.arrow import from_ipc, to_ipc
from ingest.okta.body import BadBody
from ingest.okta.elements import BadEvent, ParsedPage, parse_page
from ingest.store.rawtexts import RawTexts

_LENGTH = struct.Struct("<Q")
_COLLECT_EVERY = 50  # pages


@dataclass(frozen=True)
class MappedPage:
    """A page's events, mapped and ready to commit; ``raw`` and ``uuids`` are indexed like
    the page's events; ``bad``: the page's elements that could not be decoded (they go to
    ``rejects`` with their bytes).

    A page mapped by the child comes with its Arrow columns built (by the child: the parent
    only reads them back from bytes), of its Python columns only ``_KEPT``, and its texts
    in one buffer (``RawTexts``).
    """

    batch: MappedBatch
    raw: list[str] | RawTexts
    uuids: list[str | None]
    bad: tuple[BadEvent, ...] = ()

    @property
    def count(self) -> int:
        """Every element of the page, bad ones included."""
        return len(self.raw) + len(self.bad)


def map_page(mapping: CompiledMapping, page: ParsedPage) -> MappedPage:
    raw = [text.decode() for text in page.texts]
    batch = mapping.apply_batch(page.events)
    return MappedPage(batch, raw, _uuids(page.events), tuple(page.bad))


def _uuids(events: list[Any]) -> list[str | None]:
    return [
        e.get("uuid") if isinstance(e, dict) and isinstance(e.get("uuid"), str) else None
        for e in events
    ]


@dataclass(frozen=True)
class PendingPage:
    """A body known to be a page of ``count`` events, mapped now or soon."""

    count: int
    mapped: Future[MappedPage]

    def __len__(self) -> int:
        return self.count

    def result(self) -> MappedPage:
        """The mapped page, once it is (``MapperFailed`` if the mapping process died)."""
        return self.mapped.result()


class Mapper(Protocol):
    def decode(self, body: bytes) -> PendingPage:
        """Parse a body, or raise ``BadBody`` when it is not a JSON array (an element of it
        that cannot be decoded is kept apart, see ``ingest.okta.elements``)."""
        ...


class InlineMapper:
    """Maps pages in the calling thread."""

    def __init__(self, mapping: CompiledMapping) -> None:
        self.mapping = mapping

    def decode(self, body: bytes) -> PendingPage:
        parsed = parse_page(body)
        mapped: Future[MappedPage] = Future()
        mapped.set_result(map_page(self.mapping, parsed))
        return PendingPage(parsed.count, mapped)

    def map_later(self, body: bytes) -> Future[MappedPage]:
        """The page mapped now, as ``ProcessMapper.map_later`` gives it (``BadBody`` in the
        future when the body is not a page)."""
        mapped: Future[MappedPage] = Future()
        try:
            mapped.set_result(map_page(self.mapping, parse_page(body)))
        except BadBody as err:
            mapped.set_exception(err)
        return mapped


class ProcessMapper:
    """Maps pages in a child process, in the order they are handed over, from any thread.

    ``decode`` returns as soon as the child has parsed the body (so a body that is not a page
    is refused inside the client's retry loop, and the caller knows how many events it
    holds) and the mapping goes on while the caller fetches the next page. A reader thread
    takes the child's answers: per body, its event count (or why it is not a page), then
    the mapped page.
    """

    def __init__(self, mapping: CompiledMapping) -> None:
        self._mapping = mapping
        self._lock = threading.Lock()
        self._waiting: deque[tuple[Future[int], Future[MappedPage]]] = deque()
        self._dead: MapperFailed | None = None
        self._proc = subprocess.Popen(  # noqa: S603 -- this interpreter, our module, no shell
            [sys.executable, "-m", "ingest.collect.pagemap", str(mapping.path)],
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
        self._reader = threading.Thread(target=self._read, name="pagemap-reader", daemon=True)
        self._reader.start()

    def decode(self, body: bytes) -> PendingPage:
        counted, mapped = self._hand_over(body)
        return PendingPage(counted.result(), mapped)

    def map_later(self, body: bytes) -> Future[MappedPage]:
        """Hand a body over without waiting for the child to count its events (a caller
        that made the body knows them): the mapped page once it is, or ``BadBody``."""
        return self._hand_over(body)[1]

    def _hand_over(self, body: bytes) -> tuple[Future[int], Future[MappedPage]]:
        counted: Future[int] = Future()
        mapped: Future[MappedPage] = Future()
        with self._lock:
            if self._dead is not None:
                raise self._dead
            self._waiting.append((counted, mapped))
            try:
                self._stdin.write(_LENGTH.pack(len(body)))
                self._stdin.write(body)
                self._stdin.flush()
            except (OSError, ValueError):
                pass  # the child is gone: the reader says why
        return counted, mapped

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._proc.pid

    def alive(self) -> bool:
        """False once the child stopped: a body handed over now would fail."""
        return self._dead is None and self._proc.poll() is None

    def _read(self) -> None:
        """Hand each answer of the child to the body it is for, in order."""
        try:
            while True:
                kind, value = self._receive()
                counted, mapped = self._waiting[0]
                if kind == "count":
                    counted.set_result(value)
                    continue
                if kind == "page":
                    page = unpack(self._mapping, value)  # failing, it fails this body too
                    self._waiting.popleft()
                    mapped.set_result(page)
                else:  # "bad": the body is not a page
                    self._waiting.popleft()
                    counted.set_exception(value)
                    mapped.set_exception(value)
        except BaseException as err:
            failed = err if isinstance(err, MapperFailed) else MapperFailed(str(err))
            with self._lock:
                self._dead = failed
                while self._waiting:
                    for future in self._waiting.popleft():
                        if not future.done():
                            future.set_exception(failed)

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
        with contextlib.suppress(OSError, ValueError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.join(timeout=10)
        self._stdout.close()

    def __enter__(self) -> ProcessMapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MapperRing:
    """Several mappers taking the bodies in turn: with a process each, a page is mapped while
    the page before it still is, one core each. A page's answer comes from the mapper it was
    handed to, so the caller still reads the pages in the order it handed them over."""

    def __init__(self, mappers: Sequence[Mapper]) -> None:
        if not mappers:
            raise ValueError("a ring of no mappers")
        self._mappers = tuple(mappers)
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def decode(self, body: bytes) -> PendingPage:
        with self._lock:  # bodies may come from several threads
            mapper = self._mappers[next(self._turn) % len(self._mappers)]
        return mapper.decode(body)


def start_mappers(stack: contextlib.ExitStack, mapping: CompiledMapping, count: int) -> Mapper:
    """``count`` mapping processes (closed with ``stack``), as one mapper."""
    mappers = [stack.enter_context(ProcessMapper(mapping)) for _ in range(count)]
    return mappers[0] if len(mappers) == 1 else MapperRing(mappers)


# A mapped page on its way to the parent: its Arrow columns as an Arrow IPC stream (built
# in the child, which has CPU to spare; the parent, which fetches and commits, only copies
# them back), the Python columns the store reads (``_KEPT``), the rest of the batch pickled
# (accepted, rejected, issues), the events' texts in one buffer with their offsets, the
# uuids, and the elements that could not be decoded.
Packed = tuple[
    bytes, dict[str, list[Any]], MappedBatch, bytes, bytes, list[str | None], list[BadEvent]
]
# what the store reads from a page's Python columns once its Arrow table is built
_KEPT = ("uuid", "published")


def pack(mapping: CompiledMapping, page: ParsedPage) -> Packed:
    """Map the page's events, build their Arrow columns and put the page in the form it
    travels in."""
    batch = mapping.apply_batch(page.events)
    arrays = batch.arrow_columns(mapping)
    columns = to_ipc({c.name: a for c, a in zip(mapping.columns, arrays, strict=True)})
    texts = page.texts
    starts = array("i", itertools.accumulate(map(len, texts), initial=0))  # int32 offsets
    if sys.byteorder == "big":
        starts.byteswap()  # Arrow's buffers are little-endian
    offsets = starts.tobytes()
    kept = {name: batch.columns[name] for name in _KEPT if name in batch.columns}
    rest = dataclasses.replace(batch, columns={})
    data = b"".join(texts)
    return columns, kept, rest, data, offsets, _uuids(page.events), page.bad


def unpack(mapping: CompiledMapping, packed: Packed) -> MappedPage:
    """The page again, its Arrow columns read back from the child's bytes."""
    columns, kept, rest, data, offsets, uuids, bad = packed
    arrays = from_ipc(columns)
    if list(arrays) != [column.name for column in mapping.columns]:
        raise MapperFailed(f"the mapping process sent the columns {list(arrays)}")
    batch = dataclasses.replace(rest, columns=kept, arrays=tuple(arrays.values()))
    return MappedPage(batch, RawTexts(data, offsets), uuids, tuple(bad))


def _send(out: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)))
    out.write(data)
    out.flush()


def serve(mapping_path: Path, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """The child's loop: say which mapping version it loaded, then answer body after body
    until stdin closes: ("count", n) as soon as it is parsed, then ("page", MappedPage); or
    ("bad", BadBody) alone."""
    mapping = load_mapping(mapping_path)
    _send(stdout, mapping.version)
    # A page is a tree of a few hundred thousand new objects that all live until the page
    # is answered: the collector would walk them again and again to find no garbage. It
    # runs between pages instead, every so often, for what a rare cycle might leave.
    gc.disable()
    for served in itertools.count(1):
        if served % _COLLECT_EVERY == 0:
            gc.collect()
        head = stdin.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            return 0
        (size,) = _LENGTH.unpack(head)
        body = stdin.read(size)
        try:
            parsed = parse_page(body)
            del body
        except BadBody as err:
            _send(stdout, ("bad", err))
            continue
        _send(stdout, ("count", parsed.count))
        page = pack(mapping, parsed)
        del parsed  # the parsed page is the child's largest object: gone before pickling
        _send(stdout, ("page", page))
    return 0  # not reached


def main() -> int:
    """``python -m ingest.collect.pagemap MAPPING``: the child ``ProcessMapper`` starts."""
    # Ctrl-C reaches the whole process group, and a service manager's stop signal the whole
    # group too: the parent finishes the page in hand, and this one stops when its stdin
    # closes (also when the parent is killed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The answers get the real stdout; anything printed goes to stderr instead.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return serve(Path(sys.argv[1]), sys.stdin.buffer, answers)


if __name__ == "__main__":
    # Run from the importable module, so that what is pickled names ingest.collect.pagemap, not
    # __main__.
    from ingest.collect.pagemap import main as module_main

    sys.exit(module_main())

"""``oktaduck import``: archives of Okta events into the store, resumable, never twice.

Each file is read record by record (``ingest.collect.archive``); the events taken out of
the records are gathered into batches of a few thousand, and each batch goes the poll's
way: its events joined into one JSON array and mapped by the mapping process (off this
process's interpreter lock) while the next batch is read, then committed by a thread of
its own with ``Store.commit_pages``: deduplicated by uuid against everything stored
(duplicates are counted, never stored twice), its rejects kept with the file and line, and
the file's progress row (``ingest.store.imports``) in the SAME transaction instead of a
cursor. A process killed at any moment leaves the row where its last commit left it, and a
rerun reads on from there. ``raw`` gets each event's exact bytes from the archive: the
texts committed are this process's own, not the mapping process's.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
import uuid as uuidlib
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import duckdb
import msgspec
import orjson

from ingest.base.clock import Clock
from ingest.base.errors import ArchiveError
from ingest.base.logs import emit
from ingest.collect.archive import (
    DEFAULT_MAX_EVENT_BYTES,
    Bad,
    Content,
    FileInfo,
    Missing,
    Record,
    Unwrap,
    describe,
    detect,
    expand,
    guess_unwrap,
    records,
    split_joined,
)
from ingest.collect.pagemap import MappedPage, Mapper, MapperRing, PendingPage, map_page
from ingest.mapping import MappedBatch
from ingest.okta.body import BadBody
from ingest.okta.elements import BadEvent, ParsedPage
from ingest.store.db import (
    ONE_SHOT_GROUP_BYTES,
    ROW_GROUP_SIZE,
    CommitResult,
    PageRows,
    Store,
)
from ingest.store.imports import ImportRow, find_import, imported_paths, write_import
from ingest.store.rawtexts import RawTexts

DEFAULT_SOURCE = "import"
# Events per transaction: a row group's worth, which DuckDB writes into the file without the
# WAL (``db.ROW_GROUP_SIZE``); in batches of 2000 those rows went through the WAL first and
# cost 117-120 µs of CPU an event against 85-89 (100,000 events, alternating)
DEFAULT_BATCH = ROW_GROUP_SIZE
BATCH_BYTES = ONE_SHOT_GROUP_BYTES  # ...or this many bytes of events, whichever comes first
PAGE_EVENTS = 1000  # events the mapping process is given at a time, like a poll's page
_IN_FLIGHT = 2  # batches mapped or committing while the next is read
_LIST = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True)
class ImportOptions:
    source: str = DEFAULT_SOURCE
    unwrap: str = "auto"
    batch: int = DEFAULT_BATCH
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    again: bool = False  # import files recorded as imported once more


@dataclass
class Totals:
    """What an import did, over all files (or one)."""

    files: int = 0
    skipped: int = 0  # imported already
    failed: int = 0
    records: int = 0
    events: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    current: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        skipped = f", {self.skipped} skipped as imported already" if self.skipped else ""
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"imported {_count(self.files, 'file')}{skipped}{failed}: {self.events} events, "
            f"{self.stored} stored, {self.duplicates} duplicates, {self.rejected} rejected "
            f"in {self.seconds:.1f}s ({self.rate:.0f} events/s)"
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@dataclass
class _Batch:
    """Events read from one file, to commit with the file's progress after them."""

    texts: list[bytes] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    bad: list[BadEvent] = field(default_factory=list)
    records: int = 0
    size: int = 0
    end: int = 0
    end_line: int = 0
    finished: bool = False


@dataclass
class _FileState:
    """One file's import as committed so far (the next row builds on it)."""

    row: ImportRow
    name: str


Progress = Callable[[Totals], None]


def run_import(
    store: Store,
    mapper: Mapper | Sequence[Mapper],
    arguments: Sequence[str],
    options: ImportOptions,
    clock: Clock,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Totals:
    """Import every file the arguments name; a file that cannot be read is counted in
    ``failed`` with its one-line reason in ``errors``, and the others go on. Store and
    mapping failures stop the import (raised). Several mappers take the pages in turn."""
    stop = stop or threading.Event()
    unwrap = None if options.unwrap == "auto" else Unwrap(options.unwrap)
    totals = Totals()
    started = monotonic()
    runner = _Runner(store, mapper, options, clock, totals)
    try:
        for found in expand(arguments):
            if stop.is_set():
                break
            if isinstance(found, Missing):
                totals.failed += 1
                totals.errors.append(found.reason)
                emit("import.file_failed", logging.WARNING, error=found.reason)
                continue
            try:
                info = describe(found) if found is not None else FileInfo("-", None)
                runner.import_file(info, unwrap, stop, progress, started, monotonic)
            except ArchiveError as err:
                runner.settle()
                totals.failed += 1
                totals.errors.append(str(err))
                emit("import.file_failed", logging.WARNING, error=str(err))
    finally:
        runner.close()
        totals.seconds = monotonic() - started
    return totals


class _Runner:
    def __init__(
        self,
        store: Store,
        mapper: Mapper | Sequence[Mapper],
        options: ImportOptions,
        clock: Clock,
        totals: Totals,
    ) -> None:
        self.store = store
        self.mapper: Mapper = MapperRing(mapper) if isinstance(mapper, Sequence) else mapper
        self.options = options
        self.clock = clock
        self.totals = totals
        self.empty: MappedBatch = store.mapping.apply_batch([])
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-commit")
        self.pending: deque[Future[None]] = deque()
        self.owner = store.owner if store.lake is not None else None
        self._unwrap: Unwrap | None = None  # the current file's envelope, once known
        self._state: _FileState | None = None
        self._ours: set[str] = set()  # the imports this run began

    def close(self) -> None:
        try:
            self.settle()
        finally:
            self.pool.shutdown(wait=True)

    def settle(self) -> None:
        """Wait for every commit handed over; its failure is raised here."""
        while self.pending:
            self.pending.popleft().result()

    def _start(self, info: FileInfo, unwrap: str) -> _FileState | None:
        """The file's import row to go on from, or None when it is imported already."""
        now = self.clock.now()
        mtime = datetime.fromtimestamp(info.mtime, UTC) if info.mtime is not None else None
        fresh = ImportRow(
            id=str(uuidlib.uuid4()),
            source=self.options.source,
            path=info.absolute,
            size=info.size,
            mtime=mtime,
            head_sha256=info.head,
            unwrap=unwrap,
            position=0,
            line=0,
            records=0,
            stored=0,
            duplicates=0,
            rejected=0,
            started_at=now,
            updated_at=now,
            finished_at=None,
        )
        if not info.head:  # stdin, a pipe: nothing knows it again
            return _FileState(fresh, info.name)
        found, changed = self._find(info)
        if found is not None and found.id in self._ours:
            # the same file again in this run (named twice, or a copy): once its import is
            # committed, it is what is found
            self.settle()
            found, changed = self._find(info)
        if found is not None and found.finished_at is not None and not self.options.again:
            emit("import.file_skipped", path=info.name, imported_at=found.finished_at.isoformat())
            return None
        if found is not None and found.finished_at is None:
            emit("import.file_resumed", path=info.name, position=found.position, line=found.line)
            self._ours.add(found.id)
            return _FileState(found, info.name)
        if changed:
            emit("import.file_changed", logging.WARNING, path=info.name)
        self._ours.add(fresh.id)
        return _FileState(fresh, info.name)

    def _find(self, info: FileInfo) -> tuple[ImportRow | None, bool]:
        """The newest import of this file, and whether its path held another file before."""
        with self.store.transaction_lock():
            found = find_import(self.store.con, self.options.source, info.size, info.head)
            changed = found is None and imported_paths(
                self.store.con, self.options.source, info.absolute
            )
        return found, bool(changed)

    def import_file(
        self,
        info: FileInfo,
        unwrap: Unwrap | None,
        stop: threading.Event,
        progress: Progress | None,
        started: float,
        monotonic: Callable[[], float],
    ) -> None:
        content = Content(info)
        state: _FileState | None = None
        batch = _Batch()
        try:
            kind, first = detect(content)
            state = self._start(info, unwrap.spec if unwrap is not None else "auto")
            if state is None:
                self.totals.skipped += 1
                return
            self.totals.files += 1
            self.totals.current = info.name
            row = state.row
            if row.position:
                # the content read to detect its kind is read again from the position
                content.close()
                content = Content(info)
                content.skip(row.position)
                first = b""
            self._unwrap = unwrap
            if unwrap is None and row.position and row.unwrap != "auto":
                self._unwrap = Unwrap(row.unwrap)  # resumed: the envelope found at its start
            self._state = state
            batch = _Batch(end=row.position, end_line=row.line)
            for item in records(
                content,
                kind=kind,
                first=first,
                start=row.position,
                line=row.line,
                max_bytes=self.options.max_event_bytes,
            ):
                self._add(batch, item, info.name)
                if (
                    len(batch.texts) + len(batch.bad) >= self.options.batch
                    or batch.size >= BATCH_BYTES
                ):
                    self._hand_over(state, batch)
                    self.totals.seconds = monotonic() - started
                    if progress is not None:
                        progress(self.totals)
                    batch = _Batch(end=batch.end, end_line=batch.end_line)
                    if stop.is_set():
                        return
            batch.finished = True  # the next file is read while this batch commits
            self._hand_over(state, batch)
        except ArchiveError:
            # what was read before the failure is committed, and the row stays unfinished
            if state is not None and (batch.texts or batch.bad or batch.records):
                self._hand_over(state, batch)
            raise
        finally:
            content.close()

    def _choose(self, element: bytes, name: str) -> Unwrap:
        """``--unwrap auto``: the envelope of the file's first element is the file's."""
        guessed = guess_unwrap(element)
        self._unwrap = Unwrap(guessed)
        if self._state is not None:
            self._state.row = dataclasses.replace(self._state.row, unwrap=guessed)
        emit("import.unwrap", path=name, unwrap=guessed)
        return self._unwrap

    def _add(self, batch: _Batch, item: Record | Bad, name: str) -> None:
        """Add a record's events to the batch, and what is not an event to its rejects (their
        bytes count towards ``BATCH_BYTES`` too, so a file of nothing but bad lines is
        committed in batches as well)."""
        batch.records += 1
        batch.end, batch.end_line = item.end, item.end_line
        before = len(batch.bad)
        self._add_events(batch, item, name)
        for bad in batch.bad[before:]:
            batch.size += len(bad.raw)

    def _add_events(self, batch: _Batch, item: Record | Bad, name: str) -> None:
        if isinstance(item, Bad):
            batch.bad.append(BadEvent(f"{name} line {item.line}: {item.reason}", item.data))
            return
        data = item.data
        if data[:1] == b"[":  # a record that is an array (a page on one line): its elements
            try:
                elements = [bytes(e) for e in _LIST.decode(data)]
            except (msgspec.DecodeError, RecursionError) as err:
                reason = f"not valid JSON: {str(err).splitlines()[0] if str(err) else err}"
                batch.bad.append(BadEvent(f"{name} line {item.line}: {reason}", data))
                return
        else:
            elements = split_joined(data) or [data]
        for element in elements:
            unwrap = self._unwrap or self._choose(element, name)
            found = unwrap(element)
            if isinstance(found, str):
                batch.bad.append(BadEvent(f"{name} line {item.line}: {found}", element))
                continue
            for event in found:
                if event[:1] != b"{":
                    why = "not a JSON object" if event.strip() else "empty"
                    batch.bad.append(BadEvent(f"{name} line {item.line}: {why}", event))
                    continue
                batch.texts.append(event)
                batch.lines.append(item.line)
                batch.size += len(event)

    def _hand_over(self, state: _FileState, batch: _Batch) -> None:
        """Send the batch's events to the mapping process, a page of ``PAGE_EVENTS`` at a
        time (what the mapping process holds at once), and queue the batch's commit."""
        pages: list[tuple[int, PendingPage | None]] = []
        for start in range(0, len(batch.texts), PAGE_EVENTS):
            body = b"[" + b",".join(batch.texts[start : start + PAGE_EVENTS]) + b"]"
            try:
                pages.append((start, self.mapper.decode(body)))
            except BadBody:  # cannot be, as the body is made here: decoded here then
                pages.append((start, None))
        while len(self.pending) >= _IN_FLIGHT:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._commit, state, batch, pages))

    def _commit(
        self, state: _FileState, batch: _Batch, pending: list[tuple[int, PendingPage | None]]
    ) -> None:
        """Commit the batch's pages, its rejects and the file's progress after it in ONE
        transaction."""
        name = state.name
        bad = list(batch.bad)
        pages: list[PageRows] = []
        events = 0
        for start, page in pending:
            texts = batch.texts[start : start + PAGE_EVENTS]
            lines = batch.lines[start : start + PAGE_EVENTS]
            mapped = page.result() if page is not None else None
            if mapped is None or mapped.bad or len(mapped.raw) != len(texts):
                mapped, texts, lines = self._one_by_one(texts, lines, name, bad)
            events += len(texts)
            rejected = [(i, f"{name} line {lines[i]}: {why}") for i, why in mapped.batch.rejected]
            pages.append(
                PageRows(
                    source=self.options.source,
                    org_url="",
                    next_url=None,
                    batch=dataclasses.replace(mapped.batch, rejected=rejected),
                    raw=_raw_texts(texts),
                    uuids_in=mapped.uuids,
                )
            )
        if not pages:  # rejects only, or the end of a file: its progress still commits
            pages.append(PageRows(self.options.source, "", None, self.empty, [], []))
        pages[-1] = dataclasses.replace(pages[-1], bad=bad)
        before = state.row
        bad_count = len(bad) + sum(len(page.batch.rejected) for page in pages)

        def after(result: CommitResult, now: datetime) -> ImportRow:
            return dataclasses.replace(
                before,
                position=batch.end,
                line=batch.end_line,
                records=before.records + batch.records,
                stored=before.stored + result.stored,
                duplicates=before.duplicates + result.duplicates + result.conflicts,
                rejected=before.rejected + bad_count,
                updated_at=now,
                finished_at=now if batch.finished else None,
            )

        def record(con: duckdb.DuckDBPyConnection, result: CommitResult) -> None:
            write_import(con, after(result, self.clock.now()), self.owner)

        result = self.store.commit_pages(pages, self.clock.now(), record=record)
        state.row = after(result, self.clock.now())
        if batch.finished:
            row = state.row
            emit(
                "import.file_done",
                path=name,
                records=row.records,
                stored=row.stored,
                duplicates=row.duplicates,
                rejected=row.rejected,
            )
        self.totals.records += batch.records
        self.totals.events += events + len(bad)
        self.totals.stored += result.stored
        self.totals.duplicates += result.duplicates + result.conflicts
        self.totals.rejected += bad_count

    def _one_by_one(
        self, texts: list[bytes], lines: list[int], name: str, bad: list[BadEvent]
    ) -> tuple[MappedPage, list[bytes], list[int]]:
        """A page the mapping process found elements in that do not decode: each event is
        decoded here, the bad ones added to ``bad`` with their line, the rest mapped here."""
        events: list[Any] = []
        kept: list[bytes] = []
        kept_lines: list[int] = []
        for text, line in zip(texts, lines, strict=True):
            try:
                event = orjson.loads(text)
                orjson.dumps(event)  # nested deeper than a page's events may be
            except (orjson.JSONDecodeError, TypeError) as err:
                why = str(err).split(": line ")[0] if isinstance(err, ValueError) else str(err)
                bad.append(BadEvent(f"{name} line {line}: not valid JSON: {why}", text))
                continue
            events.append(event)
            kept.append(text)
            kept_lines.append(line)
        mapped = map_page(self.store.mapping, ParsedPage(events, kept, []))
        return mapped, kept, kept_lines


def _raw_texts(texts: list[bytes]) -> RawTexts:
    """The events' exact bytes in one buffer, as ``raw`` takes them."""
    starts = array("i", accumulate(map(len, texts), initial=0))
    if sys.byteorder == "big":
        starts.byteswap()  # Arrow's offsets are little-endian
    return RawTexts(b"".join(texts), starts.tobytes())

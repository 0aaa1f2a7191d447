"""Reading archives of Okta events: which files, their bytes, and the events in them.

``expand`` turns the command's arguments into files: a file as given, a directory's files
(recursively, sorted, symbolic links to directories not followed, so a link loop cannot
trap it), a glob expanded here (so a quoted one works), ``-`` for stdin. ``Content``
gives a file's content decompressed as it is read: gzip and zstd are known by their magic
bytes, whatever the name says. ``records`` splits the content into records without ever
holding more than one record and a read chunk: NDJSON by lines, or, when its first byte
that is not whitespace is ``[``, a JSON array (or several, one after the other) element by
element, or objects written over several lines each (``detect``). ``Unwrap`` takes the
events out of each record's envelope.

Each record keeps the exact bytes it had in the file (an event inside an envelope: its
exact bytes there), so ``raw`` stores what the archive holds. What is not an event
(not JSON, not an object, longer than the limit) comes out as a ``Bad`` with the line it
began on and its bytes (the first ``KEPT_BYTES`` of a line over the limit).

A JSON array is split without a whole-array parse: at each ``}`` or ``]`` followed by ``,``
or ``]`` the element so far is checked with msgspec, which answers "truncated" for every
such point inside the element; the first one that decodes is its end. An element that
breaks JSON's grammar is measured by its brackets instead, and rejected whole; one whose
brackets never close, or that grows past the limit, ends the file's reading (``ArchiveError``
naming the line).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import stat
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import msgspec
import zstandard

from ingest.base.errors import ArchiveError, ConfigError

CHUNK = 1 << 20  # bytes read (decompressed) at a time
HEAD_BYTES = 1 << 20  # the part of a file whose SHA-256 knows it again (``FileInfo.head``)
KEPT_BYTES = 64 << 10  # of a line over the limit, the bytes kept in ``rejects``
DEFAULT_MAX_EVENT_BYTES = 16 << 20
_CANDIDATE_TRIES = 64  # ends tried with msgspec before an element is measured by brackets
# names of files a directory contributes; files named on the command line are always read
ARCHIVE_NAME = re.compile(r"\.(json|ndjson|jsonl|log|txt)(\.gz|\.zst)?$|\.(gz|zst)$", re.I)
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_FEED = 16 << 10  # compressed bytes given to zstd at a time (bounds what one gives out)
_SPACE = re.compile(rb"[ \t\r\n]*")
_ELEMENT_END = re.compile(rb"[}\]](?=[ \t\r\n]*[,\]])")
# where a top-level value may end: before the next value, or where the bytes read end
_VALUE_END = re.compile(rb"[}\]](?=[ \t\r\n]*(?:[,\]{\[]|\Z))")
# a string, a bracket, or a quote whose string is not all read yet
_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|"')
_SCALAR = re.compile(rb'"(?:[^"\\]|\\.)*"|[^,\]\[{} \t\r\n]+')
_BOM = b"\xef\xbb\xbf"
_RAW = msgspec.json.Decoder(msgspec.Raw)
_LIST = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True)
class FileInfo:
    """A file to import: how it was named, and what knows it again (``None`` for stdin)."""

    name: str  # as shown in messages and rejects
    path: Path | None  # None: stdin
    size: int = 0
    mtime: float | None = None
    head: str = ""  # SHA-256 of the first HEAD_BYTES as stored ("": a stream, not known again)

    @property
    def absolute(self) -> str:
        return str(Path.cwd() / self.path) if self.path is not None else "-"


@dataclass(frozen=True)
class Missing:
    """An argument that names no file that can be read: why, in one line."""

    reason: str


def expand(arguments: Sequence[str]) -> Iterator[Path | Missing | None]:
    """The files the arguments name, in order (None: stdin, for ``-``); a directory's
    files are those with an archive's name (``ARCHIVE_NAME``), sorted by path."""
    for argument in arguments:
        if argument == "-":
            yield None
            continue
        path = Path(argument)
        try:
            exists = path.exists()
        except (OSError, ValueError):
            exists = False
        if not exists:
            if glob.has_magic(argument):
                found = sorted(glob.glob(argument, recursive=True))  # noqa: PTH207 -- the given glob
                if not found:
                    yield Missing(f"{argument}: no file matches")
                for name in found:
                    found_path = Path(name)
                    if found_path.is_dir():
                        yield from _walk(found_path)
                    else:
                        yield found_path
                continue
            yield Missing(f"{argument}: no such file or directory")
            continue
        if path.is_dir():
            yield from _walk(path)
        else:
            yield path


def _walk(top: Path) -> Iterator[Path | Missing]:
    """A directory's archive files, recursively, sorted; links to directories are not
    followed (no loop can trap the walk), links to files are."""
    errors: list[OSError] = []
    found: list[Path] = []
    for folder, dirs, files in os.walk(top, onerror=errors.append, followlinks=False):
        dirs.sort()
        found += [Path(folder, name) for name in files if ARCHIVE_NAME.search(name)]
    for err in errors:
        yield Missing(f"{err.filename}: {err.strerror or err}")
    yield from sorted(found)


def describe(path: Path) -> FileInfo:
    """What knows the file again: its size, modification time and the SHA-256 of its head
    (``ArchiveError`` naming it when it cannot be read). A pipe (``<(zcat ...)``) is read
    like stdin: nothing of it is read here, and nothing knows it again (``head`` empty)."""
    try:
        info = path.stat()
        if stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode):
            return FileInfo(str(path), path)
        if not stat.S_ISREG(info.st_mode):
            raise ArchiveError(f"{path}: not a regular file")
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
    except OSError as err:
        raise ArchiveError(f"{path}: {err.strerror or err}") from None
    return FileInfo(str(path), path, info.st_size, info.st_mtime, head)


class _Inflater:
    """A gzip or zstd stream decompressed piece by piece, member after member (frame after
    frame). Output is bounded: gzip by ``max_length``, zstd by feeding it small pieces."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._d = self._new()
        self.begun = False  # a member is begun and has not ended
        self._tail = b""  # input given and not decompressed yet

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        data = self._tail + data
        self._tail = b""
        produced = 0
        while data and produced < CHUNK:
            if not self.begun and not data.strip(b"\0"):  # padding after the last member
                return b"".join(out)
            self.begun = True
            if self.kind == "gzip":
                piece = self._d.decompress(data, CHUNK)
                rest = self._d.unconsumed_tail
            else:
                piece = self._d.decompress(data[:_ZSTD_FEED])
                rest = data[_ZSTD_FEED:]
            out.append(piece)
            produced += len(piece)
            if self._d.eof:
                rest = self._d.unused_data + rest
                self._d = self._new()
                self.begun = False
            data = rest
        self._tail = data
        return b"".join(out)

    @property
    def pending(self) -> bool:
        return bool(self._tail)


class Content:
    """A file's content, decompressed as it is read, in chunks; ``ArchiveError`` naming the
    file for a broken or cut-short compressed stream, or a read that fails. What decodes
    before such a break is handed out first."""

    def __init__(self, info: FileInfo) -> None:
        self.name = info.name
        self._raw: IO[bytes]
        try:
            self._raw = info.path.open("rb") if info.path is not None else sys.stdin.buffer
        except OSError as err:
            raise ArchiveError(f"{info.name}: {err.strerror or err}") from None
        self._pending = self._read_raw(4)
        self.compression = "none"
        self._inflater: _Inflater | None = None
        if self._pending.startswith(_GZIP_MAGIC):
            self.compression = "gzip"
        elif self._pending.startswith(_ZSTD_MAGIC):
            self.compression = "zstd"
        if self.compression != "none":
            self._inflater = _Inflater(self.compression)
        self.position = 0  # bytes of content handed out
        self._compressed = 0  # bytes of the file read
        self._leftover = b""  # content read past a ``skip``

    def _read_raw(self, size: int) -> bytes:
        try:
            return self._raw.read(size)
        except OSError as err:
            raise ArchiveError(f"{self.name}: {err.strerror or err}") from None

    def read(self, size: int = CHUNK) -> bytes:
        """About ``size`` bytes of content (at least one unless at its end); b"" at its end."""
        if self._leftover:
            data, self._leftover = self._leftover, b""
            self.position += len(data)
            return data
        if self._inflater is None:
            data = self._pending + self._read_raw(size - len(self._pending))
            self._pending = b""
            self.position += len(data)
            return data
        while True:
            raw = b""
            if not self._inflater.pending:
                raw = self._pending + self._read_raw(size)
                self._pending = b""
                self._compressed += len(raw)
                if not raw:
                    if self._inflater.begun:
                        raise self._broken("cut short (the stream ends before its end marker)")
                    return b""
            try:
                data = self._inflater.feed(raw)
            except (zlib.error, zstandard.ZstdError) as err:
                why = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise self._broken(why) from None
            if data:
                self.position += len(data)
                return data

    def _broken(self, why: str) -> ArchiveError:
        return ArchiveError(
            f"{self.name}: cannot read its {self.compression} content after byte "
            f"{self.position} of it: {why}"
        )

    def skip(self, count: int) -> None:
        """Pass over the first ``count`` bytes of content (seeking where the file allows)."""
        if count <= 0:
            return
        if self._inflater is None and self._raw is not sys.stdin.buffer:
            try:
                self._raw.seek(count)
                self._pending = b""
                self.position = count
                return
            except OSError:
                pass
        while self.position < count:
            data = self.read(min(CHUNK, count - self.position))
            if not data:
                raise ArchiveError(f"{self.name}: shorter than when it was imported before")
            if self.position > count:  # a chunk passed the position: the rest comes next
                over = self.position - count
                self._leftover = data[-over:]
                self.position = count

    def close(self) -> None:
        if self._raw is not sys.stdin.buffer:
            self._raw.close()


class Record(NamedTuple):  # a tuple: one is made per event, and a tuple is made fastest
    """The bytes of one record (a line, or an element of a top-level array) and the line it
    began on; ``end``: the content's position after it (where a rerun goes on)."""

    data: bytes
    line: int
    end: int
    end_line: int


class Bad(NamedTuple):
    """Something in the file that is not a record: why, the line, its bytes."""

    reason: str
    data: bytes
    line: int
    end: int
    end_line: int


LINES, ARRAYS, VALUES = "lines", "arrays", "values"


def detect(content: Content) -> tuple[str, bytes]:
    """How the content holds its records, and the bytes read to find out (handed to
    ``records``): ``ARRAYS`` when its first byte that is not whitespace is ``[``;
    ``VALUES`` when it is ``{`` and the first line is not a whole object (objects written
    over several lines each, as ``jq .`` prints them); else ``LINES`` (NDJSON)."""
    seen = b""
    while True:
        data = content.read()
        if not data:
            return LINES, seen
        seen += data
        stripped = seen.lstrip(b" \t\r\n")
        if stripped.startswith(_BOM):
            stripped = stripped[len(_BOM) :].lstrip(b" \t\r\n")
        if stripped:
            break
    if stripped[:1] == b"[":
        return ARRAYS, seen
    cut = stripped.find(b"\n")
    if stripped[:1] != b"{" or cut < 0:
        return LINES, seen
    try:
        _RAW.decode(stripped[:cut].rstrip(b"\r"))
    except (msgspec.DecodeError, RecursionError) as err:
        if "truncated" in str(err):
            return VALUES, seen
    return LINES, seen


def records(
    content: Content,
    *,
    kind: str,
    first: bytes,
    start: int = 0,
    line: int = 0,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Iterator[Record | Bad]:
    """The records of the content from ``start`` (a position a record ended at; ``line``:
    the lines before it); ``first``: content read already from ``start`` on."""
    if kind != LINES:
        return _ArrayReader(content, first, start, line, max_bytes, kind == VALUES).records()
    return _lines(content, first, start, line, max_bytes)


def _lines(
    content: Content, first: bytes, start: int, line: int, max_bytes: int
) -> Iterator[Record | Bad]:
    position = start  # of data's first byte
    data = first
    if start == 0 and data.startswith(_BOM):
        data = data[len(_BOM) :]
        position += len(_BOM)
    while True:
        pieces = data.split(b"\n")
        carry = pieces.pop()
        for piece in pieces:  # each line is yielded before anything more is read
            line += 1
            position += len(piece) + 1
            text = piece.strip(b" \t\r")
            if text and len(text) <= max_bytes:
                yield Record(text, line, position, line)
            elif text:
                yield from _line_records(text, line, position, line, max_bytes)
        chunk = content.read()
        if len(carry) > max_bytes:  # a line over the limit: its head kept, the rest passed
            head = carry[:KEPT_BYTES]
            position += len(carry)
            while (cut := chunk.find(b"\n")) < 0 and chunk:
                position += len(chunk)
                chunk = content.read()
            position += cut + 1 if cut >= 0 else 0
            line += 1
            why = f"longer than {_size(max_bytes)} (its first {_size(KEPT_BYTES)} kept)"
            yield Bad(why, head, line, position, line)
            carry = b""
            chunk = chunk[cut + 1 :] if cut >= 0 else b""
            if cut < 0:
                return
        if not chunk:  # the end: what is left is the last line, without its newline
            if carry.strip():
                line += 1
                yield from _line_records(carry, line, position + len(carry), line, max_bytes)
            return
        data = carry + chunk if carry else chunk


def _line_records(
    piece: bytes, line: int, end: int, end_line: int, max_bytes: int
) -> Iterator[Record | Bad]:
    text = piece.strip(b" \t\r\n")
    if len(text) > max_bytes:
        yield Bad(
            f"longer than {_size(max_bytes)} (its first {_size(KEPT_BYTES)} kept)",
            text[:KEPT_BYTES],
            line,
            end,
            end_line,
        )
        return
    yield Record(text, line, end, end_line)


class _ArrayReader:
    """Elements of the top-level JSON arrays of a content, one after the other; or, for
    ``values``, the top-level values themselves (objects, and arrays handed out whole)."""

    def __init__(
        self,
        content: Content,
        first: bytes,
        start: int,
        line: int,
        max_bytes: int,
        values: bool = False,
    ) -> None:
        self.content = content
        self.buf = first
        self.base = start  # the content's position of buf[0]
        self.pos = 0
        self.line = line  # lines before buf[line_at]
        self.line_at = 0
        self.max_bytes = max_bytes
        self.eof = False
        self.values = values
        # a resumed read starts after an element: inside its array, or after a value
        self.state = "top" if start == 0 or values else "next"

    def _more(self) -> bool:
        """Read another chunk onto the buffer (dropping what is consumed); False at the end."""
        if self.eof:
            return False
        chunk = self.content.read()
        if not chunk:
            self.eof = True
            return False
        drop = min(self.pos, self.line_at)
        if drop:
            self.buf = self.buf[drop:]
            self.base += drop
            self.pos -= drop
            self.line_at -= drop
        self.buf += chunk
        return True

    def _line_of(self, at: int) -> int:
        self.line += self.buf.count(b"\n", self.line_at, at)
        self.line_at = at
        return self.line + 1

    def _fail(self, why: str) -> ArchiveError:
        line = self._line_of(self.pos)
        return ArchiveError(f"{self.content.name}: line {line}: {why}; the rest of it is not read")

    def records(self) -> Iterator[Record | Bad]:
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos >= len(self.buf):
                if self._more():
                    continue
                if self.state == "top":
                    return
                raise self._fail("the JSON array is cut short")
            byte = self.buf[self.pos : self.pos + 1]
            if self.state == "top":
                if self.buf.startswith(_BOM, self.pos) and self.base + self.pos == 0:
                    self.pos += len(_BOM)
                    continue
                if self.values and byte in (b"{", b"["):
                    yield self._element()
                    continue
                if byte != b"[":
                    raise self._fail("expected a JSON array here")
                self.pos += 1
                self.state = "first"
                continue
            if byte == b"]" and self.state in ("first", "next"):
                self.pos += 1
                self.state = "top"
                continue
            if self.state == "next":
                if byte != b",":
                    raise self._fail("expected , or ] after an element")
                self.pos += 1
                self.state = "element"
                continue
            yield self._element()
            self.state = "next"

    def _element(self) -> Record | Bad:
        start = self.pos
        line = self._line_of(start)
        if self.buf[start : start + 1] not in (b"{", b"["):
            while True:
                m = _SCALAR.match(self.buf, start)
                if m is not None and (m.end() < len(self.buf) or self.eof):
                    break
                if not self._more():
                    if m is None:
                        raise self._fail("the JSON array is cut short")
                    break
                start = self.pos
            assert m is not None
            self.pos = m.end()
            return Bad("not a JSON object", self.buf[start : self.pos], line, *self._ends())
        end = self._candidate_end()
        start = self.pos
        if end is None:
            end = self._bracket_end()
            start = self.pos
            data = self.buf[start:end]
            self.pos = end
            try:
                _RAW.decode(data)
            except (msgspec.DecodeError, RecursionError) as err:
                return Bad(f"not valid JSON: {_why(err)}", data, line, *self._ends())
            return Record(data, line, *self._ends())
        self.pos = end
        return Record(self.buf[start:end], line, *self._ends())

    def _ends(self) -> tuple[int, int]:
        return self.base + self.pos, self.line + self.buf.count(b"\n", self.line_at, self.pos)

    def _candidate_end(self) -> int | None:
        """The element's end by msgspec at the ends it could have; None when it breaks the
        grammar or has too many such ends (measured by brackets then). Reads on as needed;
        ``self.pos`` keeps the element's start when the buffer moves."""
        tries = 0
        search = self.pos
        while True:
            m = (_VALUE_END if self.values else _ELEMENT_END).search(self.buf, search)
            if m is None:
                if self.pos + self.max_bytes < len(self.buf):
                    raise self._fail(f"an element is longer than {_size(self.max_bytes)}")
                offset = search - self.pos
                if not self._more():
                    raise self._fail("the JSON array is cut short")
                search = self.pos + offset
                continue
            end = m.end()
            try:
                _RAW.decode(memoryview(self.buf)[self.pos : end])
                return end
            except (msgspec.DecodeError, RecursionError) as err:
                tries += 1
                if "truncated" not in str(err) or tries > _CANDIDATE_TRIES:
                    return None
            search = end

    def _bracket_end(self) -> int:
        """The end of the element at ``self.pos`` by counting brackets outside strings."""
        depth = 0
        scan = self.pos
        while True:
            for m in _BRACKETS.finditer(self.buf, scan):
                token = m.group()
                if token == b'"':  # a string not all read yet
                    scan = m.start()
                    break
                if token[0] in b"{[":
                    depth += 1
                elif token[0] in b"}]":
                    depth -= 1
                    if depth == 0:
                        return m.end()
            else:
                scan = len(self.buf)
            if scan - self.pos > self.max_bytes:
                raise self._fail(f"an element is longer than {_size(self.max_bytes)}")
            offset = scan - self.pos
            if not self._more():
                raise self._fail("the JSON array is cut short")
            scan = self.pos + offset


_JOINED = re.compile(rb"\} ?\{")


def split_joined(data: bytes) -> list[bytes] | None:
    """The objects of a record that is several JSON objects written one after the other
    with nothing between them, or one space (Amazon Data Firehose delivers EventBridge events
    to S3 so, by default); None when it is not that (one object, or not JSON). Cheap for an
    ordinary record: ``}{`` cannot occur in one outside its strings, and is looked for in C
    before anything is decoded (one search for both spellings, a third of the time of a
    ``find`` of each)."""
    if _JOINED.search(data) is None:
        return None
    objects: list[bytes] = []
    start = 0
    for m in _JOINED.finditer(data):
        end = m.start() + 1
        if end <= start:
            continue
        try:
            _RAW.decode(memoryview(data)[start:end])
        except (msgspec.DecodeError, RecursionError) as err:
            if "truncated" in str(err):
                continue  # a ``}{`` inside a string or inside the object: not its end
            return None
        objects.append(data[start:end])
        start = m.end() - 1
    if not objects:
        return None
    objects.append(data[start:])
    return objects


def _why(err: BaseException) -> str:
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 else f"{count >> 10} KiB"


# Envelopes -------------------------------------------------------------------------------

KNOWN_WRAPPERS = {
    "none": "$",
    "eventbridge": "$.detail",
    "hec": "$.event",
    "eventhook": "$.data.events[*]",
}
_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[\*\]|\[(\d+)\]|\[['"]([^'"]+)['"]\]""")


class _Uuid(msgspec.Struct):
    uuid: Any = None
    eventType: Any = None


_UUID = msgspec.json.Decoder(_Uuid)


class Unwrap:
    """Takes the events out of a record: a path of names, ``[N]`` and ``[*]`` from ``$``
    (a JSONPath of those steps), each step decoding only its own level with msgspec, so an
    event's bytes stay exactly as in the record."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        path = KNOWN_WRAPPERS.get(spec, spec)
        if not path.startswith("$"):
            names = ", ".join(["auto", *KNOWN_WRAPPERS])
            raise ConfigError(f"--unwrap: {spec!r} is neither {names} nor a path like $.detail")
        self.steps: list[tuple[str, Any]] = []
        rest = path[1:]
        while rest:
            m = _STEP.match(rest)
            if m is None:
                raise ConfigError(
                    f"--unwrap: cannot read {rest!r} in {path!r}: use .name, ['name'], [N], [*]"
                )
            if m.group(0) == "[*]":
                self.steps.append(("each", _LIST))
            elif m.group(2) is not None:
                self.steps.append(("index", (int(m.group(2)), _LIST)))
            else:
                name = m.group(1) or m.group(3)
                struct = msgspec.defstruct(
                    "Envelope", [("value", msgspec.Raw, msgspec.Raw())], rename={"value": name}
                )
                self.steps.append(("key", (name, msgspec.json.Decoder(struct))))
            rest = rest[m.end() :]
        self.path = path

    def __call__(self, data: bytes) -> list[bytes] | str:
        """The events' bytes, or why the record holds none where the path says."""
        current = [data]
        for kind, arg in self.steps:
            found: list[bytes] = []
            for item in current:
                try:
                    if kind == "key":
                        name, decoder = arg
                        value = bytes(decoder.decode(item).value)
                        if not value:  # Raw(): the default, when the name is absent
                            return f"no {name!r} in it (--unwrap {self.spec})"
                        found.append(value)
                    elif kind == "each":
                        found += [bytes(v) for v in arg.decode(item)]
                    else:
                        index, decoder = arg
                        values = decoder.decode(item)
                        if index >= len(values):
                            return f"no element {index} in it (--unwrap {self.spec})"
                        found.append(bytes(values[index]))
                except (msgspec.DecodeError, RecursionError) as err:
                    if isinstance(err, msgspec.ValidationError):
                        return f"not the envelope --unwrap {self.spec} reads: {_why(err)}"
                    return f"not valid JSON: {_why(err)}"
            current = found
        return current


def guess_unwrap(data: bytes) -> str:
    """``auto``: the envelope a file's first record is in: ``none`` for an Okta event (a
    ``uuid`` and an ``eventType`` at the top), else the first known one that holds one."""
    if _is_event(data):
        return "none"
    for name in ("eventbridge", "hec", "eventhook"):
        found = Unwrap(name)(data)
        if isinstance(found, list) and found and _is_event(found[0]):
            return name
    return "none"


def _is_event(data: bytes) -> bool:
    try:
        top = _UUID.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return False
    return isinstance(top.uuid, str) and isinstance(top.eventType, str)

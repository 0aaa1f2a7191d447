"""NDJSON files that a log shipper can pick up without ever reading half a file.

Rotating mode (the default): ``path`` is a directory. Lines go to a hidden part file
``.<final name>.part``; when the file is finished it is fsynced and renamed, atomically, to its
final name ``<prefix>-<YYYYMMDDTHHMMSSZ>-<seq>.ndjson`` (``.ndjson.gz`` with gzip), where the
time is when the file was started (UTC) and ``seq`` grows over the directory's files. A shipper
that watches ``<prefix>-*.ndjson*`` (not dot files) therefore sees only whole files.

A file is finished when the next batch would take it past ``max_bytes`` (files hold whole
batches, so only a single batch larger than ``max_bytes`` makes a larger file), when it has
reached ``max_bytes``, when it is ``max_age`` old at the next send or flush, on ``flush()``
(unless ``finish_on_flush`` is off) and on ``close()``.

Durability: ``send`` writes the batch and fdatasyncs the part file before it returns, so an
accepted batch survives a crash or power loss. The sync costs about 4 ms per 2.5 MB batch on an
SSD-backed VM (17 ms instead of 13 ms for 1000 lines of 2.5 KB); a new file also syncs its
directory once, and so does each rename. A part file left over by a crash is finished on
the next start (never deleted, unless it is empty): a torn last line (plain) or a torn last
batch (gzip), which ``send`` never acknowledged and the caller therefore resends, is cut off
first so the finished file holds only whole lines.

Gzip: each batch is one complete gzip member; a file is their concatenation, which RFC 1952
allows and gzip, zcat and Python's ``gzip`` read as one stream. This keeps every accepted batch
readable from the part file at any moment.

Single-file mode (one-off exports): ``path`` is the output file; lines go to ``<path>.part``,
which ``close()`` renames over ``path`` (created even when nothing was sent). Gzip when
``gzip`` is set or the name ends in ``.gz``. Leaving a ``with`` block by an exception keeps the
part file and does not publish ``path``.

Files are created with mode 0600. One writer per directory and prefix is assumed; names are
claimed with ``O_EXCL`` so a second writer fails loudly instead of interleaving.
"""

from __future__ import annotations

import errno
import os
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType

from ingest.base import logs
from ingest.base.clock import Clock, SystemClock
from ingest.base.errors import ConfigError, ExportError, SinkRejected, SinkUnavailable
from ingest.export.sinks.base import gzip_member, ndjson

MiB = 1024 * 1024
_PERMANENT = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
}
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileSinkConfig:
    path: Path
    prefix: str = "oktaduck"
    max_bytes: int = 100 * MiB
    max_age: timedelta = timedelta(hours=1)
    gzip: bool = False
    gzip_level: int = 6
    single_file: bool = False
    finish_on_flush: bool = True
    name: str = "file"

    def __post_init__(self) -> None:
        if not self.prefix or "/" in self.prefix or self.prefix.startswith("."):
            raise ConfigError(f"prefix: {self.prefix!r}: not empty, no '/', no leading .")
        if self.max_bytes <= 0:
            raise ConfigError("max_bytes: must be positive")
        if self.max_age <= timedelta(0):
            raise ConfigError("max_age: must be positive")
        if not 0 <= self.gzip_level <= 9:
            raise ConfigError("gzip_level: must be 0-9")
        if self.single_file and str(self.path) == "-":
            raise ConfigError("path: '-' means stdout: use the stdout sink")

    @property
    def compressed(self) -> bool:
        return self.gzip or (self.single_file and self.path.name.endswith(".gz"))


class _Part:
    """The file being written: its descriptor, names, start time and size so far."""

    def __init__(self, fd: int, part: Path, final: Path, started: datetime) -> None:
        self.fd = fd
        self.part = part
        self.final = final
        self.started = started
        self.size = 0
        self.lines = 0


def _error(err: OSError, what: str) -> ExportError:
    message = f"{what}: {err.strerror or err}"
    if err.errno in _PERMANENT:
        return SinkRejected(message)
    return SinkUnavailable(message)


def _fsync_dir(directory: Path) -> None:
    """Make a create or rename in ``directory`` durable (POSIX needs the directory fsynced)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _datasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def whole_length(path: Path, compressed: bool) -> int:
    """How many leading bytes of ``path`` hold only whole lines (plain) or whole gzip members."""
    with path.open("rb") as f:
        if compressed:
            return _whole_gzip_members(f.read)
        size = f.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            f.seek(start)
            chunk = f.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
        return 0


def _whole_gzip_members(read: Callable[[int], bytes]) -> int:
    good = position = 0
    decompressor = zlib.decompressobj(31)
    while chunk := read(_CHUNK):
        data: bytes = chunk
        while data:
            try:
                decompressor.decompress(data, _CHUNK)
                while decompressor.unconsumed_tail and not decompressor.eof:
                    decompressor.decompress(decompressor.unconsumed_tail, _CHUNK)
            except zlib.error:
                return good
            if decompressor.eof:
                rest = decompressor.unused_data
                position += len(data) - len(rest)
                good = position
                data = rest
                decompressor = zlib.decompressobj(31)
            else:
                position += len(data)
                data = b""
    return good


class FileSink:
    """Writes batches to NDJSON part files and publishes finished files by atomic rename."""

    def __init__(self, config: FileSinkConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self._clock = clock or SystemClock()
        self._part: _Part | None = None
        self._closed = False
        self._ext = ".ndjson.gz" if config.compressed else ".ndjson"
        self.recovered: list[Path] = []
        if config.single_file:
            self._dir = config.path.parent
            return
        self._dir = config.path
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            names = [entry.name for entry in self._dir.iterdir()]
        except OSError as err:
            raise _error(err, f"cannot use directory {self._dir}") from None
        pattern = re.compile(
            r"^\.?" + re.escape(config.prefix) + r"-\d{8}T\d{6}Z-(\d+)\.ndjson(?:\.gz)?(?:\.part)?$"
        )
        seqs = [int(m.group(1)) for name in names if (m := pattern.match(name))]
        self._next_seq = max(seqs, default=0) + 1
        self.recovered = self._recover(names)

    # --- the contract -------------------------------------------------------------------------

    def send(self, lines: Sequence[bytes]) -> None:
        if self._closed:
            raise SinkRejected(f"{self.name}: send after close")
        if not lines:
            return
        data = ndjson(lines)
        if self.config.compressed:
            data = gzip_member(data, self.config.gzip_level)
        if self._part is not None and self._due(self._part, len(data)):
            self._finish()
        part = self._part or self._open()
        self._append(part, data, len(lines))
        if not self.config.single_file and part.size >= self.config.max_bytes:
            self._finish()

    def flush(self) -> None:
        """Publish the current file (rotating mode), or only when it is due with
        ``finish_on_flush`` off. Single-file mode publishes on close only."""
        part = self._part
        if part is None or self.config.single_file:
            return
        if self.config.finish_on_flush or self._due(part, 0):
            self._finish()

    def close(self) -> None:
        if self._closed:
            return
        if self.config.single_file and self._part is None:
            part = self._open()
            if self.config.compressed:
                self._append(part, gzip_member(b"", self.config.gzip_level), 0)
        if self._part is not None:
            self._finish()
        self._closed = True

    def abort(self) -> None:
        """Stop without publishing: the part file stays (rotating mode finishes it next start)."""
        part, self._part = self._part, None
        self._closed = True
        if part is not None:
            os.close(part.fd)

    def __enter__(self) -> FileSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self.config.single_file:
            self.abort()
        else:
            self.close()

    # --- files --------------------------------------------------------------------------------

    def _due(self, part: _Part, incoming: int) -> bool:
        if self.config.single_file:
            return False
        if self._clock.now() - part.started >= self.config.max_age:
            return True
        return part.size > 0 and part.size + incoming > self.config.max_bytes

    def _final_name(self, started: datetime) -> Path:
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        return self._dir / f"{self.config.prefix}-{stamp}-{seq:06d}{self._ext}"

    def _open(self) -> _Part:
        started = self._clock.now()
        if self.config.single_file:
            final = self.config.path
            path = final.with_name(final.name + ".part")
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
            try:
                fd = os.open(path, flags, 0o600)
            except OSError as err:
                raise _error(err, f"cannot create {path}") from None
        else:
            fd, path, final = self._claim(started)
        try:
            os.fchmod(fd, 0o600)
        except OSError as err:
            os.close(fd)
            raise _error(err, f"cannot set the mode of {path}") from None
        _fsync_dir(self._dir)
        self._part = _Part(fd, path, final, started)
        return self._part

    def _claim(self, started: datetime) -> tuple[int, Path, Path]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        for _ in range(1000):
            final = self._final_name(started)
            path = final.with_name(f".{final.name}.part")
            if final.exists():
                continue
            try:
                return os.open(path, flags, 0o600), path, final
            except FileExistsError:
                continue
            except OSError as err:
                raise _error(err, f"cannot create {path}") from None
        raise SinkRejected(f"{self.name}: no free file name in {self._dir}; another writer?")

    def _append(self, part: _Part, data: bytes, lines: int) -> None:
        try:
            _pwrite_all(part.fd, data, part.size)
            _datasync(part.fd)
        except OSError as err:
            failure = _error(err, f"cannot write {part.part}")
            try:
                os.ftruncate(part.fd, part.size)
                _datasync(part.fd)
            except OSError:
                # The torn batch stays; the file is left for the next start's recovery.
                self._part = None
                os.close(part.fd)
            raise failure from None
        part.size += len(data)
        part.lines += lines

    def _finish(self) -> None:
        part, self._part = self._part, None
        if part is None:
            return
        try:
            os.fsync(part.fd)
        except OSError as err:
            raise _error(err, f"cannot sync {part.part}") from None
        finally:
            os.close(part.fd)
        final = self._publish(part.part, part.final, part.started)
        logs.emit("sink.file_finished", sink=self.name, path=str(final), lines=part.lines)

    def _publish(self, part: Path, final: Path, started: datetime) -> Path:
        """Rename ``part`` to ``final`` (or a fresh name if ``final`` exists) and sync the dir."""
        try:
            if self.config.single_file:
                part.replace(final)
            else:
                while final.exists():
                    final = self._final_name(started)
                part.rename(final)
        except OSError as err:
            raise _error(err, f"cannot rename {part.name} to {final.name}") from None
        _fsync_dir(self._dir)
        return final

    def _recover(self, names: list[str]) -> list[Path]:
        """Finish the part files a crash left behind; return the files published."""
        pattern = re.compile(
            r"^\.(" + re.escape(self.config.prefix) + r"-(\d{8}T\d{6}Z)-\d+\.ndjson(\.gz)?)\.part$"
        )
        published: list[Path] = []
        for name in sorted(names):
            match = pattern.match(name)
            if match is None:
                continue
            path = self._dir / name
            started = datetime.strptime(match.group(2) + "+0000", "%Y%m%dT%H%M%SZ%z")
            try:
                size = path.stat().st_size
                whole = whole_length(path, compressed=match.group(3) is not None)
                if whole < size:
                    with path.open("r+b") as f:
                        f.truncate(whole)
                        os.fsync(f.fileno())
                    logs.emit(
                        "sink.file_torn_tail_cut",
                        sink=self.name,
                        path=str(path),
                        bytes=size - whole,
                    )
                if whole == 0:
                    path.unlink()
                    continue
                with path.open("rb") as f:
                    os.fsync(f.fileno())
            except OSError as err:
                raise _error(err, f"cannot recover {path}") from None
            final = self._publish(path, self._dir / match.group(1), started)
            logs.emit("sink.file_recovered", sink=self.name, path=str(final))
            published.append(final)
        return published

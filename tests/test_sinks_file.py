"""FileSink: whole files only, rotation by size and age, gzip, crash recovery, 0600."""

from __future__ import annotations

import gzip
import os
import re
import stat
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import ConfigError
from ingest.export.sinks import FileSink, FileSinkConfig, SinkRejected
from ingest.export.sinks.base import gzip_member
from tests.receivers import event_lines

FINAL = re.compile(r"^oktaduck-\d{8}T\d{6}Z-\d{6}\.ndjson(\.gz)?$")
REPO = Path(__file__).resolve().parents[1]


def visible(directory: Path) -> list[Path]:
    """What a shipper watching the directory sees: the files without a leading dot."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def hidden(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith("."))


def read_lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path.name} ends inside a line"
    return data.splitlines()


def all_lines(directory: Path) -> list[bytes]:
    return [line for path in visible(directory) for line in read_lines(path)]


def test_lines_arrive_intact_in_a_final_file_named_by_pattern(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Every line comes back byte for byte, in order, in one file with the documented name."""
    lines = event_lines(250)
    sink = FileSink(FileSinkConfig(tmp_path / "out"), clock)
    for start in range(0, 250, 50):
        sink.send(lines[start : start + 50])
    assert visible(tmp_path / "out") == []  # nothing visible before the file is finished
    sink.close()
    files = visible(tmp_path / "out")
    assert [p.name for p in files] == ["oktaduck-20261101T120000Z-000001.ndjson"]
    assert read_lines(files[0]) == lines
    assert hidden(tmp_path / "out") == []


def test_files_are_created_mode_0600_whatever_the_umask(tmp_path: Path, clock: FakeClock) -> None:
    """Part and final files are readable by the owner only, even under a permissive umask."""
    old = os.umask(0)
    try:
        sink = FileSink(FileSinkConfig(tmp_path), clock)
        sink.send(event_lines(3))
        [part] = hidden(tmp_path)
        assert stat.S_IMODE(part.stat().st_mode) == 0o600
        sink.close()
    finally:
        os.umask(old)
    [final] = visible(tmp_path)
    assert stat.S_IMODE(final.stat().st_mode) == 0o600


def test_rotation_by_size_keeps_whole_batches_under_max_bytes(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A file is finished before a batch would take it past max_bytes; no line is lost or split."""
    lines = event_lines(100, size=500)
    sink = FileSink(FileSinkConfig(tmp_path, max_bytes=5_000), clock)
    for start in range(0, 100, 4):  # batches of about 2 KB
        sink.send(lines[start : start + 4])
    sink.close()
    files = visible(tmp_path)
    assert len(files) >= 10
    assert all(FINAL.match(p.name) for p in files)
    assert all(p.stat().st_size <= 5_000 for p in files)
    assert all(len(read_lines(p)) % 4 == 0 for p in files)  # whole batches
    assert all_lines(tmp_path) == lines


def test_a_batch_larger_than_max_bytes_is_one_file_of_its_own(
    tmp_path: Path, clock: FakeClock
) -> None:
    """max_bytes never splits a batch: an oversized batch is finished as soon as it is written."""
    sink = FileSink(FileSinkConfig(tmp_path, max_bytes=1_000), clock)
    big = event_lines(10, size=500)
    sink.send(big)
    assert [len(read_lines(p)) for p in visible(tmp_path)] == [10]
    sink.close()
    assert all_lines(tmp_path) == big


def test_rotation_by_age_on_send_and_on_flush(tmp_path: Path, clock: FakeClock) -> None:
    """With finish_on_flush off, a file is finished once max_age has passed, not before."""
    config = FileSinkConfig(tmp_path, max_age=timedelta(minutes=10), finish_on_flush=False)
    sink = FileSink(config, clock)
    sink.send(event_lines(2))
    clock.advance(9 * 60)
    sink.flush()
    assert visible(tmp_path) == []
    sink.send(event_lines(2, start=2))
    clock.advance(61)  # the file is now 10 min 1 s old
    sink.send(event_lines(2, start=4))  # finishes the old file first
    assert [len(read_lines(p)) for p in visible(tmp_path)] == [4]
    clock.advance(10 * 60)
    sink.flush()
    names = [p.name for p in visible(tmp_path)]
    assert names == [
        "oktaduck-20261101T120000Z-000001.ndjson",
        "oktaduck-20261101T121001Z-000002.ndjson",
    ]
    assert all_lines(tmp_path) == event_lines(6)


def test_flush_publishes_the_current_file_by_default(tmp_path: Path, clock: FakeClock) -> None:
    """flush() makes everything sent so far visible; the next send starts a new file."""
    sink = FileSink(FileSinkConfig(tmp_path), clock)
    sink.send(event_lines(3))
    sink.flush()
    assert [len(read_lines(p)) for p in visible(tmp_path)] == [3]
    sink.flush()  # nothing new: no empty file
    sink.send(event_lines(1, start=3))
    sink.close()
    assert [len(read_lines(p)) for p in visible(tmp_path)] == [3, 1]


def test_gzip_files_read_back_with_the_gzip_module(tmp_path: Path, clock: FakeClock) -> None:
    """Gzip output is a valid gzip file (one member per batch) holding every line."""
    lines = event_lines(300)
    sink = FileSink(FileSinkConfig(tmp_path, gzip=True), clock)
    for start in range(0, 300, 100):
        sink.send(lines[start : start + 100])
    sink.close()
    [path] = visible(tmp_path)
    assert path.name.endswith(".ndjson.gz")
    with gzip.open(path, "rb") as f:
        assert f.read().splitlines() == lines
    assert path.stat().st_size < sum(map(len, lines)) / 3


def test_visible_files_are_never_partial_nor_change_later(tmp_path: Path, clock: FakeClock) -> None:
    """After every step, each visible file is complete and identical to when it first appeared."""
    lines = event_lines(60, size=300)
    sink = FileSink(FileSinkConfig(tmp_path, max_bytes=2_000, gzip=True), clock)
    seen: dict[str, bytes] = {}
    for start in range(0, 60, 3):
        sink.send(lines[start : start + 3])
        if start % 9 == 0:
            clock.advance(4000)  # let age rotation interleave with size rotation
        for path in visible(tmp_path):
            assert FINAL.match(path.name)
            content = path.read_bytes()
            assert seen.setdefault(path.name, content) == content
            read_lines(path)  # decompresses whole and ends with a newline
    sink.close()
    assert all_lines(tmp_path) == lines


def test_a_leftover_plain_part_file_is_finished_without_its_torn_line(tmp_path: Path) -> None:
    """A crash's part file is published on the next start, cut after its last whole line."""
    whole = event_lines(3)
    part = tmp_path / ".oktaduck-20261101T110000Z-000007.ndjson.part"
    part.write_bytes(b"\n".join(whole) + b"\n" + whole[0][:40])
    sink = FileSink(FileSinkConfig(tmp_path))
    assert [p.name for p in sink.recovered] == ["oktaduck-20261101T110000Z-000007.ndjson"]
    assert read_lines(sink.recovered[0]) == whole
    sink.send(event_lines(1))
    sink.close()
    names = [p.name for p in visible(tmp_path)]
    assert names[0] == "oktaduck-20261101T110000Z-000007.ndjson"
    assert names[1].endswith("-000008.ndjson")  # numbering continues after the leftover
    assert hidden(tmp_path) == []


def test_a_leftover_gzip_part_file_keeps_its_whole_members(tmp_path: Path) -> None:
    """A torn last gzip member is cut; the earlier batches stay readable."""
    first, second = event_lines(5), event_lines(5, start=5)
    torn = gzip_member(b"\n".join(event_lines(5, start=10)) + b"\n")
    part = tmp_path / ".oktaduck-20261101T110000Z-000001.ndjson.gz.part"
    part.write_bytes(
        gzip_member(b"\n".join(first) + b"\n")
        + gzip_member(b"\n".join(second) + b"\n")
        + torn[: len(torn) // 2]
    )
    sink = FileSink(FileSinkConfig(tmp_path, gzip=True))
    sink.close()
    [path] = visible(tmp_path)
    assert read_lines(path) == first + second


def test_an_empty_leftover_is_removed_and_others_prefixes_are_left_alone(tmp_path: Path) -> None:
    """Only this prefix's part files are touched; an empty one holds nothing and goes."""
    (tmp_path / ".oktaduck-20261101T110000Z-000001.ndjson.part").write_bytes(b"")
    other = tmp_path / ".other-20261101T110000Z-000001.ndjson.part"
    other.write_bytes(b"{}\n")
    sink = FileSink(FileSinkConfig(tmp_path))
    sink.close()
    assert sink.recovered == []
    assert hidden(tmp_path) == [other]
    assert visible(tmp_path) == []


CRASHING_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ingest.export.sinks import FileSink, FileSinkConfig
    from tests.receivers import event_lines

    sink = FileSink(FileSinkConfig(Path(sys.argv[1]), gzip=sys.argv[2] == "gz",
                                   max_bytes=60_000))
    n = 0
    while True:
        sink.send(event_lines(20, start=n))
        n += 20
        print(n, flush=True)
    """
)


@pytest.mark.parametrize("compression", ["plain", "gz"])
def test_every_acknowledged_line_survives_a_kill_9(tmp_path: Path, compression: str) -> None:
    """A writer killed at an arbitrary moment loses no line that send() had accepted."""
    with subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(tmp_path), compression],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        acknowledged = 0
        while acknowledged < 400:
            line = child.stdout.readline()
            assert line, "the writer died on its own"
            acknowledged = int(line)
        child.kill()
    sink = FileSink(FileSinkConfig(tmp_path, gzip=compression == "gz"))
    sink.close()
    assert hidden(tmp_path) == []
    found = all_lines(tmp_path)  # each file whole: read_lines checks the final newline
    assert found[:acknowledged] == event_lines(acknowledged)
    assert found == event_lines(len(found))  # nothing torn, nothing out of order


def test_a_line_with_a_raw_newline_is_refused_before_writing(
    tmp_path: Path, clock: FakeClock
) -> None:
    """NDJSON cannot carry a raw newline inside a line: the batch is rejected whole."""
    sink = FileSink(FileSinkConfig(tmp_path), clock)
    with pytest.raises(SinkRejected, match="line 1"):
        sink.send([b"{}", b'{"a":\n1}'])
    sink.close()
    assert visible(tmp_path) == []


def test_single_file_mode_publishes_on_close_only(tmp_path: Path) -> None:
    """out.ndjson appears whole at close; until then only out.ndjson.part exists."""
    out = tmp_path / "out.ndjson"
    sink = FileSink(FileSinkConfig(out, single_file=True))
    sink.send(event_lines(5))
    sink.flush()
    assert not out.exists()
    assert (tmp_path / "out.ndjson.part").exists()
    sink.close()
    assert read_lines(out) == event_lines(5)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ndjson"]


def test_single_file_mode_gzip_by_suffix_and_empty_export(tmp_path: Path) -> None:
    """A .gz name gives gzip output; an export of nothing still leaves a valid, empty file."""
    out = tmp_path / "empty.ndjson.gz"
    with FileSink(FileSinkConfig(out, single_file=True)):
        pass
    assert gzip.decompress(out.read_bytes()) == b""


def test_single_file_mode_keeps_the_part_file_when_the_export_fails(tmp_path: Path) -> None:
    """An exception inside the with block leaves out.ndjson unpublished."""
    out = tmp_path / "out.ndjson"
    with pytest.raises(RuntimeError), FileSink(FileSinkConfig(out, single_file=True)) as sink:
        sink.send(event_lines(2))
        raise RuntimeError("export failed")
    assert not out.exists()
    assert len(read_lines(tmp_path / "out.ndjson.part")) == 2


def test_bad_configuration_is_refused_before_touching_the_disk(tmp_path: Path) -> None:
    """Invalid settings raise ConfigError at construction."""
    with pytest.raises(ConfigError):
        FileSinkConfig(tmp_path, prefix="../x")
    with pytest.raises(ConfigError):
        FileSinkConfig(tmp_path, max_bytes=0)
    with pytest.raises(ConfigError):
        FileSinkConfig(Path("-"), single_file=True)


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from ingest.export.sinks import FileSink, FileSinkConfig, SinkUnavailable
    from tests.receivers import event_lines

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, resource.RLIM_INFINITY))
    sink = FileSink(FileSinkConfig(Path(sys.argv[1])))
    sink.send(event_lines(10, size=600))
    try:
        sink.send(event_lines(10, size=600, start=10))
    except SinkUnavailable as err:
        print("unavailable:", err)
    sink.abort()
    """
)


def test_a_failed_write_is_rolled_back_so_no_torn_batch_stays(tmp_path: Path) -> None:
    """When the disk refuses a batch mid-write, the part file is cut back to the last batch."""
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.startswith("unavailable:")
    [part] = hidden(tmp_path)
    assert read_lines(part) == event_lines(10, size=600)

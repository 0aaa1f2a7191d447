"""Speed of ``oktaduck import`` from an NDJSON.gz archive into a new file store.

Usage: python -m tests.perf.import [EVENTS]   (default: 200000; the target is measured at
1000000)

Writes EVENTS realistic simulated events (~2.3 KB each) as one gzip'd NDJSON file, then runs
``oktaduck import`` on it in a child process (the mapping process is its own child) and
prints the wall time, events per second, the CPU of the import's processes per event and
their peak RSS. A second run of the same file with ``--again`` is timed too: every event is
then a duplicate.
"""

from __future__ import annotations

import gzip
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ingest.simulate.generator import EventGenerator
from tests.perf.versus import tree_rss_mb

CHUNK = 20_000


def write_archive(path: Path, events: int) -> None:
    gen = EventGenerator(seed=7)
    end = datetime(2026, 6, 1, tzinfo=UTC)
    start = end - timedelta(days=30)
    span = (end - start) / max(1, events // CHUNK + 1)
    with gzip.open(path, "wb", compresslevel=6) as out:
        done = 0
        while done < events:
            count = min(CHUNK, events - done)
            lo = start + span * (done // CHUNK)
            batch = gen.stream(count, lo, lo + span)
            out.write(b"".join(orjson.dumps(e) + b"\n" for e in batch))
            done += count


def run(db: Path, archive: Path, *extra: str) -> tuple[float, float, str]:
    """One ``oktaduck import``: wall seconds, peak RSS of its processes (sampled every
    20 ms: ``wait4`` would carry this process's own size into its child's), its summary."""
    started = time.perf_counter()
    peak = 0.0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "import", "--db", str(db), str(archive),
             *extra],
            stdout=out, stderr=err, text=True,
        )  # fmt: skip
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"import failed ({proc.returncode}): {err.read().strip()}")
        return seconds, peak, out.read().strip()


def main(argv: list[str]) -> int:
    events = int(argv[0]) if argv else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp, "events.ndjson.gz")
        write_archive(archive, events)
        size = archive.stat().st_size
        print(f"archive: {events} events, {size / 2**20:.1f} MiB gzip'd")
        db = Path(tmp, "import.duckdb")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, peak, summary = run(db, archive)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        print(summary)
        print(
            f"import: {seconds:.1f}s wall, {events / seconds:,.0f} events/s, "
            f"{cpu / events * 1e6:.0f} CPU us/event (both processes), peak RSS {peak:.0f} MB"
        )
        seconds, peak, summary = run(db, archive, "--again")
        print(
            f"again (all duplicates): {seconds:.1f}s wall, {events / seconds:,.0f} events/s, "
            f"peak RSS {peak:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

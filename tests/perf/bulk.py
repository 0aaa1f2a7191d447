"""Work on many stored events at once: ``oktaduck remap`` and ``oktaduck import``.

- remap: a store filled by ``tests/perf/fill.py`` with about N rows (1,000,000 / 100,000
  quick), then ``oktaduck remap --mapping`` with a copy of the shipped mappings whose
  normalized file differs by one comment line, so that its version differs and every row is
  mapped again from ``raw``, as after a real mapping change. (The fill's copies of an event
  share its ``raw``, so afterwards their ``uuid`` columns repeat: a store for timing only.)
- import: an NDJSON.gz archive of N generated events (one per line, each event's JSON bytes
  exactly as written, gzip level 6 as most tools write it), then ``oktaduck import FILE
  --db NEW``; the store is checked to hold every uuid once. Skipped with a note while the
  command does not exist.

Both are timed as a whole process (start-up included), with the CPU of the process tree and
its peak resident memory (``tests/perf/versus.py``'s ``measure``).
``python -m tests.perf.bulk [--rows N] [--events N]`` runs this part alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from tests.perf.simorg import event_chunks
from tests.perf.versus import ENV, REPO, cli, measure, uuid_counts


def failure(stderr: str) -> str:
    """The last line a failed command printed (its one-line error)."""
    lines = stderr.strip().splitlines()
    return lines[-1][:500] if lines else "no message"


def remap_speed(rows: int, work: Path) -> dict[str, Any]:
    from tests.perf.fill import fill

    db = work / "remap.duckdb"
    fill(db, rows)
    mappings = work / "mappings"
    shutil.copytree(REPO / "mappings", mappings)
    changed = mappings / "okta" / "normalized.toml"
    changed.write_bytes(changed.read_bytes() + b"\n# changed for the remap benchmark\n")
    run = measure(
        cli("ingest.cli", "remap", "--db", str(db), "--mapping", str(changed)), work, "remap"
    )
    if run.returncode != 0:
        return {"failed": failure(run.stderr)}
    remapped = int(run.stdout.split("remapped ", 1)[1].split()[0])
    for leftover in work.glob("remap.duckdb*"):
        leftover.unlink()
    return {
        "rows": remapped,
        "wall_s": run.wall_s,
        "rows_s": remapped / run.wall_s,
        "cpu_us_per_row": run.cpu_s / max(remapped, 1) * 1e6,
        "peak_rss_mb": run.peak_rss_mb,
    }


def write_archive(path: Path, events: int) -> tuple[int, int]:
    """``events`` generated events as NDJSON.gz at ``path``; (events, uncompressed bytes)."""
    count = size = 0
    with gzip.open(path, "wb", compresslevel=6) as out:
        for chunk in event_chunks(events, 24 * 365, seed=20):
            lines = b"".join(orjson.dumps(event) + b"\n" for event in chunk)
            out.write(lines)
            count += len(chunk)
            size += len(lines)
    return count, size


def import_available() -> bool:
    done = subprocess.run(
        cli("ingest.cli", "import", "--help"), cwd=REPO, env=ENV, capture_output=True, check=False
    )
    return done.returncode == 0


def import_speed(events: int, work: Path) -> dict[str, Any]:
    if not import_available():
        return {"skipped": "oktaduck import does not exist yet"}
    archive = work / "archive.ndjson.gz"
    count, size = write_archive(archive, events)
    db = work / "import.duckdb"
    run = measure(cli("ingest.cli", "import", str(archive), "--db", str(db)), work, "import")
    if run.returncode != 0:
        return {"failed": failure(run.stderr)}
    stored, distinct = uuid_counts(db)
    figures = {
        "events": stored,
        "exact": stored == distinct == count,
        "archive_mb": archive.stat().st_size / 2**20,
        "json_mb": size / 2**20,
        "wall_s": run.wall_s,
        "eps": stored / run.wall_s,
        "json_mb_s": size / 2**20 / run.wall_s,
        "cpu_us_per_event": run.cpu_s / max(stored, 1) * 1e6,
        "peak_rss_mb": run.peak_rss_mb,
    }
    archive.unlink()
    for leftover in work.glob("import.duckdb*"):
        leftover.unlink()
    return figures


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    r = figures.get("remap")
    if r and "failed" in r:
        rows.append(("remap", f"FAILED: {r['failed']}"))
    elif r:
        rows.append(
            (
                f"remap of {r['rows']:,} rows",
                f"{r['rows_s']:,.0f} rows/s, {r['cpu_us_per_row']:.0f} us CPU/row, "
                f"peak {r['peak_rss_mb']:.0f} MB",
            )
        )
    if "import" in figures:
        i = figures["import"]
        if "skipped" in i or "failed" in i:
            what = f"skipped: {i['skipped']}" if "skipped" in i else f"FAILED: {i['failed']}"
            rows.append(("import of NDJSON.gz", what))
        else:
            rows.append(
                (
                    f"import of {i['events']:,} events (NDJSON.gz)",
                    f"{i['eps']:,.0f} events/s ({i['json_mb_s']:.0f} MB/s of JSON), "
                    f"{i['cpu_us_per_event']:.0f} us CPU/event, peak {i['peak_rss_mb']:.0f} MB"
                    f"{'' if i['exact'] else ', NOT every uuid once'}",
                )
            )
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to remap (0: none)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events to import (0: none)")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="oktaduck-bulk-"))
    try:
        if args.rows:
            figures["remap"] = remap_speed(args.rows, work)
        if args.events:
            figures["import"] = import_speed(args.events, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, value in table(figures):
        print(f"{name:<36}  {value}")
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

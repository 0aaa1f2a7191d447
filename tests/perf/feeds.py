"""Latency of every built-in feed over 24-hour and 30-day windows.

Usage: python -m tests.perf.feeds [ROWS] [--db PATH]   (default 5,000,000 rows; the filled
database is kept at PATH to reuse between runs)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from ingest.feeds.feedfile import load_feeds
from ingest.feeds.run import run_feed
from ingest.store.query import open_read_only
from tests.perf.fill import END, fill


def time_feed(con: object, name: str, since: str, until: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run_feed(con, name, {"since": since, "until": until, "limit": "100"}, END)  # type: ignore[arg-type]
        list(result.rows)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(db: Path) -> dict[str, tuple[float, float]]:
    con = open_read_only(db)
    until = END.isoformat()
    day = (END - timedelta(days=1)).isoformat()
    month = (END - timedelta(days=30)).isoformat()
    out = {}
    try:
        for name in load_feeds():
            out[name] = (time_feed(con, name, day, until), time_feed(con, name, month, until))
    finally:
        con.close()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", type=int, nargs="?", default=5_000_000)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "feeds.duckdb"
        if not db.exists():
            print(f"filling {args.rows:,} rows ...", flush=True)
            print(f"filled in {fill(db, args.rows):.0f}s", flush=True)
        figures = measure(db)
    print(f"{'feed':<28}{'24h ms':>10}{'30d ms':>10}")
    for name, (d, m) in figures.items():
        print(f"{name:<28}{d:>10.1f}{m:>10.1f}")
    print(
        f"{'max':<28}{max(d for d, _ in figures.values()):>10.1f}"
        f"{max(m for _, m in figures.values()):>10.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

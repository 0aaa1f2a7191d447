"""Dedup cost of committing a 1000-event page as the events table grows.

Usage: python -m tests.perf.dedup [ROWS ...]   (default: 0 1000000 5000000)

Fills the table with generated rows in published order (as polling stores them), then
commits real mapped pages (half new events, half already stored) and prints the median
commit time per page at each size.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ingest.config import normalized_mapping_path
from ingest.mapping import load_mapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import PageRows, Store

BASE = datetime(2026, 1, 1, tzinfo=UTC)
STEP_MS = 250  # one stored event every 250 ms of published time


def fill(store: Store, rows: int) -> datetime:
    """Append ``rows`` generated events; return the published time after the last one."""
    store.con.execute(
        """
        INSERT INTO events (ingest_seq, source, uuid, published, event_type, mapping_version,
                            ingested_at, raw)
        SELECT i, 'bench', uuid()::VARCHAR, $base + to_milliseconds(i * $step),
               'user.session.start',
               'fill', now(), '{}'
        FROM range($rows) t(i)
        """,
        {"base": BASE, "step": STEP_MS, "rows": rows},
    )
    store.con.execute("CHECKPOINT")
    return BASE + timedelta(milliseconds=rows * STEP_MS)


def pages(gen: EventGenerator, start: datetime, count: int) -> list[list[dict[str, object]]]:
    out = []
    for n in range(count):
        at = start + timedelta(minutes=5 * n)
        out.append(gen.stream(1000, at, at + timedelta(minutes=4)))
    return out


def measure(rows: int, repeats: int = 7) -> float:
    mapping = load_mapping(normalized_mapping_path())
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "d.duckdb", mapping) as store:
        end = fill(store, rows) if rows else BASE
        gen = EventGenerator(seed=1)
        times = []
        for events in pages(gen, end, repeats):
            # the second half of each page was stored already, as after a crash and rerun
            batch = mapping.apply_batch(events[500:])
            raw = [orjson.dumps(e).decode() for e in events[500:]]
            store.commit_page(PageRows("bench", "x", None, batch, raw, [None] * 500), BASE)
            batch = mapping.apply_batch(events)
            raw = [orjson.dumps(e).decode() for e in events]
            page = PageRows("bench", "x", None, batch, raw, [None] * 1000)
            started = time.perf_counter()
            result = store.commit_page(page, BASE)
            times.append((time.perf_counter() - started) * 1000)
            assert result.stored == 500 and result.duplicates == 500
        return statistics.median(times)


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [0, 1_000_000, 5_000_000]
    print(f"{'rows stored':>12}  {'commit ms / 1000-event page':>28}")
    for rows in sizes:
        print(f"{rows:>12,}  {measure(rows):>28.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

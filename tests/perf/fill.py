"""Fill a database quickly with realistic rows for benchmarks.

A seed set of generated events goes through the real mapping and commit path; the table is
then multiplied in SQL (fresh uuids, published times shifted by whole days) until it holds the
requested number of rows spread over ``days``. Rows stay in published order per copy, as
polling stores them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ingest.config import normalized_mapping_path
from ingest.mapping import load_mapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import PageRows, Store

END = datetime(2026, 11, 1, tzinfo=UTC)


def seed_events(count: int, days: int, seed: int = 5) -> list[dict[str, object]]:
    gen = EventGenerator(seed=seed)
    start = END - timedelta(days=1)
    events = gen.stream(count, start, END)
    # a few planted scenarios so detections have something to find every day
    for hour in range(0, 24, 3):
        at = start + timedelta(hours=hour)
        events += gen.failed_login_burst(15, at)
    return events


def fill(path: Path, rows: int, days: int = 30, seed_count: int = 20_000) -> float:
    """Create ``path`` holding about ``rows`` events over ``days`` days; return seconds taken."""
    started = time.perf_counter()
    mapping = load_mapping(normalized_mapping_path())
    per_day = max(1, rows // days)
    seed = seed_events(min(seed_count, per_day), days)
    with Store(path, mapping) as store:
        for i in range(0, len(seed), 1000):
            page = seed[i : i + 1000]
            batch = mapping.apply_batch(page)
            raw = [orjson.dumps(e).decode() for e in page]
            store.commit_page(PageRows("bench", "x", None, batch, raw, [None] * len(page)), END)
        con = store.con
        base = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        copies_per_day = max(1, per_day // base)
        con.execute("CREATE TEMP TABLE seed AS SELECT * FROM events")
        con.execute("DELETE FROM events")
        total = 0
        seq = 0
        for day in range(days - 1, -1, -1):
            for copy in range(copies_per_day):
                if total >= rows:
                    break
                con.execute(
                    """
                    INSERT INTO events SELECT * REPLACE (
                        ingest_seq + $seq AS ingest_seq,
                        uuid()::VARCHAR AS uuid,
                        published - to_days($day) + to_milliseconds($copy) AS published)
                    FROM seed ORDER BY published
                    """,
                    {"seq": seq, "day": day, "copy": copy},
                )
                seq += base + 1
                total += base
        con.execute("DROP TABLE seed")
        con.execute("CHECKPOINT")
    return time.perf_counter() - started

"""Fill a database quickly with realistic rows for benchmarks.

A seed set of generated events (with planted brute-force bursts) goes through the real
mapping and commit path; one SQL statement then copies it across ``days`` days (fresh uuids,
published times shifted by whole days plus a few milliseconds per copy) until the table holds
about ``rows`` rows, in published order as polling stores them.
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


def seed_events(count: int, seed: int = 5) -> list[dict[str, object]]:
    gen = EventGenerator(seed=seed)
    start = END - timedelta(days=1)
    events = gen.stream(count, start, END)
    for hour in range(0, 24, 3):  # something for the detections to find every day
        events += gen.failed_login_burst(15, start + timedelta(hours=hour))
    return events


def fill(path: Path, rows: int, days: int = 30, seed_count: int = 20_000) -> float:
    """Create ``path`` holding about ``rows`` events over ``days`` days; return seconds taken."""
    started = time.perf_counter()
    mapping = load_mapping(normalized_mapping_path())
    per_day = max(1, rows // days)
    seed = seed_events(min(seed_count, per_day))
    with Store(path, mapping, serves_queries=False) as store:  # its settings stay open
        for i in range(0, len(seed), 1000):
            page = seed[i : i + 1000]
            batch = mapping.apply_batch(page)
            raw = [orjson.dumps(e).decode() for e in page]
            store.commit_page(PageRows("bench", "x", None, batch, raw, [None] * len(page)), END)
        con = store.con
        # the copy sorts gigabytes of rows: give it room (the store's default is for polling)
        con.execute("SET memory_limit = '8GB'")
        base = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        copies = max(1, round(per_day / base))
        con.execute("CREATE TEMP TABLE seed AS SELECT * FROM events ORDER BY published")
        con.execute("DELETE FROM events")
        con.execute(
            """
            INSERT INTO events
            SELECT s.* REPLACE (
                (d.day * $copies + c.copy) * $base + s.ingest_seq AS ingest_seq,
                uuid()::VARCHAR AS uuid,
                s.published - to_days($days - 1 - d.day) + to_milliseconds(c.copy) AS published)
            FROM range($days) d(day), range($copies) c(copy), seed s
            ORDER BY d.day, s.published, c.copy
            """,
            {"copies": copies, "base": base, "days": days},
        )
        con.execute("DROP TABLE seed")
        con.execute("CHECKPOINT")
    return time.perf_counter() - started

"""How close to the parse floor an ingest that keeps the raw JSON can get, whatever maps it.

``python -m tests.perf.floors [--events N]`` serves N events (default 100,000) from the
simulator, fetches every page once, and times on the same pages, one after the other:

- the parse floor: ``orjson.loads`` of every page (as ``make bench`` takes it);
- storing alone: each page's uuids and raw JSON texts, already made into Arrow tables, into
  a fresh database shaped like ``events`` for these two columns (``raw`` JSON, zstd) with the
  settings of a one-shot ingest (DuckDB on one thread, 48MB, checkpoints every 256MB of
  WAL), a page per transaction, then a checkpoint. No parsing, no mapping, no dedup;
- DuckDB mapping: DuckDB splits each page (a JSON text parameter) into events and extracts
  every plain dotted path of ``mappings/okta/normalized.toml`` with ``json_extract_string``,
  keeping each event's text as ``raw``, on two threads: the "let DuckDB parse and project"
  design, without the mapping's types, filters and checks.

The last line is one JSON object with every figure. ``store_raw_ratio`` is storing's
events/s over the parse floor's: the ``ingest_ratio`` of ``make bench`` that an ingest doing
nothing but storing would reach.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import orjson

from ingest.mapping import default_mapping_dir
from ingest.mapping.arrow import Table, json_list, strings
from ingest.mapping.spec import parse_spec, read_toml
from tests.perf.bench import Simulator, fetch_pages, parse_floor


def store_raw(bodies: list[bytes], db: Path) -> float:
    """Events per second of committing pages of (uuid, raw) as a one-shot ingest does."""
    tables = []
    for body in bodies:
        events = orjson.loads(body)
        uuids = strings([e["uuid"] for e in events])
        raw = json_list([orjson.dumps(e).decode() for e in events])
        tables.append(Table.of({"uuid": uuids, "raw": raw}))
    con = duckdb.connect(str(db), config={"threads": 1, "memory_limit": "48MB"})
    con.execute("SET checkpoint_threshold = '256MB'")
    con.execute("CREATE TABLE events (uuid VARCHAR NOT NULL, raw JSON USING COMPRESSION zstd)")
    started = time.perf_counter()
    for table in tables:
        con.register("page", table)
        con.execute("BEGIN")
        con.execute("INSERT INTO events SELECT * FROM page")
        con.execute("COMMIT")
        con.unregister("page")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    con.close()
    rows: int = sum(t.num_rows for t in tables)
    return rows / seconds


def plain_paths() -> list[str]:
    """The normalized mapping's paths that are plain dotted paths (no filter, no wildcard)."""
    file = default_mapping_dir() / "okta" / "normalized.toml"
    spec, _ = parse_spec(file, read_toml(file)[1])
    every = [path for f in spec.fields for path in (f.paths or (f.path,)) if path]
    return [path for path in every if "[" not in path and "*" not in path]


def duckdb_mapping(bodies: list[bytes], db: Path) -> tuple[float, int]:
    """Events per second of DuckDB parsing pages and extracting the plain paths itself."""
    paths = plain_paths()
    con = duckdb.connect(str(db), config={"threads": 2, "memory_limit": "512MB"})
    con.execute("SET checkpoint_threshold = '256MB'")
    columns = ", ".join(f"c{i} VARCHAR" for i in range(len(paths)))
    con.execute(f"CREATE TABLE events ({columns}, raw JSON USING COMPRESSION zstd)")
    listed = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    picked = ", ".join(f"v[{i + 1}]" for i in range(len(paths)))
    sql = (
        f"INSERT INTO events SELECT {picked}, j FROM (SELECT json_extract_string(j, {listed}) "
        "AS v, j FROM (SELECT unnest(json_extract($1::JSON, '$[*]')) AS j))"
    )
    texts = [body.decode() for body in bodies]
    started = time.perf_counter()
    for text in texts:
        con.execute("BEGIN")
        con.execute(sql, [text])
        con.execute("COMMIT")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    con.close()
    return rows / seconds, len(paths)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args(argv)
    sim = Simulator(args.events, 24)
    try:
        bodies = fetch_pages(sim.url)
    finally:
        sim.stop()
    floor, events = parse_floor(bodies)
    with tempfile.TemporaryDirectory(prefix="oktaduck-floors-") as work:
        gc.collect()
        storing = store_raw(bodies, Path(work) / "raw.duckdb")
        mapped, columns = duckdb_mapping(bodies, Path(work) / "mapped.duckdb")
    figures = {
        "events": events,
        "parse_floor_eps": round(floor),
        "store_raw_eps": round(storing),
        "store_raw_ratio": round(storing / floor, 3),
        "duckdb_mapping_eps": round(mapped),
        "duckdb_mapping_columns": columns,
        "duckdb_mapping_ratio": round(mapped / floor, 3),
    }
    print(f"{events:,} events in {len(bodies)} pages")
    print(f"parse floor (orjson.loads)                 {floor:>10,.0f} events/s")
    print(
        f"storing uuid + raw alone                   {storing:>10,.0f} events/s "
        f"(ratio {storing / floor:.3f})"
    )
    print(
        f"DuckDB parsing + {columns} plain paths + raw      {mapped:>10,.0f} events/s "
        f"(ratio {mapped / floor:.3f})"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

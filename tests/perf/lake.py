"""The lake's figures next to the file store's, on the same events.

Usage: python -m tests.perf.lake [--events N] [--ingest N] [--rounds 3] [--writers 3]

A throwaway PostgreSQL cluster (as the tests start one) holds the lake's catalog, its data a
folder next to it. Four parts:

- **ingest**: pages of 1000 events mapped once ahead, then committed two pages a transaction
  (as a catching-up poll groups them) through ``Store.commit_pages`` into a file store and
  into a lake, ``--ingest`` events a round, the rounds alternating file, lake, file, lake ...
  so that both meet the machine in the same states; each round's events are fresh (new uuids,
  published an hour after the round before). Events/s is the median round's. No HTTP and no
  mapping in the time: those cost the same for both stores (``bench.py`` measures them).
- **writers**: ``--writers`` processes committing the same way at once into one new lake,
  each its own source, ``--ingest`` events each; the figure is all their events over the time
  from the first one's start to the last one's end.
- **files**: the ingest lake's data files per million events, before and after compaction
  (``ducklake_flush_inlined_data`` then ``ducklake_merge_adjacent_files``).
- **scale**: a file store filled with ``--events`` events over 30 days (``fill.py``), copied
  into a new lake with ``store copy`` (events/s of the copy), then bytes per event on each
  (the file; the lake's Parquet files plus its catalog database) and every feed's latency over
  24 h and 30 days on each (median of 3), after compacting the lake.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson

from ingest.base.errors import OktaduckError
from ingest.config import normalized_mapping_path
from ingest.mapping import CompiledMapping, load_mapping
from ingest.store.db import DEFAULT_MEMORY_LIMIT, PageRows, Store, StoreTarget
from ingest.store.lake import LakeConfig, connect_lake
from tests.helpers.lake import PostgresCluster, make_lake, postgres_cluster
from tests.perf.fill import END, seed_events

PAGE = 1000
GROUP = 2  # pages a transaction: the poll's default group_events is 2000
REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class SeedPage:
    """A page mapped once; ``fresh`` makes a copy with new uuids and shifted times."""

    batch: Any
    raw: list[str]
    uuids: list[str]

    def fresh(self, shift: timedelta, source: str) -> PageRows:
        new = [str(uuid.uuid4()) for _ in self.uuids]
        columns = dict(self.batch.columns)
        columns["uuid"] = new
        columns["published"] = [p + shift for p in columns["published"]]
        raw = [
            text.replace(old, fresh, 1)
            for text, old, fresh in zip(self.raw, self.uuids, new, strict=True)
        ]
        batch = dataclasses.replace(self.batch, columns=columns, arrays=None)
        return PageRows(source, f"https://{source}.okta.com", f"next-{new[-1]}", batch, raw, new)


def seed_pages(mapping: CompiledMapping, events: int) -> list[SeedPage]:
    seed = seed_events(events)
    seed.sort(key=lambda e: str(e["published"]))
    pages = []
    for start in range(0, len(seed) - PAGE + 1, PAGE):
        chunk = seed[start : start + PAGE]
        batch = mapping.apply_batch(chunk)
        assert not batch.rejected
        raw = [orjson.dumps(e).decode() for e in chunk]
        pages.append(SeedPage(batch, raw, [str(e["uuid"]) for e in chunk]))
    return pages


def commit_round(
    store: Store, seed: list[SeedPage], events: int, shift: timedelta, source: str
) -> float:
    """Commit ``events`` fresh events in groups of GROUP pages; the seconds spent committing."""
    spent = 0.0
    done = 0
    span = timedelta(days=1)
    lap = 0
    while done < events:
        for start in range(0, len(seed), GROUP):
            if done >= events:
                break
            group = [p.fresh(shift + lap * span, source) for p in seed[start : start + GROUP]]
            started = time.perf_counter()
            store.commit_pages(group, END)
            spent += time.perf_counter() - started
            done += sum(len(p.uuids_in) for p in group)
        lap += 1
    return spent


def ingest_ab(
    file: Path,
    lake: LakeConfig,
    mapping: CompiledMapping,
    seed: list[SeedPage],
    events: int,
    rounds: int,
) -> dict[str, list[float]]:
    """Alternating rounds into the file store and the lake: events/s of each round."""
    rates: dict[str, list[float]] = {"file": [], "lake": []}
    targets: dict[str, StoreTarget] = {"file": file, "lake": lake}
    laps = -(-events // (len(seed) * PAGE))  # days a round's events span
    for number in range(rounds):
        for name in ("file", "lake"):
            shift = timedelta(days=number * laps)  # each round's events after the last's
            with Store(targets[name], mapping, serves_queries=False) as store:
                seconds = commit_round(store, seed, events, shift, "bench")
            rates[name].append(events / seconds)
            print(
                f"  round {number + 1} {name}: {events / seconds:,.0f} events/s",
                file=sys.stderr,
                flush=True,
            )
    return rates


def writer(argv: list[str]) -> int:
    """One of the concurrent writers (a subprocess): prepares its pages, says ready, waits
    for a line on stdin, commits, prints its start and end times as JSON."""
    catalog, data, source, events = argv[0], argv[1], argv[2], int(argv[3])
    mapping = load_mapping(normalized_mapping_path())
    seed = seed_pages(mapping, max(PAGE * GROUP, min(events, 20_000)))
    lake = LakeConfig(catalog=catalog, data=data, owner=source)
    with Store(lake, mapping, serves_queries=False) as store:
        store.hold("source", source, END)
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        commit_round(store, seed, events, timedelta(0), source)
        ended = time.time()
    print(json.dumps({"start": started, "end": ended, "events": events}), flush=True)
    return 0


def concurrent_writers(lake: LakeConfig, writers: int, events: int) -> dict[str, float]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.perf.lake",
                "--writer",
                lake.catalog,
                str(lake.data),
                f"org{i}",
                str(events),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for i in range(writers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"a writer failed to start: {line!r}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"a writer failed with {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    each = [r["events"] / (r["end"] - r["start"]) for r in results]
    con = connect_lake(lake, read_only=True)
    try:
        stored = con.execute("SELECT count(*), count(DISTINCT uuid) FROM events").fetchall()[0]
    finally:
        con.close()
    total = sum(r["events"] for r in results)
    if stored != (total, total):
        raise SystemExit(f"the writers stored {stored}, expected {total} distinct events")
    return {"eps": total / wall, "eps_each_min": min(each), "wall_s": wall}


def lake_files(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Data files of ``event_rows`` in the current snapshot, and their bytes."""
    rows = con.execute(
        "SELECT count(*), coalesce(sum(data_file_size_bytes), 0) "
        "FROM ducklake_list_files('lake', 'event_rows')"
    ).fetchall()
    return int(rows[0][0]), int(rows[0][1])


def compact(lake: LakeConfig) -> float:
    """Flush inlined rows to Parquet and merge adjacent small files; the seconds it took."""
    con = connect_lake(lake, read_only=False)
    try:
        started = time.perf_counter()
        con.execute("CALL ducklake_flush_inlined_data('lake')")
        con.execute("CALL ducklake_merge_adjacent_files('lake')")
        return time.perf_counter() - started
    finally:
        con.close()


def files_per_million(lake: LakeConfig) -> dict[str, float]:
    con = connect_lake(lake, read_only=True)
    try:
        events = con.execute("SELECT count(*) FROM event_rows").fetchall()[0][0]
        before, _ = lake_files(con)
    finally:
        con.close()
    seconds = compact(lake)
    con = connect_lake(lake, read_only=True)
    try:
        after, size = lake_files(con)
    finally:
        con.close()
    return {
        "events": events,
        "before": before / events * 1e6,
        "after": after / events * 1e6,
        "compact_s": seconds,
        "avg_file_mb": size / max(after, 1) / 2**20,
    }


def lake_bytes(lake: LakeConfig, cluster: PostgresCluster) -> tuple[int, int]:
    """The lake's Parquet files, and its catalog database (an empty one is some 7.5 MB)."""
    con = connect_lake(lake, read_only=True)
    try:
        rows = con.execute(
            "SELECT coalesce(sum(file_size_bytes), 0) FROM ducklake_table_info('lake')"
        ).fetchall()
        data = int(rows[0][0])
    finally:
        con.close()
    database = lake.catalog.split("dbname=", 1)[1].split()[0]
    catalog = int(cluster.psql(f"SELECT pg_database_size('{database}')").strip())
    return data, catalog


def file_bytes(path: Path) -> int:
    """The blocks a DuckDB file uses (its size on disk also counts blocks freed by deletes)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT used_blocks * block_size FROM pragma_database_size()")
        return int(rows.fetchall()[0][0])
    finally:
        con.close()


def feed_latency(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[float, float]]:
    from ingest.feeds.feedfile import load_feeds
    from tests.perf.feeds import time_feed

    until = END.isoformat()
    day = (END - timedelta(days=1)).isoformat()
    month = (END - timedelta(days=30)).isoformat()
    out = {}
    for name in load_feeds():
        times = []
        for since in (day, month):
            try:
                times.append(time_feed(con, name, since, until))
            except OktaduckError as err:  # a failure or a timeout: a figure of its own
                print(f"  feed {name} since {since[:10]}: {err}", file=sys.stderr, flush=True)
                times.append(float("nan"))
        out[name] = (times[0], times[1])
    return out


def scale(
    work: Path, cluster: PostgresCluster, mapping: CompiledMapping, events: int
) -> dict[str, Any]:
    from ingest.store.copy import copy_store
    from ingest.store.query import open_read_only
    from tests.perf.fill import fill

    file = work / "scale.duckdb"
    print(f"scale: filling a file store with {events:,} events ...", file=sys.stderr, flush=True)
    began = time.monotonic()
    filled_s = fill(file, events)
    stored = duckdb.connect(str(file), read_only=True)
    count = stored.execute("SELECT count(*) FROM events").fetchall()[0][0]
    stored.close()
    lake = make_lake("postgres", work / "scale-lake", cluster)
    print(f"scale: store copy of {count:,} events into a lake ...", file=sys.stderr, flush=True)
    copied = copy_store(file, lake, mapping)
    files = files_per_million(lake)
    out: dict[str, Any] = {
        "events": count,
        "fill_s": filled_s,
        "copy_eps": copied.events / copied.seconds,
        "copy_s": copied.seconds,
        "file_bytes_per_event": file_bytes(file) / count,
        "lake_bytes_per_event": lake_bytes(lake, cluster)[0] / count,
        "lake_catalog_mb": lake_bytes(lake, cluster)[1] / 2**20,
        "files_per_million": files,
    }
    print(f"scale: {json.dumps(out)}", file=sys.stderr, flush=True)  # kept if a feed fails
    print(
        f"scale: feeds on the file store, then on the lake ({time.monotonic() - began:.0f}s in)",
        file=sys.stderr,
        flush=True,
    )
    con = open_read_only(file)
    try:
        out["feeds_file"] = feed_latency(con)
    finally:
        con.close()
    con = connect_lake(lake, read_only=True)
    try:
        con.execute(f"SET memory_limit = '{DEFAULT_MEMORY_LIMIT}'")  # as open_read_only's
        out["feeds_lake"] = feed_latency(con)
    finally:
        con.close()
    return out


@contextlib.contextmanager
def workspace() -> Iterator[tuple[Path, PostgresCluster]]:
    work = Path(tempfile.mkdtemp(prefix="oktaduck-lake-bench-"))
    try:
        with postgres_cluster() as cluster:
            yield work, cluster
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(events: int, ingest: int, rounds: int, writers: int) -> dict[str, Any]:
    mapping = load_mapping(normalized_mapping_path())
    figures: dict[str, Any] = {"lake_events": events, "lake_ingest_events": ingest}
    with workspace() as (work, cluster):
        seed = seed_pages(mapping, 20_000)
        print(
            f"lake ingest: {rounds} rounds of {ingest:,} events each way ...",
            file=sys.stderr,
            flush=True,
        )
        lake = make_lake("postgres", work / "ingest-lake", cluster)
        rates = ingest_ab(work / "ingest.duckdb", lake, mapping, seed, ingest, rounds)
        figures["ingest_eps_file"] = statistics.median(rates["file"])
        figures["ingest_eps_lake"] = statistics.median(rates["lake"])
        figures["ingest_rounds"] = rates
        ingested = ingest * rounds
        figures["ingest_file_bytes_per_event"] = file_bytes(work / "ingest.duckdb") / ingested
        figures["lake_files_per_million"] = files_per_million(lake)
        data, catalog = lake_bytes(lake, cluster)
        figures["ingest_lake_bytes_per_event"] = data / ingested
        figures["ingest_lake_catalog_mb"] = catalog / 2**20
        print(
            f"lake writers: {writers} processes, {ingest:,} events each ...",
            file=sys.stderr,
            flush=True,
        )
        shared = make_lake("postgres", work / "writers-lake", cluster)
        figures["writers"] = writers
        figures["writers_eps"] = concurrent_writers(shared, writers, ingest)
        figures["scale"] = scale(work, cluster, mapping, events)
    return figures


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures of ``measure`` as rows of a readable table."""
    scaled = figures["scale"]
    files = figures["lake_files_per_million"]
    rows = [
        ("ingest, file store", f"{figures['ingest_eps_file']:,.0f} events/s"),
        ("ingest, postgres lake", f"{figures['ingest_eps_lake']:,.0f} events/s"),
        (
            f"ingest, {figures['writers']} writers on one lake",
            f"{figures['writers_eps']['eps']:,.0f} events/s "
            f"(slowest writer {figures['writers_eps']['eps_each_min']:,.0f})",
        ),
        (
            "lake files / 1M events (ingest)",
            f"{files['before']:,.0f} before, {files['after']:,.0f} after compaction",
        ),
        (
            f"store copy file -> lake ({scaled['events']:,} events)",
            f"{scaled['copy_eps']:,.0f} events/s",
        ),
        (
            "lake files / 1M events (copied)",
            f"{scaled['files_per_million']['before']:,.0f} before, "
            f"{scaled['files_per_million']['after']:,.0f} after compaction",
        ),
        (
            "bytes per event, ingested: file / lake",
            f"{figures['ingest_file_bytes_per_event']:,.0f} / "
            f"{figures['ingest_lake_bytes_per_event']:,.0f} "
            f"(lake: Parquet, compacted; catalog {figures['ingest_lake_catalog_mb']:.1f} MB)",
        ),
        (
            "bytes per event, copied: file / lake",
            f"{scaled['file_bytes_per_event']:,.0f} / {scaled['lake_bytes_per_event']:,.0f} "
            f"(catalog {scaled['lake_catalog_mb']:.1f} MB)",
        ),
    ]
    for name in sorted(scaled["feeds_file"]):
        f24, f30 = scaled["feeds_file"][name]
        l24, l30 = scaled["feeds_lake"][name]
        rows.append(
            (
                f"feed {name} 24h / 30d",
                f"file {f24:.0f} / {f30:.0f} ms, lake {l24:.0f} / {l30:.0f} ms",
            )
        )
    return rows


def report(figures: dict[str, Any]) -> None:
    rows = table(figures)
    width = max(len(r[0]) for r in rows)
    print(f"{'lake figure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures, default=float, sort_keys=True))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--writer"]:
        return writer(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the scale part")
    parser.add_argument("--ingest", type=int, default=50_000, help="events of an ingest round")
    parser.add_argument("--rounds", type=int, default=3, help="ingest rounds each way")
    parser.add_argument("--writers", type=int, default=3, help="concurrent writer processes")
    args = parser.parse_args(argv)
    report(measure(args.events, args.ingest, args.rounds, args.writers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

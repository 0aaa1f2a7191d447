"""The benchmark suite: ``make bench`` (full sizes) or ``make bench-quick`` (a tenth).

Everything runs on this machine against the simulated org served over HTTP on 127.0.0.1 with
its rate limit off. It prints a readable table, the targets met or not, and, as its last
line, one JSON object with every figure. Sizes (full / quick):

- poll vs baseline (``tests/perf/versus.py``; ``--versus-events``, default 200,000 / 50,000,
  ``--versus-rounds`` 3 / 1, ``--no-versus`` skips it): ``oktaduck poll`` and a
  straightforward client of our own (``tests/perf/baseline.py``: httpx, orjson, dicts to 40
  Arrow columns, no raw) alternating against one org, each into a fresh database: events/s,
  the median ratio of each pair, CPU per event and peak RSS of each client's process tree,
  every uuid stored once by both;
- ingest: N events served by a simulator subprocess (1,000,000 / 100,000), polled by a real
  ``oktaduck poll`` subprocess into a fresh database (wall clock, CPU, peak RSS);
- parse floor: ``orjson.loads`` of the same pages, nothing else;
- mapping: ``apply_batch`` (normalized) and ``apply_document`` (ECS, OCSF) on those events;
- dedup: one 1000-event page committed at 0, 1M and 10M stored rows (0, 100k, 1M quick);
- feeds: every built-in feed over 24 h and 30 days with 5M rows stored (500k quick);
- export: events per second per format to a file;
- storage: database bytes after a checkpoint divided by the raw JSON bytes;
- remap and import (``tests/perf/bulk.py``; ``--bulk-rows``, default 1,000,000 / 100,000;
  ``--no-bulk`` skips them): ``oktaduck remap`` of a filled store after a mapping change, and
  ``oktaduck import`` of an NDJSON.gz archive of as many events (skipped with a note while the
  command does not exist): rows or events per second, CPU per row, peak RSS;
- lake (``tests/perf/lake.py``; ``--lake-events``, default 1,000,000 / 100,000; ``--no-lake``
  skips it): ingest on a PostgreSQL-catalog lake next to the file store, alternating, three
  writers at once, files per million events before and after compaction, bytes per event,
  ``store copy`` speed and every feed's latency on both stores holding the same events.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.perf.versus import POLL_OPTIONS

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bench-token"


class Simulator:
    """``oktaduck simulate`` in a subprocess holding ``events`` over the last ``hours``."""

    def __init__(self, events: int, hours: float) -> None:
        env = {**os.environ, "OKTA_API_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "simulate", "--port", "0",
             "--events", str(events), "--hours", str(hours), "--rate-limit", "0"],
            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.split(" at ", 1)[1].split(" ", 1)[0]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        if self.proc.stdout:
            self.proc.stdout.close()


def fetch_pages(url: str) -> list[bytes]:
    """Every page body of a cold-start poll (the same requests the poller makes)."""
    bodies = []
    since = (datetime.now(UTC) - timedelta(days=89)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    link: str | None = f"{url}/api/v1/logs?since={since}&limit=1000&sortOrder=ASCENDING"
    with httpx.Client(headers={"Authorization": f"SSWS {TOKEN}"}, timeout=60) as client:
        while link:
            response = client.get(link)
            response.raise_for_status()
            bodies.append(response.content)
            count = response.content.count(b'"uuid"')
            nxt = response.links.get("next", {}).get("url")
            if count < 1000 or nxt == link:
                break
            link = nxt
    return bodies


def parse_floor(bodies: list[bytes]) -> tuple[float, int]:
    import gc

    gc.disable()
    try:
        best = float("inf")
        events = 0
        for _ in range(3):
            started = time.perf_counter()
            events = sum(len(orjson.loads(b)) for b in bodies)
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return events / best, events


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, summed (0 once it is gone)."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def ingest(url: str, db: Path, work: Path) -> dict[str, float]:
    """One real ``oktaduck poll`` subprocess: wall time, CPU time and peak RSS.

    CPU time is that process's own and its mapping child's (``wait4``), not the simulator's.
    Peak RSS is the largest sum of the poll's and its child's resident memory, sampled every
    20 ms: ``wait4`` would give the larger of the two, and Linux carries the memory
    high-water mark of the process that started a child into the child's peak, so this
    runs before the benchmark holds any pages.
    """
    out, err = work / "ingest.out", work / "ingest.err"
    counted = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = counted.ru_utime + counted.ru_stime
    started = time.perf_counter()
    peak = 0.0
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "poll", "--org", url, "--db", str(db),
             *POLL_OPTIONS],
            env={**os.environ, "OKTA_API_TOKEN": TOKEN}, cwd=REPO, stdout=stdout, stderr=stderr,
        )  # fmt: skip
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed: {err.read_text()[-2000:]}")
    text = out.read_text()
    stored = int(text.split(" stored")[0].rsplit(" ", 1)[1])
    cpu = usage.ru_utime + usage.ru_stime - before
    return {
        "events": stored,
        "wall_s": wall,
        "eps": stored / wall,
        "cpu_s_per_1000": cpu / stored * 1000,
        "peak_rss_mb": peak,
    }


def mapping_speed(bodies: list[bytes]) -> dict[str, float]:
    from ingest.mapping import default_mapping_dir, load_mapping

    events = [e for b in bodies[:50] for e in orjson.loads(b)]
    out = {}
    for name in ("normalized", "ecs", "ocsf"):
        mapping = load_mapping(default_mapping_dir() / "okta" / f"{name}.toml")
        started = time.perf_counter()
        if name == "normalized":
            mapping.apply_batch(events)
        else:
            for event in events:
                try:
                    mapping.apply_document(event)
                except Exception:
                    continue
        out[name] = len(events) / (time.perf_counter() - started)
    return out


def export_speed(db: Path, work: Path, limit: int) -> dict[str, float]:
    from ingest.config import normalized_mapping_path
    from ingest.export.oneoff import Selection, deliver_all, select_lines
    from ingest.export.sinks import FileSink, FileSinkConfig
    from ingest.mapping import load_mapping
    from ingest.store.query import open_read_only

    mapping = load_mapping(normalized_mapping_path())
    out = {}
    con = open_read_only(db)
    try:
        now = datetime.now(UTC)
        for fmt in ("raw", "normalized", "ecs", "ocsf"):
            target = work / f"export.{fmt}.ndjson"
            selection = Selection(fmt, now - timedelta(days=90), now + timedelta(days=1))
            sink = FileSink(FileSinkConfig(path=target, single_file=True))
            started = time.perf_counter()
            sent = 0

            def limited(batches: Any) -> Any:
                nonlocal sent
                for lines in batches:
                    sent += len(lines)
                    yield lines
                    if sent >= limit:
                        return

            deliver_all(limited(select_lines(con, selection, mapping)), sink, progress=False)
            out[fmt] = sent / (time.perf_counter() - started)
            target.unlink()
    finally:
        con.close()
    return out


def storage_ratio(db: Path, raw_bytes: int) -> float:
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("CHECKPOINT")
    con.close()
    return db.stat().st_size / raw_bytes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--lake-events", type=int, help="events of the lake part's stores")
    parser.add_argument("--no-lake", action="store_true", help="leave the lake part out")
    parser.add_argument("--versus-events", type=int, help="events of poll vs baseline")
    parser.add_argument("--versus-rounds", type=int, help="rounds of each client")
    parser.add_argument("--no-versus", action="store_true", help="leave poll vs baseline out")
    parser.add_argument("--poll-mappers", type=int, default=1, help="the poll's --mappers")
    parser.add_argument("--bulk-rows", type=int, help="rows to remap and events to import")
    parser.add_argument("--no-bulk", action="store_true", help="leave remap and import out")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    n_ingest = 1_000_000 // scale
    figures: dict[str, Any] = {"quick": args.quick}
    work = Path(tempfile.mkdtemp(prefix="oktaduck-bench-"))
    try:
        if not args.no_versus:
            # first, while this process is small; a quarter of the size when quick, as at a
            # tenth the clients' start-up would weigh on the ratio
            from tests.perf.versus import side_by_side

            n = args.versus_events or (50_000 if args.quick else 200_000)
            rounds = args.versus_rounds or (1 if args.quick else 3)
            print(f"poll vs baseline: {rounds} rounds of {n:,} events ...", file=sys.stderr)
            versus = figures["versus"] = side_by_side(n, rounds, args.poll_mappers)
            for key in ("poll_vs_baseline", "poll_eps", "baseline_eps", "poll_peak_rss_mb",
                        "baseline_peak_rss_mb", "poll_cpu_us_per_event",
                        "baseline_cpu_us_per_event"):  # fmt: skip
                figures[key] = versus[key]
        print(f"serving {n_ingest:,} events from the simulator ...", file=sys.stderr, flush=True)
        sim = Simulator(n_ingest, hours=24 * 30)
        try:
            # The poll runs first, while this process is small: a child started with vfork
            # inherits its parent's memory high-water mark into its own peak RSS.
            print("ingesting ...", file=sys.stderr, flush=True)
            result = ingest(sim.url, work / "ingest.duckdb", work)
            bodies = fetch_pages(sim.url)
            raw_bytes = sum(len(b) for b in bodies)
            figures["parse_floor_eps"], figures["events_served"] = parse_floor(bodies)
            figures["mapping_eps"] = mapping_speed(bodies)
            del bodies
        finally:
            sim.stop()
        figures["ingest_eps"] = result["eps"]
        figures["ingest_cpu_s_per_1000"] = result["cpu_s_per_1000"]
        figures["ingest_peak_rss_mb"] = result["peak_rss_mb"]
        figures["ingest_ratio"] = result["eps"] / figures["parse_floor_eps"]
        figures["storage_ratio"] = storage_ratio(work / "ingest.duckdb", raw_bytes)
        print("exporting ...", file=sys.stderr, flush=True)
        figures["export_eps"] = export_speed(work / "ingest.duckdb", work, 100_000 // scale)
        for fmt, eps in figures["export_eps"].items():
            figures[f"export_eps_{fmt}"] = eps
        print("dedup ...", file=sys.stderr, flush=True)
        from tests.perf.dedup import measure

        sizes = {"0": 0, "1m": 1_000_000 // scale, "10m": 10_000_000 // scale}
        for key, rows in sizes.items():
            figures[f"dedup_ms_{key}"] = measure(rows)
        figures["dedup_ratio"] = figures["dedup_ms_10m"] / figures["dedup_ms_0"]
        print("feeds (filling the table) ...", file=sys.stderr, flush=True)
        from tests.perf.feeds import measure as feeds_measure
        from tests.perf.fill import fill

        feeds_db = work / "feeds.duckdb"
        fill(feeds_db, 5_000_000 // scale)
        latency = feeds_measure(feeds_db)
        figures["feed_ms"] = {k: {"24h": v[0], "30d": v[1]} for k, v in latency.items()}
        figures["feed_ms_max_24h"] = max(v[0] for v in latency.values())
        figures["feed_ms_max_30d"] = max(v[1] for v in latency.values())
        feeds_db.unlink()
        if not args.no_bulk:
            from tests.perf.bulk import import_speed, remap_speed

            rows = args.bulk_rows or 1_000_000 // scale
            print(f"remap of {rows:,} rows ...", file=sys.stderr, flush=True)
            figures["remap"] = remap_speed(rows, work)
            print(f"import of {rows:,} events ...", file=sys.stderr, flush=True)
            figures["import"] = import_speed(rows, work)
            for part, keys in (("remap", ("rows_s", "cpu_us_per_row", "peak_rss_mb")),
                               ("import", ("eps", "cpu_us_per_event", "peak_rss_mb"))):  # fmt: skip
                for key in keys:
                    if key in figures[part]:
                        figures[f"{part}_{key}"] = figures[part][key]
        if not args.no_lake:
            from tests.perf.lake import measure as lake_measure

            print("lake ...", file=sys.stderr, flush=True)
            lake_events = args.lake_events or 1_000_000 // scale
            figures["lake"] = lake_measure(lake_events, 50_000 // scale, 3, 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(figures)
    return 0


TARGETS = {
    "ingest_ratio": (">=", 0.5),
    "dedup_ratio": ("<=", 1.5),
    "ingest_peak_rss_mb": ("<", 300),
    "feed_ms_max_24h": ("<", 300),
    "feed_ms_max_30d": ("<", 3000),
    "export_eps_raw": (">=", 50_000),
    "storage_ratio": ("<=", 0.25),
    # issue 19
    "poll_vs_baseline": (">=", 1.5),
    "poll_peak_rss_mb": ("<", 300),
    "poll_cpu_us_per_event": ("<=", 45),
    "import_eps": (">=", 50_000),
    "remap_rows_s": (">=", 50_000),
}


def report(figures: dict[str, Any]) -> None:
    rows = [
        ("parse floor (orjson.loads)", f"{figures['parse_floor_eps']:,.0f} events/s"),
        ("ingest end to end", f"{figures['ingest_eps']:,.0f} events/s"),
        ("ingest CPU", f"{figures['ingest_cpu_s_per_1000']:.3f} s per 1000 events"),
        ("ingest / parse floor", f"{figures['ingest_ratio']:.2f}"),
        ("ingest peak RSS", f"{figures['ingest_peak_rss_mb']:.0f} MB"),
        *[(f"mapping {k}", f"{v:,.0f} events/s") for k, v in figures["mapping_eps"].items()],
        *[
            (f"dedup at {k} rows", f"{figures[f'dedup_ms_{k}']:.1f} ms / page")
            for k in ("0", "1m", "10m")
        ],
        ("dedup 10M / 0", f"{figures['dedup_ratio']:.2f}"),
        ("feeds max 24h", f"{figures['feed_ms_max_24h']:.0f} ms"),
        ("feeds max 30d", f"{figures['feed_ms_max_30d']:.0f} ms"),
        *[(f"export {k}", f"{v:,.0f} events/s") for k, v in figures["export_eps"].items()],
        ("storage / raw JSON", f"{figures['storage_ratio']:.3f}"),
    ]
    if "versus" in figures:
        from tests.perf.versus import table as versus_table

        rows += versus_table(figures["versus"])
    if "remap" in figures or "import" in figures:
        from tests.perf.bulk import table as bulk_table

        rows += bulk_table(figures)
    if "lake" in figures:
        from tests.perf.lake import table

        rows += table(figures["lake"])
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("\ntargets:")
    for key, (op, limit) in TARGETS.items():
        if key not in figures:
            print(f"  {key} {op} {limit}: not measured")
            continue
        got: float = figures[key]
        ok = {">=": got >= limit, "<=": got <= limit, "<": got < limit}[op]
        print(f"  {key} {op} {limit}: {got:.3f} {'met' if ok else 'not met'}")
    print(json.dumps(figures, default=float, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

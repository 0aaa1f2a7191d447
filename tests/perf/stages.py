"""Where ``oktaduck poll``'s CPU goes, stage by stage, in microseconds per event.

``python -m tests.perf.stages [--events N]`` serves N events (default 100,000) from
``tests/perf/simorg.py``, then runs each stage of a one-shot poll on the same pages, one stage
at a time in this process, timing the CPU this process uses (DuckDB's threads included):

- child (``ingest.collect.pagemap``, garbage collection off as there): ``parse_page`` (split
  the page, parse each event), ``apply_batch`` (the normalized mapping), packing the answer
  (``pack`` less its mapping: the Arrow arrays, their IPC stream, the texts in one buffer;
  the arrays alone are timed too) and pickling it;
- parent: fetching the pages over HTTP (httpx, as the poller's transport does), unpickling,
  reading the page back (``unpack``: the arrays from their IPC stream, the texts' buffer),
  committing pages of 1000 events (``Store.commit_pages`` with a one-shot poll's DuckDB
  settings: insert, cursor, WAL) and the closing checkpoint; then committing the same pages
  again, every event now a duplicate (the uuid lookup's path).

The stages follow ``ingest/collect/pagemap.py`` and ``ingest/store/db.py`` as they are; a
real poll overlaps them on two cores, so its wall time is less than their sum. The last line
is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.perf.bench import fetch_pages
from tests.perf.versus import Org


def cpu(work: Callable[[], Any], gc_off: bool = False) -> tuple[float, Any]:
    """CPU seconds of this process while ``work`` runs, and what it returned."""
    gc.collect()
    if gc_off:
        gc.disable()
    try:
        started = time.process_time()
        result = work()
        return time.process_time() - started, result
    finally:
        gc.enable()


def stages(bodies: list[bytes], work: Path) -> dict[str, float]:
    from ingest.collect import pagemap
    from ingest.collect.settings import DEFAULT_GROUP_BYTES, DEFAULT_GROUP_EVENTS
    from ingest.config import normalized_mapping_path
    from ingest.mapping import load_mapping
    from ingest.okta.elements import parse_page
    from ingest.store.db import INGEST_MEMORY_LIMIT, INGEST_THREADS, PageRows, Store

    mapping = load_mapping(normalized_mapping_path())
    seconds: dict[str, float] = {}

    seconds["parse"], parsed = cpu(lambda: [parse_page(b) for b in bodies], gc_off=True)
    events = sum(p.count for p in parsed)
    seconds["map"], batches = cpu(
        lambda: [mapping.apply_batch(p.events) for p in parsed], gc_off=True
    )
    # (pack's share of building the arrays, alone: it is not added to the child's total)
    seconds["arrow"], _ = cpu(lambda: [b.arrow_columns(mapping) for b in batches], gc_off=True)
    batches.clear()
    packing, packed = cpu(lambda: [pagemap.pack(mapping, p) for p in parsed], gc_off=True)
    seconds["pack"] = packing - seconds["map"]
    parsed.clear()
    seconds["pickle"], sent = cpu(
        lambda: [pickle.dumps(("page", p), protocol=pickle.HIGHEST_PROTOCOL) for p in packed]
    )
    packed.clear()
    seconds["unpickle"], received = cpu(lambda: [pickle.loads(s)[1] for s in sent])
    sent.clear()
    seconds["unpack"], pages = cpu(lambda: [pagemap.unpack(mapping, p) for p in received])
    received.clear()
    now = datetime.now(UTC)
    rows = [
        PageRows("bench", "http://127.0.0.1", None, p.batch, p.raw, p.uuids, p.bad) for p in pages
    ]
    with Store(
        work / "stages.duckdb", mapping, INGEST_MEMORY_LIMIT, INGEST_THREADS, serves_queries=False
    ) as store:
        # in groups as a one-shot poll at its defaults commits them (``poll.group_limits``)
        size, _ = store.default_group(DEFAULT_GROUP_EVENTS, DEFAULT_GROUP_BYTES)
        groups: list[list[PageRows]] = [[]]
        for row in rows:
            if sum(len(r.raw) for r in groups[-1]) >= size:
                groups.append([])
            groups[-1].append(row)
        seconds["commit"], _ = cpu(lambda: [store.commit_pages(g, now) for g in groups])
        seconds["checkpoint"], _ = cpu(lambda: store.con.execute("CHECKPOINT"))
        seconds["commit_duplicates"], _ = cpu(lambda: [store.commit_pages(g, now) for g in groups])
    return {"events": events, **{k: v / events * 1e6 for k, v in seconds.items()}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args(argv)
    org = Org(args.events)
    try:
        fetching, bodies = cpu(lambda: fetch_pages(org.url))
    finally:
        org.stop()
    with tempfile.TemporaryDirectory(prefix="oktaduck-stages-") as work:
        figures: dict[str, float] = stages(bodies, Path(work))
    figures["http"] = fetching / figures["events"] * 1e6
    child = ("parse", "map", "pack", "pickle")
    parent = ("http", "unpickle", "unpack", "commit", "checkpoint")
    print(f"{figures['events']:,.0f} events, {len(bodies)} pages; CPU us per event:")
    for side, names in (("mapping child", child), ("polling process", parent)):
        total = sum(figures[n] for n in names)
        figures[f"{side.split()[0]}_total"] = total
        print(f"  {side}: {total:.1f}")
        for name in names:
            print(f"    {name:<14} {figures[name]:6.1f}")
            if name == "pack":
                print(f"      (the Arrow arrays alone: {figures['arrow']:.1f})")
    print(f"  both: {figures['mapping_total'] + figures['polling_total']:.1f}")
    print(
        f"  (a second commit of the same pages, all duplicates: {figures['commit_duplicates']:.1f})"
    )
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

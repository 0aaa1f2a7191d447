"""Realistic events in bulk for the side-by-side benchmarks, and an org serving a fixed set.

``python -m tests.perf.simorg --events N --hours H`` serves N events of the simulator's
generator over ``/api/v1/logs`` on 127.0.0.1 (rate limit off, the token from
``OKTA_API_TOKEN``), all published and persisted before it starts serving, so that every
client run against it, first or last, reads the same N events. It prints ``serving N events
at URL`` and serves until SIGTERM. (``oktaduck simulate`` persists 1% of its events up to two
minutes late, which a poll started at once would miss.)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.simulate.generator import EventGenerator

CHUNK = 20_000


def event_chunks(
    count: int, hours: float, seed: int = 19, end: datetime | None = None
) -> Iterator[list[dict[str, Any]]]:
    """``count`` generated events over ``hours`` up to ``end`` (default: a minute ago), in
    published order, a slice of time at a time so that no more than ``CHUNK`` exist at once."""
    gen = EventGenerator(seed=seed)
    end = end or datetime.now(UTC) - timedelta(minutes=1)
    start = end - timedelta(hours=hours)
    slices = max(1, -(-count // CHUNK))
    step = (end - start) / slices
    for i in range(slices):
        size = count // slices + (1 if i < count % slices else 0)
        if size:
            yield gen.stream(size, start + i * step, start + (i + 1) * step)


def main(argv: list[str]) -> int:
    from ingest.simulate.org import OrgConfig, SimulatedOrg
    from ingest.simulate.server import SimulatorServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--hours", type=float, default=24 * 30)
    args = parser.parse_args(argv)
    token = os.environ.get("OKTA_API_TOKEN")
    if not token:
        print("simorg: set OKTA_API_TOKEN", file=sys.stderr)
        return 2
    org = SimulatedOrg(OrgConfig(tokens=frozenset({token}), limit=0))
    for chunk in event_chunks(args.events, args.hours):
        # persisted 5 ms after published: visible to every client from the start
        org.add(chunk, delay=0.005)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with SimulatorServer(org) as server:
        print(f"serving {len(org)} events at {server.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

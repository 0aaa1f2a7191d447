"""``oktaduck poll`` against the baseline client (tests/perf/baseline.py), alternating.

One org (``tests/perf/simorg.py`` in a subprocess: N generated events in 1000-event pages,
rate limit off) is read by each client in turn into a fresh DuckDB file: baseline, poll,
baseline, poll ... For every round: wall seconds, events per second, CPU seconds of the
client's process tree (user + system of the process and of the children it waited for, from
``os.wait4``: the poll's mapping child counts, the org's server does not), CPU microseconds
per event, and the peak of the tree's summed resident memory (``/proc`` sampled every 20 ms).
Each database is then checked to hold every served uuid once. The ratio poll / baseline is
taken pair by pair (round i of each) and its median reported.

``python -m tests.perf.versus [--events N] [--rounds R]`` runs this part alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import duckdb

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bench-token"
# ``oktaduck poll``'s options besides the org and database: its defaults otherwise (a page a
# commit, see ``Store.default_group``)
POLL_OPTIONS = ("--lookback", "89d")
ENV = {**os.environ, "OKTA_API_TOKEN": TOKEN}


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every descendant of it that is still there."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, summed (0 once they are gone)."""
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total / 1024


@dataclass(frozen=True)
class Run:
    """What one measured subprocess took."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float  # the tree's summed RSS, sampled
    maxrss_mb: float  # the largest single process's high-water mark (wait4)
    returncode: int
    stdout: str
    stderr: str


def measure(argv: list[str], work: Path, name: str, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` from the checkout; time it, count its tree's CPU, sample its memory."""
    out, err = work / f"{name}.out", work / f"{name}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env or ENV, cwd=REPO, stdout=stdout, stderr=stderr)
        peak = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.02)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak,
        maxrss_mb=usage.ru_maxrss / 1024,
        returncode=proc.returncode,
        stdout=out.read_text(),
        stderr=err.read_text(),
    )


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


class Org:
    """``tests/perf/simorg.py`` in a subprocess, serving ``events`` events."""

    def __init__(self, events: int, hours: float = 24 * 30) -> None:
        self.proc = subprocess.Popen(
            cli("tests.perf.simorg", "--events", str(events), "--hours", str(hours)),
            stdout=subprocess.PIPE, text=True, env=ENV, cwd=REPO,
        )  # fmt: skip
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line.startswith("serving "):
            self.stop()
            raise SystemExit(f"the simulated org did not start: {line.strip()!r}")
        self.events = int(line.split()[1])
        self.url = line.rsplit(" at ", 1)[1].strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        if self.proc.stdout:
            self.proc.stdout.close()


def uuid_counts(db: Path) -> tuple[int, int]:
    """(rows, distinct uuids) of a database's events table."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT count(*), count(DISTINCT uuid) FROM events").fetchall()
    finally:
        con.close()
    return int(rows[0][0]), int(rows[0][1])


def client_round(
    client: str, url: str, served: int, work: Path, n: int, mappers: int = 1
) -> dict[str, Any]:
    db = work / f"{client}-{n}.duckdb"
    if client == "poll":
        options = (*POLL_OPTIONS, "--mappers", str(mappers))
        argv = cli("ingest.cli", "poll", "--org", url, "--db", str(db), *options)
    else:
        argv = cli("tests.perf.baseline", "--org", url, "--db", str(db), "--lookback-days", "89")
    run = measure(argv, work, f"{client}-{n}")
    if run.returncode != 0:
        raise SystemExit(f"{client} failed: {run.stderr.strip()[-2000:]}")
    rows, distinct = uuid_counts(db)
    for leftover in work.glob(f"{client}-{n}.duckdb*"):
        leftover.unlink()
    return {
        "client": client,
        "events": rows,
        "exact": rows == distinct == served,
        "wall_s": run.wall_s,
        "eps": rows / run.wall_s,
        "cpu_s": run.cpu_s,
        "cpu_us_per_event": run.cpu_s / max(rows, 1) * 1e6,
        "peak_rss_mb": run.peak_rss_mb,
        "maxrss_mb": run.maxrss_mb,
    }


def side_by_side(events: int, rounds: int, mappers: int = 1) -> dict[str, Any]:
    """Alternating rounds of both clients against one org of ``events`` events; the poll
    with ``mappers`` mapping processes."""
    work = Path(tempfile.mkdtemp(prefix="oktaduck-versus-"))
    org = Org(events)
    results: list[dict[str, Any]] = []
    try:
        for n in range(rounds):
            for client in ("baseline", "poll"):
                print(f"  round {n + 1}: {client} ...", file=sys.stderr, flush=True)
                results.append(client_round(client, org.url, org.events, work, n, mappers))
    finally:
        org.stop()
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    base = [r for r in results if r["client"] == "baseline"]
    poll = [r for r in results if r["client"] == "poll"]
    ratios = [p["eps"] / b["eps"] for b, p in zip(base, poll, strict=True)]
    return {
        "events": org.events,
        "rounds": results,
        "ratios": ratios,
        "poll_vs_baseline": statistics.median(ratios),
        "exact": all(r["exact"] for r in results),
        "same_count": len({r["events"] for r in results}) == 1,
        **{
            f"{name}_{key}": statistics.median(r[key] for r in runs)
            for name, runs in (("baseline", base), ("poll", poll))
            for key in ("eps", "cpu_us_per_event")
        },
        "baseline_peak_rss_mb": max(r["peak_rss_mb"] for r in base),
        "poll_peak_rss_mb": max(r["peak_rss_mb"] for r in poll),
    }


def table(v: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (
            f"round {i // 2 + 1} {r['client']}",
            f"{r['eps']:,.0f} events/s, {r['cpu_us_per_event']:.0f} us CPU/event, "
            f"peak {r['peak_rss_mb']:.0f} MB, {r['events']:,} stored"
            f"{'' if r['exact'] else ' NOT EXACT'}",
        )
        for i, r in enumerate(v["rounds"])
    ]
    ratios = ", ".join(f"{x:.2f}" for x in v["ratios"])
    return [
        *rows,
        ("poll / baseline events/s (median)", f"{v['poll_vs_baseline']:.2f} (pairs: {ratios})"),
        (
            "poll / baseline CPU per event",
            f"{v['poll_cpu_us_per_event']:.0f} / {v['baseline_cpu_us_per_event']:.0f} us",
        ),
        (
            "poll / baseline peak RSS",
            f"{v['poll_peak_rss_mb']:.0f} / {v['baseline_peak_rss_mb']:.0f} MB",
        ),
        (
            "every uuid once, same count",
            f"{'yes' if v['exact'] and v['same_count'] else 'NO'} ({v['events']:,} served)",
        ),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mappers", type=int, default=1, help="the poll's --mappers")
    args = parser.parse_args(argv)
    figures = side_by_side(args.events, args.rounds, args.mappers)
    for name, value in table(figures):
        print(f"{name:<36}  {value}")
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

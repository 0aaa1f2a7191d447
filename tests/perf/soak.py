"""``make soak``: the daemon against 20 simulated orgs producing events continuously, with
injected 429s and faults, for 10 minutes; then 50 quiet orgs polled every 60 s for 5 minutes.

Reports, per org, the events the org holds against the events stored (they must be equal),
the daemon's memory at the start and the end of the busy phase, the errors it logged, and its
CPU use while idle. Usage: python -m tests.perf.soak [--minutes 10] [--idle-minutes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson

from ingest.simulate.org import OrgConfig, SimulatedOrg
from ingest.simulate.server import SimulatorServer

REPO = Path(__file__).resolve().parents[2]
TOKEN = "soak-token"
FAULTS = ("429", "500", "503", "truncated", "invalid_json", "reset", "concurrency")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Fleet:
    def __init__(self, count: int, events: int, limit: int) -> None:
        now = datetime.now(UTC)
        self.orgs = []
        for i in range(count):
            org = SimulatedOrg(OrgConfig(tokens=frozenset({TOKEN}), limit=limit, seed=500 + i))
            org.add(
                org.generator.stream(events, now - timedelta(hours=6), now - timedelta(minutes=1))
            )
            self.orgs.append((f"org{i:02d}", org, SimulatorServer(org)))

    def config(self, path: Path, interval: str) -> Path:
        blocks = [
            f'[[sources]]\nname = "{name}"\norg_url = "{server.url}"\ntoken_env = "TOK"\n'
            f'poll_interval = "{interval}"\nretry_for = "2m"\n'
            for name, _, server in self.orgs
        ]
        path.write_text(
            '[storage]\npath = "soak.duckdb"\n\n[api]\nlisten = "127.0.0.1:0"\n\n'
            + "\n".join(blocks)
        )
        return path

    def stop(self) -> None:
        for _, _, server in self.orgs:
            server.stop()


class Daemon:
    def __init__(self, config: Path) -> None:
        env = {**os.environ, "TOK": TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "--log-level", "info", "run", "--config",
             str(config)],
            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )  # fmt: skip
        self.events: Counter[str] = Counter()
        self.cycles: dict[str, float] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                log = orjson.loads(line)
            except orjson.JSONDecodeError:
                with self.lock:
                    self.errors.append(line.strip())
                continue
            with self.lock:
                self.events[log["event"]] += 1
                if log["event"] == "poll.cycle_done" and log.get("caught_up"):
                    self.cycles[log["source"]] = time.monotonic()
                if log.get("level") == "error":
                    self.errors.append(f"{log['event']}: {log.get('error', '')}")

    def caught_up_since(self, names: list[str], since: float, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(self.cycles.get(n, 0) > since for n in names):
                    return True
            time.sleep(0.5)
        return False

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def busy(minutes: float, work: Path) -> dict[str, Any]:
    fleet = Fleet(20, 2000, limit=120)
    stop = threading.Event()
    rng = random.Random(7)

    def produce() -> None:
        while not stop.wait(2.0):
            now = datetime.now(UTC)
            for _, org, _ in fleet.orgs:
                # as on Okta, what is stored now is persisted now or later, never in the past
                # of a poller's cursor; some of it published up to 30 s ago (late events)
                events = org.generator.stream(rng.randint(1, 12), now - timedelta(seconds=30), now)
                org.add_late(
                    events, persisted_at=now + timedelta(milliseconds=rng.randint(0, 3000))
                )
            if rng.random() < 0.5:
                _, org, _ = rng.choice(fleet.orgs)
                org.inject(rng.choice(FAULTS), count=rng.randint(1, 3))

    daemon = Daemon(fleet.config(work / "busy.toml", "5s"))
    names = [name for name, _, _ in fleet.orgs]
    try:
        daemon.caught_up_since(names, 0, 300)
        rss_start = rss_mb(daemon.proc.pid)
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        time.sleep(minutes * 60)  # the soak itself: time passing is the point
        stop.set()
        producer.join()
        time.sleep(25)  # the last events become visible (persisted up to 20 s late)
        settled = time.monotonic()
        complete = daemon.caught_up_since(names, settled, 300)
        rss_end = rss_mb(daemon.proc.pid)
        code = daemon.stop()
        con = duckdb.connect(str(work / "soak.duckdb"), read_only=True)
        stored = {
            name: {
                r[0]
                for r in con.execute("SELECT uuid FROM events WHERE source = ?", [name]).fetchall()
            }
            for name in names
        }
        duplicates = con.execute("SELECT count(*) - count(DISTINCT uuid) FROM events").fetchall()[
            0
        ][0]
        con.close()
        per_org = {}
        for name, org, _ in fleet.orgs:
            visible = org.visible_uuids()
            per_org[name] = {"served": len(visible), "stored": len(stored[name]),
                             "equal": visible == stored[name]}  # fmt: skip
        return {
            "minutes": minutes,
            "exit_code": code,
            "settled": complete,
            "per_org": per_org,
            "all_equal": all(v["equal"] for v in per_org.values()),
            "duplicates": duplicates,
            "rss_start_mb": rss_start,
            "rss_end_mb": rss_end,
            "errors_logged": len(daemon.errors),
            "error_samples": daemon.errors[:5],
            "retries": daemon.events["okta.retry"],
            "rate_limited": daemon.events["okta.rate_limited"]
            + daemon.events["okta.concurrency_limited"],
        }
    finally:
        if daemon.proc.poll() is None:
            daemon.stop()
        fleet.stop()


def idle(minutes: float, work: Path) -> dict[str, Any]:
    fleet = Fleet(50, 200, limit=0)
    daemon = Daemon(fleet.config(work / "idle.toml", "60s"))
    names = [name for name, _, _ in fleet.orgs]
    try:
        daemon.caught_up_since(names, 0, 300)
        cpu_start, started = cpu_seconds(daemon.proc.pid), time.monotonic()
        time.sleep(minutes * 60)  # measuring idle CPU over wall time
        used = cpu_seconds(daemon.proc.pid) - cpu_start
        wall = time.monotonic() - started
        daemon.stop()
        return {"orgs": 50, "minutes": minutes, "cpu_percent_of_one_core": 100 * used / wall}
    finally:
        if daemon.proc.poll() is None:
            daemon.stop()
        fleet.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--idle-minutes", type=float, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="oktaduck-soak-") as tmp:
        work = Path(tmp)
        result = {"busy": busy(args.minutes, work), "idle": idle(args.idle_minutes, work)}
    b = result["busy"]
    print(f"{'org':<8}{'served':>9}{'stored':>9}  equal")
    for name, row in b["per_org"].items():
        print(f"{name:<8}{row['served']:>9}{row['stored']:>9}  {row['equal']}")
    print(
        f"\nall equal: {b['all_equal']}   duplicates: {b['duplicates']}   "
        f"exit code: {b['exit_code']}"
    )
    print(f"RSS start {b['rss_start_mb']:.0f} MB, end {b['rss_end_mb']:.0f} MB")
    print(
        f"errors logged: {b['errors_logged']}  retries: {b['retries']}  429s: {b['rate_limited']}"
    )
    print(
        "idle: 50 orgs polled every 60 s used "
        f"{result['idle']['cpu_percent_of_one_core']:.2f}% of one core"
    )
    print(json.dumps(result, default=str, sort_keys=True))
    return 0 if b["all_equal"] and not b["duplicates"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

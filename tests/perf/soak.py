"""``make soak``: the daemon against 20 simulated orgs producing events continuously, with
injected 429s and faults, for 10 minutes; then 50 quiet orgs polled every 60 s for 5 minutes;
then 50 orgs of 20,000 events each catching up at once.

Reports, per org, the events the org holds against the events stored (they must be equal),
the daemon's memory at the start and the end of the busy phase, the errors it logged, and its
CPU use while idle; for the catch-up, the peak and end RSS of the daemon and its mapping child
(sampled from /proc every 0.1 s) and whether every org is exact. Usage: python -m
tests.perf.soak [--minutes 10] [--idle-minutes 5] [--catchup-orgs 50] [--catchup-events
20000] [--only busy|idle|catchup]
"""

from __future__ import annotations

import argparse
import contextlib
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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


def family_rss_mb(pid: int) -> tuple[float, float]:
    """RSS of a process and of it with its children (the daemon and its mapping child)."""
    own = rss_mb(pid)
    total = own
    for kid in children(pid):
        with contextlib.suppress(OSError):  # it just ended
            total += rss_mb(kid)
    return own, total


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(k) for k in found.read_text().split()] if found.exists() else []


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


# -- many orgs catching up at once --------------------------------------------------------
# Simulated orgs hold their events as Python objects (about 10 KB each, and seconds per
# thousand to generate): fifty orgs of 20,000 would need 10 GB. These orgs serve the same
# realistic pages instead, rendered once, each org with uuids of its own written in when a
# page is sent.

MARK = b"@@@@@@@@@@@@"  # the last group of every uuid of the pages, the org's number


def org_uuid(i: int, org: int) -> str:
    return f"{i:08x}-aaaa-4aaa-8aaa-{org:012x}"


def render_pages(events: int, limit: int) -> list[bytes]:
    """``events`` generated events in pages of ``limit``, uuids ending in ``MARK``."""
    gen = SimulatedOrg(OrgConfig(tokens=frozenset({TOKEN}), limit=0, seed=900)).generator
    now = datetime.now(UTC)
    stream = gen.stream(events, now - timedelta(hours=20), now - timedelta(minutes=5))
    texts = []
    for i, event in enumerate(stream):
        event["uuid"] = f"{i:08x}-aaaa-4aaa-8aaa-" + MARK.decode()
        texts.append(orjson.dumps(event))
    return [
        b"[" + b",".join(texts[start : start + limit]) + b"]"
        for start in range(0, len(texts), limit)
    ]


class PagesOrg:
    """One org on 127.0.0.1 serving ``pages`` with its own uuids, following Okta's polling
    links: ``after=N`` is page N; past the last page an empty page whose next link is
    itself."""

    def __init__(self, number: int, pages: list[bytes]) -> None:
        mark = b"%012x" % number

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # http.server's name
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                index = int(query.get("after", ["0"])[0])
                limit = query.get("limit", ["1000"])[0]
                body = pages[index].replace(MARK, mark) if index < len(pages) else b"[]"
                following = index + 1 if index < len(pages) else index
                base = f"http://{self.headers['Host']}/api/v1/logs"
                this = f"{base}?after={index}&limit={limit}&sortOrder=ASCENDING"
                after = f"{base}?after={following}&limit={limit}&sortOrder=ASCENDING"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Link", f'<{this}>; rel="self"')
                self.send_header("Link", f'<{after}>; rel="next"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def catchup(
    orgs: int, events: int, work: Path, extra: str = "", storage: str = ""
) -> dict[str, Any]:
    pages = render_pages(events, 1000)
    fleet = [(f"org{i:02d}", PagesOrg(i, pages)) for i in range(orgs)]
    blocks = [
        f'[[sources]]\nname = "{name}"\norg_url = "{org.url}"\ntoken_env = "TOK"\n'
        f'poll_interval = "60s"\n'
        for name, org in fleet
    ]
    config = work / "catchup.toml"
    config.write_text(
        f'[storage]\npath = "catchup.duckdb"\n{storage}\n[api]\nlisten = "127.0.0.1:0"\n\n'
        + extra
        + "\n".join(blocks)
    )
    names = [name for name, _ in fleet]
    daemon = Daemon(config)
    started = time.monotonic()
    peaks = [0.0, 0.0]  # the daemon, the daemon and its mapping child
    child_cpu: dict[int, float] = {}  # CPU seconds of each child, last seen
    sampled = threading.Event()

    def sample() -> None:
        while not sampled.wait(0.1):
            try:
                own, total = family_rss_mb(daemon.proc.pid)
                for kid in children(daemon.proc.pid):
                    child_cpu[kid] = cpu_seconds(kid)
            except OSError:  # the daemon ended
                return
            peaks[0], peaks[1] = max(peaks[0], own), max(peaks[1], total)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        daemon.caught_up_since(names, 0, 1800)
        elapsed = time.monotonic() - started
        sampled.set()
        sampler.join()
        end_daemon, end_total = family_rss_mb(daemon.proc.pid)
        daemon_cpu = cpu_seconds(daemon.proc.pid)
        code = daemon.stop()
    finally:
        sampled.set()
        if daemon.proc.poll() is None:
            daemon.stop()
        for _, org in fleet:
            org.stop()
    peak_daemon, peak_total = peaks
    con = duckdb.connect(str(work / "catchup.duckdb"), read_only=True)
    rows = con.execute("SELECT source, uuid::VARCHAR FROM events").fetchall()
    con.close()
    (work / "catchup.duckdb").unlink()
    by_org: dict[str, list[str]] = {name: [] for name in names}
    for source, uuid in rows:
        by_org.setdefault(source, []).append(uuid)
    exact = {
        name: sorted(by_org[name]) == sorted(org_uuid(i, n) for i in range(events))
        for n, name in enumerate(names)
    }
    return {
        "orgs": orgs,
        "events_per_org": events,
        "page_bytes": len(pages[0]),
        "exit_code": code,
        "seconds": round(elapsed, 1),
        "events_per_second": round(orgs * events / elapsed),
        "all_exact": all(exact.values()),
        "not_exact": [name for name, ok in exact.items() if not ok],
        "peak_rss_mb": round(peak_total),
        "peak_rss_daemon_mb": round(peak_daemon),
        "end_rss_mb": round(end_total),
        "end_rss_daemon_mb": round(end_daemon),
        "errors_logged": len(daemon.errors),
        "error_samples": daemon.errors[:5],
        "mapper_restarts": daemon.events["daemon.mapper_stopped"],
        "cpu_s_daemon": round(daemon_cpu, 1),
        "cpu_s_mapping_child": round(sum(child_cpu.values()), 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--idle-minutes", type=float, default=5)
    parser.add_argument("--catchup-orgs", type=int, default=50)
    parser.add_argument("--catchup-events", type=int, default=20_000)
    parser.add_argument("--catchup-config", default="", help="TOML tables for the catch-up daemon")
    parser.add_argument("--catchup-storage", default="", help="TOML lines for its [storage]")
    parser.add_argument("--only", choices=("busy", "idle", "catchup"))
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="oktaduck-soak-") as tmp:
        work = Path(tmp)
        if args.only in (None, "busy"):
            result["busy"] = busy(args.minutes, work)
        if args.only in (None, "idle"):
            result["idle"] = idle(args.idle_minutes, work)
        if args.only in (None, "catchup"):
            extra = args.catchup_config.replace("\\n", "\n")
            result["catchup"] = catchup(
                args.catchup_orgs,
                args.catchup_events,
                work,
                extra + "\n" if extra else "",
                args.catchup_storage.replace("\\n", "\n"),
            )
    ok = True
    if "busy" in result:
        ok = report_busy(result["busy"]) and ok
    if "idle" in result:
        print(
            "idle: 50 orgs polled every 60 s used "
            f"{result['idle']['cpu_percent_of_one_core']:.2f}% of one core"
        )
    if "catchup" in result:
        c = result["catchup"]
        print(
            f"catch-up: {c['orgs']} orgs of {c['events_per_org']} events at once: "
            f"{c['seconds']} s ({c['events_per_second']} events/s); peak RSS {c['peak_rss_mb']} MB "
            f"(daemon {c['peak_rss_daemon_mb']} MB), end {c['end_rss_mb']} MB "
            f"(daemon {c['end_rss_daemon_mb']} MB); every org exact: {c['all_exact']}; "
            f"errors logged: {c['errors_logged']}; exit code {c['exit_code']}; CPU s: daemon "
            f"{c['cpu_s_daemon']}, mapping child {c['cpu_s_mapping_child']}"
        )
        ok = ok and c["all_exact"]
    print(json.dumps(result, default=str, sort_keys=True))
    return 0 if ok else 1


def report_busy(b: dict[str, Any]) -> bool:
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
    return bool(b["all_equal"] and not b["duplicates"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``oktaduck demo``: the whole pipeline against a simulated org, ending in a summary.

A simulated org is served over HTTP on 127.0.0.1 in this process. oktaduck polls it exactly
as it would poll a real org (token, pacing, ``next`` links, pages committed in groups), then
the org receives late events and a brute-force burst, and a second cycle picks them up.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

from ingest.base.clock import SystemClock
from ingest.base.errors import ConfigError
from ingest.base.tablewriter import write_rows
from ingest.collect.connect import open_client
from ingest.collect.poll import PollResult, poll_cycle
from ingest.collect.settings import SourceConfig
from ingest.config import normalized_mapping_path
from ingest.mapping import load_mapping
from ingest.okta.client import OktaClient
from ingest.okta.urls import OrgURL
from ingest.simulate.org import OrgConfig, SimulatedOrg
from ingest.simulate.server import SimulatorServer
from ingest.store.db import Store
from ingest.store.query import open_read_only, run_query

TOKEN_ENV = "OKTADUCK_DEMO_TOKEN"  # noqa: S105 - a variable name

SUMMARY_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Events by type (top 10)",
        "SELECT event_type, count(*) AS events FROM events GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
    ),
    (
        "Failed sign-ins by user (FAILURE or DENY)",
        "SELECT actor_login AS user, count(*) AS failures, count(DISTINCT client_ip) AS ips, "
        "max(published) AS last_attempt FROM events "
        "WHERE event_type = 'user.session.start' AND outcome_result IN ('FAILURE', 'DENY') "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
    ),
    (
        "Rejected events (kept with the reason, never dropped)",
        "SELECT reason, count(*) AS events FROM rejects GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "Cursor",
        "SELECT source, pages, events AS stored, duplicates, "
        "regexp_extract(next_url, '[?&]after=([^&]*)', 1) AS after, last_commit FROM cursors",
    ),
)


def _poll(source: SourceConfig, store: Store, client: OktaClient, label: str) -> PollResult:
    started = time.monotonic()
    result = poll_cycle(source, store, client, SystemClock())
    print(f"  {label}: {result.summary()} ({time.monotonic() - started:.2f}s)")
    return result


def run(db: Path, events: int = 3000) -> int:
    import os

    clock = SystemClock()
    token = secrets.token_urlsafe(24)
    org = SimulatedOrg(OrgConfig(tokens=frozenset({token}), seed=7))
    gen = org.generator
    now = clock.now()
    org.add(gen.stream(events, now - timedelta(hours=24), now - timedelta(minutes=5)))
    if db.is_dir():
        raise ConfigError(f"--db {db} is a directory; the demo needs a database file name")
    if db.exists():
        db.unlink()
    shutil.rmtree(db.with_suffix(db.suffix + ".wal"), ignore_errors=True)
    os.environ[TOKEN_ENV] = token
    with SimulatorServer(org) as server:
        source = SourceConfig(
            name="demo-org",
            org=OrgURL.parse(server.url),
            token_env=TOKEN_ENV,
            lookback=timedelta(hours=25),
        )
        print(f"Simulated Okta org at {server.url} holding {len(org)} events; database {db}")
        store = Store(db, load_mapping(normalized_mapping_path()))
        client = open_client(source, clock)
        try:
            _poll(source, store, client, "first cycle (cold start, 24 h back)")
            later = clock.now()
            victim = gen.users[3]
            late = gen.stream(40, later - timedelta(minutes=50), later - timedelta(minutes=20))
            org.add_late(late, persisted_at=later)
            burst = gen.failed_login_burst(30, later - timedelta(minutes=3), user=victim)
            org.add(burst, persisted_at=later)
            org.add(
                [
                    {
                        **gen.stream(1, later - timedelta(minutes=1), later)[0],
                        "published": "redacted",
                    },
                    {"eventType": "user.session.start", "published": "2026-09-31T10:00:00.000Z"},
                ],
                persisted_at=later,
            )
            print(
                f"  Okta stores {len(late)} late events (published 20-50 min ago), "
                f"{len(burst)} failed sign-ins against {victim.login}, 2 malformed events"
            )
            _poll(source, store, client, "second cycle (resumes from the stored next URL)")
            _poll(source, store, client, "third cycle (caught up: nothing new)")
        finally:
            client.http.close()
            store.close()
    con = open_read_only(db)
    try:
        late_ids = [e["uuid"] for e in late]
        found = con.execute(
            "SELECT count(*) FROM events WHERE uuid IN (SELECT unnest($ids))", {"ids": late_ids}
        ).fetchall()[0][0]
        print(f"\nLate events collected: {found} of {len(late)} (a poller resuming from the last")
        print("published time would have skipped all of them)")
        for title, sql in SUMMARY_QUERIES:
            print(f"\n{title}")
            result = run_query(con, sql)
            write_rows(result.columns, result.rows, "table", json_columns=result.json_columns)
    finally:
        con.close()
    command = sys.argv[0] if sys.argv[0].endswith("oktaduck") else "oktaduck"
    print(f'\nExplore it: {command} sql --db {db} "SELECT * FROM events LIMIT 5"')
    return 0

"""A poll cycle against the simulated org over HTTP: exactly once, late events, limits, faults."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import AuthFailed, BadRequest, BadResponse, StoreError
from ingest.collect.poll import poll_cycle
from ingest.mapping import CompiledMapping
from ingest.okta.client import ClientPolicy, OktaClient
from ingest.store.db import Store
from ingest.store.lake import LakeConfig
from tests.helpers import TOKEN, Sim, source_for, stored_uuids
from tests.helpers.lake import ON_EVERY_STORE, set_next_url

Client = Callable[[Any, Any], OktaClient]


def fill(sim: Sim, count: int, hours: float = 20) -> None:
    assert sim.clock is not None
    now = sim.clock.now()
    gen = sim.org.generator
    sim.org.add(gen.stream(count, now - timedelta(hours=hours), now - timedelta(minutes=2)))


@pytest.mark.parametrize("store", ["file", "postgres", "sqlite", "duckdb"], indirect=True)
def test_cold_start_stores_every_visible_event_once(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 1234)
    source = source_for(sim)
    result = poll_cycle(source, store, client_for(source, clock), clock)
    assert result.caught_up
    assert result.pages == 13  # 12 full pages of 100 and a short one
    assert result.stored == 1234
    uuids = stored_uuids(store)
    assert len(uuids) == len(set(uuids)) == 1234
    assert set(uuids) == sim.org.visible_uuids()


@ON_EVERY_STORE
def test_late_events_are_collected_by_the_next_cycle(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 300)
    source = source_for(sim)
    client = client_for(source, clock)
    poll_cycle(source, store, client, clock)
    # Okta stores events published 40 minutes ago only now: they sort after the cursor.
    late = sim.org.generator.stream(
        57, clock.now() - timedelta(minutes=45), clock.now() - timedelta(minutes=35)
    )
    sim.org.add_late(late, persisted_at=clock.now() + timedelta(seconds=5))
    clock.advance(60)
    second = poll_cycle(source, store, client, clock)
    assert second.stored == 57
    assert {e["uuid"] for e in late} <= set(stored_uuids(store))
    assert set(stored_uuids(store)) == sim.org.visible_uuids()


@ON_EVERY_STORE
def test_a_caught_up_cycle_costs_one_request_and_keeps_the_cursor(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 250)
    source = source_for(sim)
    client = client_for(source, clock)
    first = poll_cycle(source, store, client, clock)
    requests_before = sum(sim.org.status_counts().values())
    again = poll_cycle(source, store, client, clock)
    assert sum(sim.org.status_counts().values()) == requests_before + 1
    assert again.stored == 0 and again.caught_up
    assert store.cursor("acme").next_url == first.cursor  # type: ignore[union-attr]


@ON_EVERY_STORE
def test_re_reading_pages_stores_nothing_twice(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 450)
    source = source_for(sim)
    client = client_for(source, clock)
    poll_cycle(source, store, client, clock)
    set_next_url(store, "acme", source.org.origin, None)  # forget the cursor: cold start again
    again = poll_cycle(source, store, client, clock)
    assert again.fetched == 450
    assert again.stored == 0
    assert again.duplicates == 450
    assert len(stored_uuids(store)) == 450


@ON_EVERY_STORE
def test_a_cursor_moved_back_re_reads_overlapping_pages_and_stores_only_new_events(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 450)
    source = source_for(sim)
    client = client_for(source, clock)
    poll_cycle(source, store, client, clock)
    third_page = sim.org.request_urls()[2]
    newer = sim.org.generator.stream(120, clock.now() - timedelta(minutes=1), clock.now())
    sim.org.add(newer, persisted_at=clock.now() + timedelta(seconds=5))
    clock.advance(60)
    set_next_url(store, "acme", source.org.origin, third_page)  # an older cursor
    again = poll_cycle(source, store, client, clock)
    assert (again.fetched, again.stored, again.duplicates) == (370, 120, 250)
    uuids = stored_uuids(store)
    assert len(uuids) == len(set(uuids)) == 570 and set(uuids) == sim.org.visible_uuids()


def test_a_429_is_waited_out_until_the_reset(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 300)
    sim.org.inject("429")
    source = source_for(sim)
    client = client_for(source, clock)
    result = poll_cycle(source, store, client, clock)
    assert result.stored == 300
    assert client.stats.rate_limited == 1
    reset = sim.org.config.fault_reset_seconds
    # waited until X-Rate-Limit-Reset (whole seconds, from the Date header) plus the buffer
    assert any(reset - 1 <= w <= reset + 2 for w in clock.waits), clock.waits


def test_pacing_leaves_the_reserved_share_and_avoids_429s(
    clock: FakeClock, tmp_path: Path, mapping: CompiledMapping, token_env: str, client_for: Client
) -> None:
    from tests.helpers import make_sim

    sim = make_sim(clock, limit=10, window_seconds=60)
    try:
        fill(sim, 2000)
        source = source_for(sim, client=ClientPolicy(reserve_share=0.2))
        client = client_for(source, clock)
        with Store(tmp_path / "db.duckdb", mapping) as store:
            result = poll_cycle(source, store, client, clock)
        assert result.stored == 2000
        assert 429 not in sim.org.status_counts()
        assert client.stats.paced_seconds > 0
        # never used more than 80% of any window: at most 8 requests per 10-request window
        assert len(clock.waits) >= 2
    finally:
        sim.server.stop()


@pytest.mark.parametrize(
    ("kind", "store"),
    [
        *((k, "file") for k in ["500", "503", "truncated", "invalid_json", "reset", "concurrency"]),
        ("truncated", "postgres"),
        ("reset", "postgres"),
        ("500", "sqlite"),
        ("concurrency", "sqlite"),
    ],
    indirect=["store"],
)
def test_each_fault_kind_is_retried_and_survived(
    kind: str, sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 350)
    sim.org.inject(kind, count=2)
    source = source_for(sim)
    client = client_for(source, clock)
    result = poll_cycle(source, store, client, clock)
    assert result.stored == 350
    assert sim.org.pending_faults() == []
    assert client.stats.retries + client.stats.rate_limited == 2
    assert sorted(stored_uuids(store)) == sorted(sim.org.visible_uuids())


def test_a_slow_answer_times_out_and_is_retried(
    clock: FakeClock, tmp_path: Path, mapping: CompiledMapping, token_env: str, client_for: Client
) -> None:
    from tests.helpers import make_sim

    sim = make_sim(clock, slow_seconds=1.0)
    try:
        fill(sim, 120)
        sim.org.inject("slow")
        source = source_for(sim)
        source = type(source)(**{**source.__dict__, "timeout": 0.3})
        client = client_for(source, clock)
        with Store(tmp_path / "db.duckdb", mapping) as store:
            result = poll_cycle(source, store, client, clock)
        assert result.stored == 120
        assert client.stats.retries == 1
    finally:
        sim.server.stop()


@ON_EVERY_STORE
def test_persistent_5xx_gives_up_after_retry_for_and_keeps_the_cursor(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 250)
    source = source_for(sim, client=ClientPolicy(retry_for=30, backoff_initial=1, backoff_max=8))
    client = client_for(source, clock)
    poll_cycle(source, store, client, clock)
    cursor = store.cursor("acme")
    sim.org.inject("500", count=1000)
    with pytest.raises(BadResponse, match="giving up") as err:
        poll_cycle(source, store, client, clock)
    assert "E0000009" in str(err.value)
    assert store.cursor("acme") == cursor


def test_a_bad_token_fails_at_once_with_okta_reason_and_no_secret(
    sim: Sim, store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, client_for: Client
) -> None:
    fill(sim, 10)
    wrong = "wrong-" + TOKEN
    monkeypatch.setenv("OKTADUCK_TEST_TOKEN", wrong)
    source = source_for(sim)
    client = client_for(source, clock)
    with pytest.raises(AuthFailed) as err:
        poll_cycle(source, store, client, clock)
    message = str(err.value)
    assert "E0000011" in message and "HTTP 401" in message and "request id" in message
    assert wrong not in message and wrong not in repr(client.http.auth)
    assert sum(sim.org.status_counts().values()) == 1  # no retries on 401
    assert store.cursor("acme") is None


def test_a_rejected_query_fails_with_okta_error_code(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    source = source_for(sim)
    store.con.execute(
        "INSERT INTO cursors (source, org_url, next_url, created_at) VALUES (?, ?, ?, now())",
        ["acme", source.org.origin, source.org.logs_url + "?since=yesterday&limit=100"],
    )
    with pytest.raises(BadRequest, match="E0000001"):
        poll_cycle(source, store, client_for(source, clock), clock)


@ON_EVERY_STORE
def test_malformed_events_are_kept_as_rejects_with_a_reason(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    fill(sim, 20)
    good = sim.org.generator.stream(1, clock.now() - timedelta(minutes=3), clock.now())[0]
    sim.org.add(
        [{**good, "uuid": "bad-published-1", "published": "redacted"}, {"eventType": "x"}],
        persisted_at=clock.now() - timedelta(seconds=30),
    )
    source = source_for(sim)
    result = poll_cycle(source, store, client_for(source, clock), clock)
    assert result.stored == 20 and result.rejected == 2
    reasons = Counter(
        r[0].split(":")[0] for r in store.con.execute("SELECT reason FROM rejects").fetchall()
    )
    assert reasons == Counter({"published": 1, "uuid": 1})
    assert store.cursor("acme").rejects == 2  # type: ignore[union-attr]


class FailingStore(Store):
    """The real store, whose ``fail_at``-th commit fails the way a full disk would."""

    fail_at = 3

    def commit_pages(self, pages: Any, now: Any, record: Any = None) -> Any:
        self.commits = getattr(self, "commits", 0) + 1
        if self.commits == self.fail_at:
            raise StoreError(f"database {self.path}: No space left on device")
        return super().commit_pages(pages, now, record)


@pytest.mark.parametrize("kind", ["file", "postgres", "sqlite"])
def test_a_failed_commit_stops_the_cycle_and_nothing_after_it_is_committed(
    kind: str, sim: Sim, tmp_path: Path, mapping: CompiledMapping, clock: FakeClock,
    token_env: str, client_for: Client, new_lake: Callable[..., LakeConfig],
) -> None:  # fmt: skip
    fill(sim, 1000)
    source = source_for(sim, group_events=200)  # groups of two 100-event pages
    path = tmp_path / "okta.duckdb" if kind == "file" else new_lake(kind)
    with FailingStore(path, mapping) as failing, pytest.raises(StoreError, match="No space"):
        poll_cycle(source, failing, client_for(source, clock), clock)
    with Store(path, mapping) as store:
        # the two groups before the failure, with the cursor after them; nothing later
        assert len(stored_uuids(store)) == 400
        assert store.cursor("acme").pages == 4  # type: ignore[union-attr]
        rerun = poll_cycle(source, store, client_for(source, clock), clock)
        assert rerun.stored == 600 and rerun.duplicates == 0
        uuids = stored_uuids(store)
        assert len(uuids) == len(set(uuids)) and set(uuids) == sim.org.visible_uuids()


def test_the_store_bounds_duckdb_memory_and_checkpoints_rarely_while_catching_up(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    import duckdb

    from ingest.cli.commands.collect import _ingest_memory
    from ingest.config import Config, StorageConfig
    from ingest.store.db import INGEST_MEMORY_LIMIT, INGEST_THREADS

    reference = duckdb.connect()
    reference.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
    reference.execute("SET checkpoint_threshold = '256MB'")
    wanted = reference.execute(
        "SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold')"
    ).fetchall()
    unconfigured = Config(sources=())
    assert _ingest_memory(unconfigured) == INGEST_MEMORY_LIMIT == "64MB"
    assert _ingest_memory(Config(sources=(), storage=StorageConfig(memory_limit="2GB"))) == "2GB"

    path = tmp_path / "okta.duckdb"
    with Store(path, mapping, _ingest_memory(unconfigured), INGEST_THREADS) as store:
        got = store.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold')"
        ).fetchall()
        threads = store.con.execute("SELECT current_setting('threads')").fetchall()
    assert got == wanted
    assert threads == [(1,)]


def test_a_one_shot_poll_at_its_defaults_stores_twenty_pages_once_within_its_memory(
    sim: Sim, tmp_path: Path, mapping: CompiledMapping, clock: FakeClock, token_env: str,
    client_for: Client,
) -> None:  # fmt: skip
    """Groups of two 1000-event pages ran out of the one-shot 48MB at COMMIT once tens of MB
    waited for a checkpoint, and the failed COMMIT, run again with a higher limit, stored a
    group twice (or left a column longer than its row group). At the defaults a one-shot
    poll commits a row group's worth at a time, which goes to the file without waiting for
    a checkpoint; the daemon keeps its groups."""
    from ingest.collect.poll import group_limits
    from ingest.store.db import INGEST_MEMORY_LIMIT, ONE_SHOT_GROUP_BYTES, ROW_GROUP_SIZE

    fill(sim, 20_000)
    source = source_for(sim, page_limit=1000)
    path = tmp_path / "okta.duckdb"
    with Store(path, mapping, INGEST_MEMORY_LIMIT, 1, serves_queries=False) as store:
        assert group_limits(source, store) == (ROW_GROUP_SIZE, ONE_SHOT_GROUP_BYTES)
        as_set = group_limits(source_for(sim, group_events=3000), store)
        assert as_set == (3000, 16 << 20)
        result = poll_cycle(source, store, client_for(source, clock), clock)
        limit = store.con.execute("SELECT current_setting('memory_limit')").fetchall()
        rows = store.con.execute("SELECT count(*), count(DISTINCT ingest_seq) FROM events")
        counts = rows.fetchall()
        uuids = stored_uuids(store)
    assert result.caught_up and result.stored == 20_000 and result.pages == 21
    assert counts == [(20_000, 20_000)]
    assert len(uuids) == len(set(uuids)) and set(uuids) == sim.org.visible_uuids()
    assert limit == [("61.0 MiB",)]  # never ran out of it
    with Store(path, mapping) as daemon:
        assert group_limits(source, daemon) == (2000, 16 << 20)
        groups = daemon.con.execute(
            "SELECT count(*), max(n) FROM (SELECT row_group_id, sum(count) AS n "
            "FROM pragma_storage_info('events') "
            "WHERE column_name = 'uuid' AND segment_type = 'VARCHAR' GROUP BY ALL)"
        ).fetchall()
    # the one-shot commits went to the file as row groups of the writer's size: four groups
    # of five pages, each a full row group and the rest of its fifth page
    assert groups == [(8, ROW_GROUP_SIZE)] and ROW_GROUP_SIZE == 4096

"""Several writers on one lake with a PostgreSQL catalog: every event exactly once.

Writers of different sources only ever insert, so they never conflict. Writers of one source
are kept apart by its lease, and every commit renews the lease in its own transaction (the
fence): of two commits that both believed they held it, one lands and the other conflicts,
tries again from the uuid lookup on and then finds either the lease gone (``LeaseLost``) or
the page stored (duplicates). Leases compare the ``now`` each call is given, so a takeover is
tested by passing a later one. A catalog that goes away mid-commit, or a data folder that
cannot be written, stores nothing of that commit.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import LakeUnavailable, LeaseLost
from ingest.collect.poll import poll_cycle
from ingest.mapping import CompiledMapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import CommitResult, PageRows, Store
from ingest.store.lake import LakeConfig, open_cursor, translate_lake
from ingest.store.lakeschema import beat, list_leases
from tests.helpers import REPO, TOKEN, Sim, daemon_toml, source_for, stored_uuids
from tests.helpers.lake import lake_toml, make_lake, postgres_cluster

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=5)


def pages_of(
    mapping: CompiledMapping, source: str, count: int, size: int = 50, seed: int = 3
) -> list[PageRows]:
    """``count`` consecutive pages of ``size`` events each, for ``source``; the last event of
    every page is malformed (no uuid) and goes to rejects."""
    events = EventGenerator(seed=seed).stream(count * size, T0, T0 + timedelta(hours=2))
    pages = []
    for n in range(count):
        chunk = [*events[n * size : (n + 1) * size - 1], {"eventType": "x", "n": n}]
        raw = [orjson.dumps(e).decode() for e in chunk]
        uuids = [e.get("uuid") for e in chunk]
        batch = mapping.apply_batch(chunk)
        pages.append(
            PageRows(source, f"https://{source}.okta.com", f"{source}-p{n + 1}", batch, raw, uuids)
        )
    return pages


def page_uuids(page: PageRows) -> list[str]:
    return [u for u in page.uuids_in if u is not None]


def writer(lake: LakeConfig, mapping: CompiledMapping, owner: str) -> Store:
    return Store(replace(lake, owner=owner), mapping)


def conflicts_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage() == "lake.commit_conflict" for r in caplog.records)


@pytest.fixture
def lake(new_lake: Callable[..., LakeConfig], mapping: CompiledMapping) -> LakeConfig:
    """A new PostgreSQL lake with short leases, its schema created."""
    made: LakeConfig = new_lake("postgres", lease_ttl=TTL)
    Store(made, mapping).close()
    return made


class Racing(Store):
    """The real store; ``rival()`` runs once, inside the next commit's transaction, after the
    fence and before the rows go in: another writer's whole commit lands in between."""

    rival: Callable[[], object] | None = None

    def _insert_parts(self, con: Any, source: str, parts: Any, now: datetime) -> Any:
        rival, self.rival = self.rival, None
        if rival is not None:
            rival()
        return super()._insert_parts(con, source, parts, now)


def test_writers_of_different_sources_commit_at_once_and_never_conflict(
    lake: LakeConfig, mapping: CompiledMapping, caplog: pytest.LogCaptureFixture
) -> None:
    """Not even tried twice. (Only a PostgreSQL catalog takes several writing processes: a
    SQLite one refuses a second while the first writes, "database is locked".)"""
    caplog.set_level(logging.DEBUG, logger="oktaduck")
    work = {
        "acme": pages_of(mapping, "acme", 6),
        "globex": pages_of(mapping, "globex", 6, seed=4),
    }
    start = threading.Barrier(len(work))
    failures: list[BaseException] = []

    def run(source: str, pages: Sequence[PageRows]) -> None:
        try:
            with writer(lake, mapping, f"daemon-{source}") as store:
                start.wait()
                for page in pages:
                    store.commit_pages([page], T0)
        except BaseException as err:  # reported by the test below
            failures.append(err)

    threads = [threading.Thread(target=run, args=item) for item in work.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert conflicts_logged(caplog) == 0  # insert-only tables: no commit had to be tried again
    with writer(lake, mapping, "reader") as store:
        uuids = stored_uuids(store)
        assert len(uuids) == len(set(uuids)) == 2 * 6 * 49
        assert set(uuids) == {u for pages in work.values() for p in pages for u in page_uuids(p)}
        for source in work:
            state = store.cursor(source)
            assert state is not None
            assert (state.next_url, state.pages, state.events, state.rejects) == (
                f"{source}-p6", 6, 294, 6,
            )  # fmt: skip
        seqs = [r[0] for r in store.con.execute("SELECT ingest_seq FROM events").fetchall()]
        assert len(set(seqs)) == len(seqs)  # one ingest_seq per event, across both writers


def test_a_commit_racing_a_takeover_is_refused_and_the_page_lands_once(
    lake: LakeConfig, mapping: CompiledMapping
) -> None:
    pages = pages_of(mapping, "acme", 3)
    with (
        Racing(replace(lake, owner="old"), mapping) as old,
        writer(lake, mapping, "new") as new,
    ):
        old.commit_pages([pages[0]], T0)  # takes the lease until T0 + TTL
        took: list[CommitResult] = []
        # while the old owner's commit of page 2 is open, its lease ends and the new owner
        # takes the source and commits page 2 itself
        old.rival = lambda: took.append(new.commit_pages([pages[1]], T0 + 2 * TTL))
        with pytest.raises(LeaseLost, match="does not hold its lease"):
            old.commit_pages([pages[1]], T0 + TTL / 2)
        assert took[0].stored == 49
        uuids = stored_uuids(new)
        assert Counter(uuids) == Counter(page_uuids(pages[0]) + page_uuids(pages[1]))
        state = new.cursor("acme")
        assert state is not None and (state.next_url, state.pages) == ("acme-p2", 2)
        rows = new.con.execute("SELECT owner FROM cursor_log ORDER BY rowid").fetchall()
        assert rows == [("old",), ("new",)]  # the refused commit left no cursor row
        with pytest.raises(LeaseLost):  # and it stays out
            old.commit_pages([pages[2]], T0 + 2 * TTL)
        assert len(stored_uuids(new)) == 98


def test_ingest_seq_follows_commit_order_across_writers(
    lake: LakeConfig, mapping: CompiledMapping
) -> None:
    """A transaction that began first but committed last gets the higher ``ingest_seq``s, so
    an export cursor that has passed the other writer's rows still finds these."""
    acme, globex = pages_of(mapping, "acme", 1), pages_of(mapping, "globex", 1, seed=4)
    with Racing(replace(lake, owner="a"), mapping) as a, writer(lake, mapping, "b") as b:
        a.rival = lambda: b.commit_pages(globex, T0)  # b commits while a's commit is open
        a.commit_pages(acme, T0)
        rows = a.con.execute(
            "SELECT source, min(ingest_seq), max(ingest_seq) FROM events GROUP BY 1 ORDER BY 2"
        ).fetchall()
    assert [(source, high - low) for source, low, high in rows] == [("globex", 48), ("acme", 48)]
    assert rows[0][2] < rows[1][1]


def test_two_writers_under_one_name_store_a_page_once(
    lake: LakeConfig, mapping: CompiledMapping, caplog: pytest.LogCaptureFixture
) -> None:
    """A daemon restarted under its stable name while the old process still runs: both hold
    the lease. Their commits of one page conflict on the lease row; the retry finds the
    page's events stored and skips them."""
    caplog.set_level(logging.DEBUG, logger="oktaduck")
    pages = pages_of(mapping, "acme", 2)
    with (
        Racing(replace(lake, owner="daemon-1"), mapping) as first,
        writer(lake, mapping, "daemon-1") as second,
    ):
        first.commit_pages([pages[0]], T0)
        other: list[CommitResult] = []
        first.rival = lambda: other.append(second.commit_pages([pages[1]], T0))
        mine = first.commit_pages([pages[1]], T0)
        assert conflicts_logged(caplog) >= 1
        assert other[0].stored == 49
        assert (mine.stored, mine.duplicates) == (0, 49)
        uuids = stored_uuids(first)
        assert Counter(uuids) == Counter(page_uuids(pages[0]) + page_uuids(pages[1]))
        assert first.con.execute("SELECT count(*) FROM rejects").fetchall() == [(2,)]


def test_a_lease_taken_over_after_it_ended_refuses_the_old_owner(
    lake: LakeConfig, mapping: CompiledMapping
) -> None:
    pages = pages_of(mapping, "acme", 3)
    with writer(lake, mapping, "a") as a, writer(lake, mapping, "b") as b:
        a.commit_pages([pages[0]], T0)  # the lease: until T0 + 5s
        with pytest.raises(LeaseLost, match="owned by a"):
            b.hold("source", "acme", T0 + timedelta(seconds=3))
        a.commit_pages([pages[1]], T0 + timedelta(seconds=4))  # renewed: until T0 + 9s
        with pytest.raises(LeaseLost, match="owned by a"):
            b.hold("source", "acme", T0 + timedelta(seconds=6))
        b.hold("source", "acme", T0 + timedelta(seconds=10))  # a stopped renewing it
        before = (stored_uuids(a), a.cursor("acme"))
        with pytest.raises(LeaseLost):
            a.commit_pages([pages[2]], T0 + timedelta(seconds=11))
        assert (stored_uuids(a), a.cursor("acme")) == before  # nothing of it stored
        with pytest.raises(LeaseLost, match="owned by b"):
            a.hold("source", "acme", T0 + timedelta(seconds=12))
        assert b.commit_pages([pages[2]], T0 + timedelta(seconds=11)).stored == 49
        uuids = stored_uuids(b)
        assert Counter(uuids) == Counter(u for p in pages for u in page_uuids(p))
        assert b.cursor("acme").next_url == "acme-p3"  # type: ignore[union-attr]


def test_a_lease_lasts_while_its_owners_heartbeat_does_and_ends_when_given_back(
    lake: LakeConfig, mapping: CompiledMapping
) -> None:
    """A daemon keeps every lease it holds with one heartbeat: the lease's own end may pass,
    the lease stays its owner's until the owner's newest heartbeat ends too."""
    with writer(lake, mapping, "a") as a, writer(lake, mapping, "b") as b:
        a.hold("source", "acme", T0)  # its own end: T0 + 5s
        a.hold("source", "globex", T0)
        side = open_cursor(a.con)
        try:
            beat(side, "a", TTL, T0 + timedelta(seconds=4))  # a is alive until T0 + 9s
        finally:
            side.close()
        with pytest.raises(LeaseLost, match=r"owned by a until .*12:00:09"):
            b.hold("source", "acme", T0 + timedelta(seconds=7))
        a.release("source", "globex")  # given back: free whatever the heartbeat says
        b.hold("source", "globex", T0 + timedelta(seconds=7))
        b.hold("source", "acme", T0 + timedelta(seconds=10))  # a stopped beating
        leases = {(lease.key, lease.owner) for lease in list_leases(b.con)}
        assert leases == {("acme", "b"), ("globex", "b")}
        with pytest.raises(LeaseLost):
            a.commit_pages([pages_of(mapping, "acme", 1)[0]], T0 + timedelta(seconds=11))


def test_writers_opening_a_new_lake_at_once_all_get_its_schema(
    new_lake: Callable[..., LakeConfig], mapping: CompiledMapping
) -> None:
    """The losers of the races to create the catalog's tables and then the lake's try again
    and find them."""
    lake = new_lake("postgres")
    start = threading.Barrier(3)
    opened: list[int] = []
    failures: list[BaseException] = []

    def run(n: int) -> None:
        start.wait()
        try:
            with writer(lake, mapping, f"w{n}") as store:
                opened.append(len(store.con.execute("SELECT * FROM events").description))
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(opened) == 3 and len(set(opened)) == 1  # every mapping column, seen by all


@pytest.fixture
def own_cluster() -> Iterator[Any]:
    """A PostgreSQL cluster of this test's own, to stop and start."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.mark.slow  # a cluster of its own
def test_a_catalog_outage_mid_commit_stores_nothing_of_it_and_the_next_poll_resumes(
    own_cluster: Any, sim: Sim, clock: FakeClock, token_env: str, tmp_path: Path,
    mapping: CompiledMapping, client_for: Callable[..., Any], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    sim.org.add(
        sim.org.generator.stream(
            1000, clock.now() - timedelta(hours=20), clock.now() - timedelta(minutes=2)
        )
    )
    lake = make_lake("postgres", tmp_path / "lake", own_cluster)
    source = source_for(sim, group_events=100)

    class Outage(Store):
        """The catalog's server stops in the third commit, after its events went in."""

        commits = 0

        def _insert_rejects(self, con: Any, page: PageRows, now: datetime) -> int:
            self.commits += 1
            if self.commits == 3:
                own_cluster.stop("immediate")
            return super()._insert_rejects(con, page, now)

    with Outage(lake, mapping) as store:
        with pytest.raises(LakeUnavailable) as err:
            poll_cycle(source, store, client_for(source, clock), clock)
        message = str(err.value)
        assert "\n" not in message and len(message) < 600 and message.startswith("lake postgres:")
        assert "cannot reach the catalog: server closed the connection" in message
        with pytest.raises(LakeUnavailable, match="cannot reach the catalog: Connection refused"):
            store.cursor(source.name)  # while it is down, reads say so too
        caplog.set_level(logging.WARNING, logger="oktaduck")
        store.release("source", source.name)  # cannot: the lease runs out by itself
        [failed] = [r for r in caplog.records if r.getMessage() == "lake.release_failed"]
        error = failed.fields["error"]  # type: ignore[attr-defined]
        assert error.startswith("lake postgres:") and "\n" not in error and len(error) < 600
        own_cluster.start()
        state = store.cursor(source.name)
        assert state is not None and state.pages <= 2  # the third commit: none of it
        uuids = stored_uuids(store)
        assert len(uuids) == len(set(uuids)) == state.events == 100 * state.pages
        again = poll_cycle(source, store, client_for(source, clock), clock)
        assert again.caught_up and again.duplicates == 0
        uuids = stored_uuids(store)
        assert len(uuids) == len(set(uuids)) and set(uuids) == sim.org.visible_uuids()


def test_data_files_that_cannot_be_written_fail_the_commit_whole_and_the_next_poll_resumes(
    sim: Sim, clock: FakeClock, token_env: str, new_lake: Callable[..., LakeConfig],
    mapping: CompiledMapping, client_for: Callable[..., Any],
) -> None:  # fmt: skip
    """The storage away in the middle of a commit (its folder replaced by a file), every
    commit writing Parquet (``inline_rows = 0``)."""
    sim.org.add(
        sim.org.generator.stream(
            500, clock.now() - timedelta(hours=20), clock.now() - timedelta(minutes=2)
        )
    )
    lake = new_lake("sqlite", inline_rows=0)
    data, away = Path(str(lake.data)), Path(f"{lake.data}.away")
    source = source_for(sim, group_events=100)

    class StorageAway(Store):
        commits = 0

        def _insert_parts(self, con: Any, source: str, parts: Any, now: datetime) -> Any:
            self.commits += 1
            if self.commits == 3:
                data.rename(away)
                data.write_text("not a folder")
            return super()._insert_parts(con, source, parts, now)

    with StorageAway(lake, mapping) as store:
        with pytest.raises(LakeUnavailable) as err:
            poll_cycle(source, store, client_for(source, clock), clock)
        assert "\n" not in str(err.value) and "Not a directory" in str(err.value)
        data.unlink()
        away.rename(data)
        state = store.cursor(source.name)
        assert state is not None and (state.pages, state.events) == (2, 200)
        assert len(stored_uuids(store)) == 200
        again = poll_cycle(source, store, client_for(source, clock), clock)
        assert (again.stored, again.duplicates) == (300, 0)
        uuids = stored_uuids(store)
        assert len(uuids) == len(set(uuids)) and set(uuids) == sim.org.visible_uuids()


@pytest.mark.slow  # oktaduck processes
@pytest.mark.parametrize(("pollers", "owner"), [(2, ""), (3, "collector")])
def test_pollers_of_one_source_at_once_store_every_event_once(
    pollers: int, owner: str, live_sim: Sim, tmp_path: Path,
    new_lake: Callable[..., LakeConfig], mapping: CompiledMapping,
) -> None:  # fmt: skip
    """Under their own names (host:pid), one takes the source's lease and the other is
    refused in one line, or, if the first was done and gave the lease up already, takes it
    and finds every event stored. Under one name all three hold the lease at once: only the
    fence keeps them apart, each commit that lost a race runs again and skips what landed."""
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    live_sim.org.add(gen.stream(900, now - timedelta(hours=3), now - timedelta(minutes=1)))
    lake = new_lake("postgres")
    Store(lake, mapping).close()
    config = daemon_toml(
        tmp_path / "oktaduck.toml",
        [("acme", live_sim.url)],
        token_env="ACME_TOKEN",
        source_keys="page_limit = 100\ngroup_events = 100",
        extra=lake_toml(lake) + (f'owner = "{owner}"\n' if owner else ""),
    )
    env = {"ACME_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "ingest.cli", "poll", "--config", str(config)]
    procs = [
        subprocess.Popen(
            command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(pollers)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    codes = sorted(code for _, _, code in results)
    assert codes[0] == 0 and set(codes) <= {0, 1}, results
    if owner:
        assert codes == [0] * pollers, results
    for _, err, code in results:
        if code == 1:
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
            assert "owned by" in err or "holds it" in err or "does not hold" in err
    reported = [re.search(r"(\d+) stored, (\d+) duplicates", out) for out, _, _ in results]
    assert sum(int(m.group(1)) for m in reported if m) == 900  # what each says it stored
    with writer(lake, mapping, "reader") as store:
        uuids = stored_uuids(store)
    assert not [u for u, n in Counter(uuids).items() if n > 1]
    assert set(uuids) == live_sim.org.visible_uuids()


def test_a_locked_sqlite_catalog_says_why_in_one_line() -> None:
    """SQLite's "database is locked" comes under a generic first line ("Failed to commit")
    when a second process writes to a SQLite catalog at the same time."""
    err = duckdb.TransactionException(
        "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
        "Failed to flush changes into DuckLake: database is locked"
    )
    translated = translate_lake(err, LakeConfig(catalog="sqlite:/srv/lake/catalog.sqlite"))
    assert isinstance(translated, LakeUnavailable)
    assert str(translated) == (
        "lake sqlite:/srv/lake/catalog.sqlite: the catalog is locked by another writer; a SQLite "
        "catalog takes one writing process at a time (PostgreSQL takes many)"
    )

"""Hostile page contents, served over HTTP on 127.0.0.1: events that cannot be decoded cost
themselves, not their page; a second content under a stored uuid is kept; large events
commit within the one-shot memory budget."""

from __future__ import annotations

import hashlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import ConfigError
from ingest.collect.pagemap import InlineMapper, Mapper, ProcessMapper
from ingest.collect.poll import PollResult, poll_cycle
from ingest.collect.settings import SourceConfig
from ingest.config import load_config
from ingest.mapping import CompiledMapping
from ingest.okta.client import OktaClient
from ingest.simulate.generator import EventGenerator
from ingest.store.db import Store
from ingest.store.remap import pending
from ingest.store.schema import MIGRATIONS
from tests.helpers import START, TOKEN, run_cli, source_for, stored_uuids

Client = Callable[[Any, Any], OktaClient]

BAD_UTF8 = b'{"uuid":"bad-utf8","eventType":"user.session.start","displayMessage":"caf\xe9"}'
DEEP = b'{"uuid":"deep","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
NOT_AN_OBJECT = b"42"
CUT_SHORT = b'{"uuid":"cut","actor":{"id":"00u1","type":"User"'


class Pages:
    """A small Okta-like server: ``pages[after]`` is the body answered to ``?after=...``
    (no ``after``: page 0); each page links to the next, the last to itself."""

    def __init__(self, pages: list[bytes]) -> None:
        self.pages = pages
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                after = self.path.partition("after=")[2].partition("&")[0]
                index = int(after) if after else 0
                body = owner.pages[index] if index < len(owner.pages) else b"[]"
                following = min(index + 1, len(owner.pages))
                link = f"{owner.url}/api/v1/logs?after={following}&limit={owner.limit}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Link", f'<{link}>; rel="next"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.limit = 7
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[list[bytes]], Pages]]:
    made: list[Pages] = []

    def make(pages: list[bytes]) -> Pages:
        made.append(Pages(pages))
        return made[-1]

    yield make
    for server in made:
        server.stop()


@dataclass(frozen=True)
class Poller:
    """What the page tests poll with: a store file in tmp_path, the mapping, the test's clock
    and a fresh client for each poll."""

    db: Path
    mapping: CompiledMapping
    clock: FakeClock
    client_for: Client

    def store(self) -> Store:
        return Store(self.db, self.mapping)

    def poll(self, source: SourceConfig, store: Store, **options: Any) -> PollResult:
        client = self.client_for(source, self.clock)
        return poll_cycle(source, store, client, self.clock, **options)


@pytest.fixture
def poller(
    tmp_path: Path, mapping: CompiledMapping, clock: FakeClock, token_env: str, client_for: Client
) -> Poller:
    return Poller(tmp_path / "d.duckdb", mapping, clock, client_for)


@pytest.fixture(params=["inline", "child"])
def mapper(request: pytest.FixtureRequest, mapping: CompiledMapping) -> Iterator[Mapper]:
    if request.param == "inline":
        yield InlineMapper(mapping)
    else:
        with ProcessMapper(mapping) as child:
            yield child


def events(count: int, seed: int = 11) -> list[dict[str, Any]]:
    return EventGenerator(seed=seed).stream(count, START - timedelta(hours=3), START)


def array(*elements: bytes) -> bytes:
    return b"[" + b",\n ".join(elements) + b"]"


def rejects(db: Store) -> list[tuple[Any, ...]]:
    return db.con.execute(
        "SELECT reason, raw_bytes, raw, raw_hash, uuid FROM rejects ORDER BY first_seen, reason"
    ).fetchall()


def test_bad_elements_go_to_rejects_with_their_bytes_and_the_rest_of_the_page_is_stored(
    serve: Callable[[list[bytes]], Pages],
    mapper: Mapper,
    poller: Poller,
) -> None:
    good = events(3)
    first = array(
        orjson.dumps(good[0]),
        BAD_UTF8,
        DEEP,
        NOT_AN_OBJECT,
        CUT_SHORT,
        *map(orjson.dumps, good[1:]),
    )
    okta = serve([first])
    source = source_for(okta, page_limit=7)  # type: ignore[arg-type]
    with poller.store() as store:
        result = poller.poll(source, store, mapper=mapper)
        assert result.caught_up
        assert (result.fetched, result.stored, result.rejected) == (7, 3, 4)
        stored = store.con.execute("SELECT uuid FROM events ORDER BY ingest_seq").fetchall()
        assert [u for (u,) in stored] == [e["uuid"] for e in good]
        rows = {reason: (exact, raw, digest) for reason, exact, raw, digest, _ in rejects(store)}
        undecodable = {exact: reason for reason, (exact, _, _) in rows.items() if exact}
        assert set(undecodable) == {BAD_UTF8, DEEP, CUT_SHORT}  # each one's exact bytes
        assert "not valid UTF-8" in undecodable[BAD_UTF8]
        assert "depth" in undecodable[DEEP]
        assert "cut short" in undecodable[CUT_SHORT]
        for reason, (exact, raw, digest) in rows.items():
            assert "\n" not in reason
            if exact:  # a JSON string of the text, bytes that are not UTF-8 as \xNN
                assert digest == hashlib.sha256(exact).hexdigest()
                assert orjson.loads(raw) == exact.decode("utf-8", "backslashreplace")
        [(reason, (exact, raw, _))] = [(r, v) for r, v in rows.items() if not v[0]]
        assert "not a JSON object" in reason and raw == "42"
        # the cursor moved past the page, which was asked for once
        cursor = store.cursor("acme")
        assert cursor is not None and cursor.next_url is not None
        assert cursor.next_url.endswith("after=1&limit=7")
        assert sum("after" not in path for path in okta.requests) == 1
        again = poller.poll(source, store, mapper=mapper)
        assert (again.fetched, again.rejected) == (0, 0)
        assert sum("after" not in path for path in okta.requests) == 1
        assert len(rejects(store)) == 4


def test_a_body_that_is_not_an_array_is_still_retried_as_a_bad_response(
    serve: Callable[[list[bytes]], Pages],
    poller: Poller,
) -> None:
    from ingest.base.errors import BadResponse
    from ingest.okta.client import ClientPolicy

    cut = array(orjson.dumps(events(1)[0]), CUT_SHORT)[:-1]  # the array never ends
    okta = serve([cut])
    policy = ClientPolicy(backoff_initial=0.01, retry_for=0.05)
    source = source_for(okta, page_limit=7, client=policy)  # type: ignore[arg-type]
    with poller.store() as store, pytest.raises(BadResponse) as err:
        poller.poll(source, store)
    assert "not JSON" in str(err.value)
    assert len(okta.requests) >= 2  # retried


def test_rejects_that_cannot_be_decoded_are_counted_and_never_remapped(
    serve: Callable[[list[bytes]], Pages],
    poller: Poller,
) -> None:
    okta = serve([array(orjson.dumps(events(1)[0]), BAD_UTF8, NOT_AN_OBJECT)])
    source = source_for(okta, page_limit=7)  # type: ignore[arg-type]
    db = poller.db
    with poller.store() as store:
        poller.poll(source, store)
        store.con.execute("UPDATE rejects SET mapping_version = 'older'")
        assert pending(store) == (0, 1)  # only the JSON one can be retried
    out = run_cli("status", "--db", str(db), "--format", "json")
    assert out.returncode == 0, out.stderr
    [row] = orjson.loads(out.stdout)
    assert (row["rejects"], row["conflicts"]) == (2, 0)
    out = run_cli("remap", "--db", str(db))
    assert out.returncode == 0, out.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        kept = con.execute("SELECT raw_bytes, mapping_version, reason FROM rejects").fetchall()
    finally:
        con.close()
    by_kind = {exact is not None: (version, reason) for exact, version, reason in kept}
    assert by_kind[True][0] == "older"  # left alone, its reason too
    assert by_kind[True][1].startswith("event could not be decoded: str is not valid UTF-8")
    assert by_kind[False] == (poller.mapping.version, "event is not a JSON object (got a number)")


def test_a_second_content_under_a_stored_uuid_is_kept_across_pages_polls_and_in_one_page(
    serve: Callable[[list[bytes]], Pages],
    mapper: Mapper,
    poller: Poller,
) -> None:
    good = events(6, seed=12)
    changed = [{**e, "displayMessage": "rewritten"} for e in good]
    again = [{**e, "displayMessage": "rewritten twice"} for e in good]
    pages = [
        # in one page: good[0] then another content of it; an identical repeat of good[1]
        array(*map(orjson.dumps, [good[0], changed[0], good[1], good[1], good[2]])),
        # across pages: good[2] came on the page before
        array(*map(orjson.dumps, [changed[2], good[3]])),
    ]
    okta = serve(pages)
    okta.limit = 5
    source = source_for(okta, page_limit=5)  # type: ignore[arg-type]
    with poller.store() as store:
        first = poller.poll(source, store, mapper=mapper)
        assert (first.stored, first.duplicates, first.conflicts) == (4, 1, 2)
        assert "2 uuid conflicts kept" in first.summary()
        # across polls: the same pages again, plus a third content of good[0]
        okta.pages = [array(*map(orjson.dumps, [good[0], changed[0], again[0], good[3]]))]
        store.con.execute("UPDATE cursors SET next_url = NULL")
        second = poller.poll(source, store, mapper=mapper)
        assert (second.stored, second.duplicates, second.conflicts) == (0, 2, 2)
        raw = dict(store.con.execute("SELECT uuid, raw::VARCHAR FROM events").fetchall())
        assert {u: orjson.loads(r) for u, r in raw.items()} == {
            e["uuid"]: e for e in good[:4]
        }  # the first content stays
        kept = store.con.execute(
            "SELECT uuid, raw::VARCHAR, raw_hash, stored_hash FROM conflicts ORDER BY seen_at, uuid"
        ).fetchall()
    expected = [changed[0], changed[2], again[0]]
    assert sorted((u, orjson.loads(r)["displayMessage"]) for u, r, _, _ in kept) == sorted(
        (e["uuid"], e["displayMessage"]) for e in expected
    )  # each other content once, although changed[0] came twice
    for uuid, text, digest, stored_hash in kept:
        assert digest == hashlib.sha256(text.encode()).hexdigest()
        assert stored_hash == hashlib.sha256(raw[uuid].encode()).hexdigest()


@pytest.mark.slow  # CLI polls of large pages
def test_pages_of_1000_events_of_50kb_commit_in_a_one_shot_poll(
    serve: Callable[[list[bytes]], Pages], tmp_path: Path
) -> None:
    """Two pages of 50 MB: the second used to fail at the checkpoint, which must hold 2048
    consecutive events' texts; the one-shot store raises its limit to fit them."""
    big = events(2000, seed=13)
    for event in big:
        event["debugContext"] = {"debugData": {"pad": "x" * 50_000}}
    okta = serve([orjson.dumps(big[:1000]), orjson.dumps(big[1000:])])
    okta.limit = 1000
    db = tmp_path / "d.duckdb"
    out = run_cli(
        "poll", "--org", okta.url, "--db", str(db), "--page-limit", "1000",
        env={"OKTA_API_TOKEN": TOKEN}, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "2000 stored" in out.stderr + out.stdout
    assert not Path(f"{db}.wal").exists()  # the closing checkpoint went through
    con = duckdb.connect(str(db), read_only=True)
    try:
        [(count, size)] = con.execute(
            "SELECT count(*), sum(length(raw::VARCHAR)) FROM events"
        ).fetchall()
    finally:
        con.close()
    assert count == 2000 and size > 100_000_000


def test_groups_are_bounded_by_bytes_as_well_as_by_events(
    serve: Callable[[list[bytes]], Pages],
    poller: Poller,
) -> None:
    big = events(30, seed=14)
    for event in big:
        event["debugContext"] = {"debugData": {"pad": "x" * 100_000}}
    okta = serve([orjson.dumps(big[i : i + 5]) for i in range(0, 30, 5)])  # 500 KB each
    okta.limit = 5
    source = source_for(okta, page_limit=5, group_bytes=1 << 20)  # type: ignore[arg-type]
    groups: list[int] = []
    with poller.store() as store:
        result = poller.poll(
            source, store, on_page=lambda pages, _events, _result: groups.append(pages)
        )
    assert result.stored == 30
    assert groups == [3, 3, 1]  # 1.5 MB reached after 3 pages; then the empty last page


def test_pages_of_undecodable_elements_count_towards_the_group_bounds(
    serve: Callable[[list[bytes]], Pages],
    poller: Poller,
) -> None:
    """Bad elements are held until their group commits, so they count like events: a
    hostile org serving nothing else must not make a cycle hold every page."""
    bad = b'{"a":"\xff' + b"x" * 100_000 + b'"}'
    okta = serve([b"[" + b",".join([bad] * 5) + b"]" for _ in range(6)])  # 500 KB each
    okta.limit = 5
    source = source_for(okta, page_limit=5, group_bytes=1 << 20)  # type: ignore[arg-type]
    groups: list[int] = []
    with poller.store() as store:
        result = poller.poll(
            source, store, on_page=lambda pages, _events, _result: groups.append(pages)
        )
    assert result.stored == 0 and result.rejected == 30
    assert groups == [3, 3, 1]


@pytest.mark.slow  # CLI polls of large pages
def test_a_crash_between_the_parts_of_a_split_group_loses_and_duplicates_nothing(
    serve: Callable[[list[bytes]], Pages], tmp_path: Path
) -> None:
    # 45 MB in one page: the one-shot store raises its limit to its 64 MB + 2 x 45 MB for the
    # checkpoint, and a part may hold a quarter of that (38.5 MB): two parts
    big = events(900, seed=15)
    for event in big:
        event["debugContext"] = {"debugData": {"pad": "x" * 50_000}}
    okta = serve([orjson.dumps(big)])
    okta.limit = 900
    db = tmp_path / "d.duckdb"
    args = ("poll", "--org", okta.url, "--db", str(db), "--page-limit", "900")
    env = {"OKTA_API_TOKEN": TOKEN}
    crashed = run_cli(*args, env={**env, "OKTADUCK_CRASH_AT": "store.part_committed"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        [(part,)] = con.execute("SELECT count(*) FROM events").fetchall()
        [(cursor,)] = con.execute("SELECT next_url FROM cursors").fetchall()
    finally:
        con.close()
    assert 0 < part < 900 and cursor is None  # some events in, the cursor not moved
    rerun = run_cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{900 - part} stored, {part} duplicates skipped" in rerun.stderr + rerun.stdout
    assert sorted(stored_uuids(db)) == sorted(e["uuid"] for e in big)


def test_a_database_of_the_schema_before_conflicts_shows_its_status_and_migrates(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    db = tmp_path / "d.duckdb"
    Store(db, mapping).close()
    con = duckdb.connect(str(db))
    try:  # back to schema 2
        con.execute("DROP TABLE conflicts")
        con.execute("DROP TABLE imports")  # schema 4's
        con.execute("ALTER TABLE rejects DROP COLUMN raw_bytes")
        con.execute("DELETE FROM schema_migrations WHERE version >= 3")
        con.execute(
            "INSERT INTO cursors (source, org_url, rejects, created_at) "
            "VALUES ('acme', 'https://acme.okta.com', 0, now())"
        )
    finally:
        con.close()
    out = run_cli("status", "--db", str(db), "--format", "json")
    assert out.returncode == 0, out.stderr
    [row] = orjson.loads(out.stdout)
    assert (row["source"], row["conflicts"]) == ("acme", 0)
    with Store(db, mapping) as store:
        tables = {
            t for (t,) in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        assert {"conflicts", "imports"} <= tables
        newest = store.con.execute("SELECT max(version) FROM schema_migrations").fetchall()
        assert newest == [(len(MIGRATIONS),)]


@pytest.mark.parametrize(("value", "expected"), [(None, 16 << 20), ("2097152", 2 << 20)])
def test_group_bytes_is_read_from_a_source(
    tmp_path: Path, value: str | None, expected: int
) -> None:
    text = '[[sources]]\nname = "acme"\norg_url = "https://acme.okta.com"\n'
    path = tmp_path / "oktaduck.toml"
    path.write_text(text + (f"group_bytes = {value}\n" if value else ""))
    assert load_config(path).source("acme").group_bytes == expected


@pytest.mark.parametrize("value", ["1000", "2147483648", '"16MB"'])
def test_group_bytes_out_of_bounds_is_one_line_error(tmp_path: Path, value: str) -> None:
    path = tmp_path / "oktaduck.toml"
    path.write_text(f'[[sources]]\nname = "acme"\norg_url = "https://acme.okta.com"\n'
                    f"group_bytes = {value}\n")  # fmt: skip
    with pytest.raises(ConfigError, match="group_bytes") as err:
        load_config(path)
    assert "\n" not in str(err.value)

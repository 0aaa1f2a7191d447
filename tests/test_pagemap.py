"""Mapping pages in a child process gives exactly what mapping them in-process gives."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import nanoarrow as na
import orjson
import pytest
from nanoarrow.c_schema import CSchema

from ingest.base.clock import FakeClock
from ingest.base.errors import MapperFailed
from ingest.collect.pagemap import (
    InlineMapper,
    MappedPage,
    MapperRing,
    PendingPage,
    ProcessMapper,
    start_mappers,
)
from ingest.collect.poll import poll_cycle
from ingest.mapping import CompiledMapping, load_mapping
from ingest.mapping.arrow import Table
from ingest.mapping.reads import paths_read
from ingest.okta.body import BadBody
from ingest.simulate.generator import EventGenerator
from ingest.store.db import PageRows, Store
from ingest.store.rawtexts import RawTexts
from tests.helpers import Sim, source_for
from tests.helpers.odd_events import MAPPINGS, generated, odd_events, sample_events

START = datetime(2026, 3, 1, tzinfo=UTC)
# the tables a page writes to, and an order of their rows that does not depend on timing
TABLES = {"events": "ingest_seq", "rejects": "raw_hash", "conflicts": "uuid, raw_hash"}


@pytest.fixture
def mapper(mapping: CompiledMapping) -> Iterator[ProcessMapper]:
    with ProcessMapper(mapping) as m:
        yield m


def a_page() -> bytes:
    events: list[object] = list(
        EventGenerator(seed=9).stream(200, START, START + timedelta(days=1))
    )
    bad_ip = {**events[5], "client": {"ipAddress": "not an address"}}  # type: ignore[dict-item]
    late = {**events[7], "published": "yesterday"}  # type: ignore[dict-item]
    events[5:6] = [bad_ip, "not an object", late]
    return orjson.dumps(events)


def same(a: MappedPage, b: MappedPage, mapping: CompiledMapping) -> None:
    assert (a.count, list(a.raw), a.uuids) == (b.count, list(b.raw), b.uuids)
    assert (a.batch.accepted, a.batch.rejected, a.batch.issues) == (
        b.batch.accepted,
        b.batch.rejected,
        b.batch.issues,
    )
    assert as_read(a.batch.to_arrow(mapping)) == as_read(b.batch.to_arrow(mapping))


def as_read(table: Table) -> tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A table's schema with its metadata, its column types and its rows, as DuckDB reads it."""
    con = duckdb.connect()
    con.register("t", table)
    types = con.execute("DESCRIBE t").fetchall()
    return repr(na.Schema(table.schema)), types, con.execute("SELECT * FROM t").fetchall()


def test_the_child_maps_a_page_exactly_as_the_parent_would(
    mapper: ProcessMapper, mapping: CompiledMapping
) -> None:
    body = a_page()
    here = InlineMapper(mapping).decode(body).result()
    there = mapper.decode(body).result()
    same(there, here, mapping)
    assert there.count == 202 and [i for i, _ in there.batch.rejected] == [6, 7]
    assert there.batch.issues[5] == ["client_ip: not an IP address: 'not an address'"]


def test_elements_that_cannot_be_decoded_come_back_alike_from_the_child_and_the_parent(
    mapper: ProcessMapper, mapping: CompiledMapping
) -> None:
    good = EventGenerator(seed=8).stream(4, START, START + timedelta(hours=1))
    bad = [b'{"uuid":"u","x":"\xff\xfe"}', b"[" * 2000 + b"]" * 2000, b'{"uuid":"v","a":[1,']
    body = b"[" + b",".join([orjson.dumps(good[0]), *bad, *map(orjson.dumps, good[1:])]) + b"]"
    here = InlineMapper(mapping).decode(body).result()
    pending = mapper.decode(body)
    assert pending.count == 7
    there = pending.result()
    same(there, here, mapping)
    assert there.bad == here.bad
    assert [b.raw for b in there.bad] == bad
    assert list(there.uuids) == [e["uuid"] for e in good]
    assert mapper.decode(b"[]").count == 0  # and the child goes on


def test_pages_handed_over_in_a_row_come_back_in_order(
    mapper: ProcessMapper, mapping: CompiledMapping
) -> None:
    gen = EventGenerator(seed=10)
    bodies = [
        orjson.dumps(gen.stream(n, START, START + timedelta(hours=1))) for n in (300, 0, 120, 1)
    ]
    pending = [mapper.decode(body) for body in bodies]  # counts first, mapping meanwhile
    assert [p.count for p in pending] == [300, 0, 120, 1]
    inline = InlineMapper(mapping)
    for body, page in zip(bodies, pending, strict=True):
        same(page.result(), inline.decode(body).result(), mapping)


@pytest.mark.parametrize("where", ["child", "inline"])
def test_a_body_handed_over_without_its_count_comes_back_mapped_or_refused(
    mapper: ProcessMapper, mapping: CompiledMapping, where: str
) -> None:
    inline = InlineMapper(mapping)
    chosen = mapper if where == "child" else inline
    later = [chosen.map_later(body) for body in (a_page(), b"<html>busy</html>", b"[]")]
    same(later[0].result(), inline.decode(a_page()).result(), mapping)
    with pytest.raises(BadBody, match="HTTP 200 with a"):
        later[1].result()
    assert later[2].result().count == 0  # and the mapper goes on
    assert chosen.decode(a_page()).count == 202


class _Recording:
    """A mapper that maps inline and notes the bodies it was given."""

    def __init__(self, mapping: CompiledMapping) -> None:
        self.inline = InlineMapper(mapping)
        self.bodies: list[bytes] = []

    def decode(self, body: bytes) -> PendingPage:
        self.bodies.append(body)
        return self.inline.decode(body)


def test_a_ring_hands_the_bodies_to_its_mappers_in_turn(mapping: CompiledMapping) -> None:
    first, second = _Recording(mapping), _Recording(mapping)
    ring = MapperRing([first, second])
    bodies = [orjson.dumps([{"n": n}]) for n in range(5)]
    assert [ring.decode(body).count for body in bodies] == [1] * 5
    assert (first.bodies, second.bodies) == (bodies[0::2], bodies[1::2])
    with pytest.raises(ValueError, match="no mappers"):
        MapperRing([])


def test_pages_handed_to_two_children_come_back_in_order_and_as_mapped_inline(
    mapping: CompiledMapping,
) -> None:
    gen = EventGenerator(seed=11)
    bodies = [
        orjson.dumps(gen.stream(n, START, START + timedelta(hours=1))) for n in (250, 3, 0, 90)
    ]
    bodies.append(a_page())
    inline = InlineMapper(mapping)
    with contextlib.ExitStack() as stack:
        ring = start_mappers(stack, mapping, 2)
        assert isinstance(ring, MapperRing)
        pending = [ring.decode(body) for body in bodies]  # two pages being mapped at once
        assert [p.count for p in pending] == [250, 3, 0, 90, 202]
        for body, page in zip(bodies, pending, strict=True):
            same(page.result(), inline.decode(body).result(), mapping)
    with contextlib.ExitStack() as stack:  # one is the child itself
        assert isinstance(start_mappers(stack, mapping, 1), ProcessMapper)


def test_a_ring_whose_child_died_fails_its_pages_not_waits(mapping: CompiledMapping) -> None:
    with ProcessMapper(mapping) as alive, ProcessMapper(mapping) as dead:
        dead._proc.send_signal(signal.SIGKILL)
        dead._proc.wait()
        ring = MapperRing([alive, dead])
        assert ring.decode(a_page()).result().count == 202
        with pytest.raises(MapperFailed, match=r"exit code -9"):
            ring.decode(a_page())


@pytest.mark.parametrize("body", [b"<html>busy</html>", b'{"errorCode": "E0000009"}', b"[{"])
def test_a_body_that_is_not_a_page_is_refused_and_the_child_goes_on(
    mapper: ProcessMapper, mapping: CompiledMapping, body: bytes
) -> None:
    with pytest.raises(BadBody, match="HTTP 200 with a"):
        mapper.decode(body)
    assert mapper.decode(b"[]").count == 0


def test_the_child_leaves_stopping_to_its_parent(mapper: ProcessMapper) -> None:
    """A service manager's SIGTERM (or Ctrl-C) reaches the whole group; the parent finishes
    the page in hand and then closes the child."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        mapper._proc.send_signal(sig)
    assert mapper.decode(a_page()).result().count == 202
    mapper.close()
    assert mapper._proc.returncode == 0


def test_a_child_that_died_is_reported_not_waited_for(mapper: ProcessMapper) -> None:
    mapper._proc.send_signal(signal.SIGKILL)
    mapper._proc.wait()
    with pytest.raises(MapperFailed, match=r"exit code -9"):
        mapper.decode(a_page())
    with pytest.raises(MapperFailed, match=r"exit code -9"):  # and from then on, at once
        mapper.decode(b"[]")


def test_a_mapping_file_that_changed_under_the_child_is_refused(
    tmp_path: Path, mapping: CompiledMapping
) -> None:
    import shutil

    from ingest.mapping import load_mapping

    folder = shutil.copytree(mapping.path.parent, tmp_path / "okta")
    copy = folder / mapping.path.name
    loaded = load_mapping(copy)
    copy.write_text(copy.read_text() + "\n# edited\n")
    with pytest.raises(MapperFailed, match="changed meanwhile"):
        ProcessMapper(loaded)


@pytest.mark.parametrize("children", [1, 2])
def test_a_poll_through_the_children_survives_bad_bodies_and_stores_everything(
    sim: Sim, tmp_path: Path, mapping: CompiledMapping, clock: FakeClock,
    token_env: str, client_for: object, children: int,
) -> None:  # fmt: skip
    now = clock.now()
    sim.org.add(sim.org.generator.stream(450, now - timedelta(hours=5), now - timedelta(minutes=2)))
    sim.org.inject("invalid_json", count=2)
    source = source_for(sim)
    client = client_for(source, clock)  # type: ignore[operator]
    with contextlib.ExitStack() as stack, Store(tmp_path / "db.duckdb", mapping) as store:
        mapper = start_mappers(stack, mapping, children)
        # small pages: many of them, taken by the children in turn
        result = poll_cycle(
            dataclasses.replace(source, page_limit=40), store, client, clock, mapper=mapper
        )
        uuids = [r[0] for r in store.con.execute("SELECT uuid FROM events").fetchall()]
    assert result.stored == 450 and client.stats.retries == 2
    assert len(uuids) == len(set(uuids)) and set(uuids) == sim.org.visible_uuids()


def test_a_page_from_the_child_is_stored_as_the_same_rows(
    mapper: ProcessMapper, mapping: CompiledMapping, tmp_path: Path
) -> None:
    """The child's page arrives with its Arrow table and its texts in one buffer; the store
    takes rows, duplicates and rejects from it as from a page mapped in-process."""
    events = orjson.loads(a_page())
    body = orjson.dumps([*events, events[3], events[0]])  # the page repeats two of its events
    there = mapper.decode(body).result()
    assert set(there.batch.columns) == {"uuid", "published"} and there.batch.arrays is not None
    assert isinstance(there.raw, RawTexts)
    tables = []
    for name, page in (("child", there), ("inline", InlineMapper(mapping).decode(body).result())):
        with Store(tmp_path / f"{name}.duckdb", mapping) as store:
            rows = PageRows("s", "https://x.okta.com", None, page.batch, page.raw, page.uuids)
            result = store.commit_page(rows, START)
            assert (result.stored, result.duplicates, result.rejected) == (200, 2, 2)
            tables.append(
                store.con.execute(
                    "SELECT * EXCLUDE (ingested_at) FROM events ORDER BY ingest_seq"
                ).fetchall()
            )
            tables.append(store.con.execute("SELECT * FROM rejects ORDER BY raw_hash").fetchall())
    assert tables[0] == tables[2] and tables[1] == tables[3]
    assert len(tables[0]) == 200 and len(tables[1]) == 2


def odd_values(base: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events with values at the edges of what the columns hold: nulls, empty lists, unicode
    (NUL, emoji, CJK, right-to-left), the int64 limits and past them, timestamps with
    offsets and at the ends of the calendar."""
    variants: list[dict[str, Any]] = [
        {"published": "2026-03-01T10:15:30.123456+05:30"},
        {"published": "2026-03-01T00:00:00.000001-08:00"},
        {"published": "1970-01-01T00:00:00Z"},
        {"published": "0001-01-01T00:00:00Z"},
        {"published": "9999-12-31T23:59:59.999999Z"},
        {"published": "2026-03-01T00:00:00.1234567Z"},
        {"published": None},
        {"actor": {"id": None, "type": "User", "displayName": "Zoë 日本語 🎉 שלום \u0000 end"}},
        {"actor": None, "client": None, "target": None, "request": None},
        {"target": [], "request": {"ipChain": []}},
        {"target": [None, {}, {"id": None, "type": None, "displayName": "✓"}]},
        {"request": {"ipChain": [None, {"ip": None}, {"ip": "2001:db8::1", "version": "V6"}]}},
        {"securityContext": {"asNumber": 2**63 - 1, "isProxy": None}},
        {"securityContext": {"asNumber": -(2**63), "isProxy": True}},
        {"securityContext": {"asNumber": 2**64}},
        {"client": {"ipAddress": "::ffff:10.0.0.1", "geographicalContext": {
            "geolocation": {"lat": -0.0, "lon": 1e308}}}},
        {"displayMessage": "", "eventType": "", "severity": None},
        {"debugContext": {"debugData": {"threatSuspected": "TRUE", "big": 10**30, "u": "ü"}}},
    ]  # fmt: skip
    out = []
    for n, change in enumerate(variants):
        event = {**base[n % len(base)], **change}
        event["uuid"] = f"odd-{n:03d}"  # its own event, not another content of one stored
        out.append(event)
    return out


def a_varied_page() -> bytes:
    """Every public catalog type, the shipped samples, odd values at the mapped paths."""
    plenty = generated(300, seed=23)
    odd = list(odd_events(plenty[:200], sorted(paths_read(load_mapping(MAPPINGS[0]))), 23))
    events = [*plenty, *sample_events(), *odd, *odd_values(plenty)]
    # orjson writes no int past 64 bits (and reads one back as a float, as a poll would)
    return json.dumps(events, ensure_ascii=False).encode()


def arrow_values(page: MappedPage, mapping: CompiledMapping) -> dict[str, object]:
    """Each column's Arrow type (its format, members and metadata) and values."""

    def shape(schema: CSchema) -> object:
        children = [schema.child(i) for i in range(schema.n_children)]
        metadata = dict(schema.metadata.items()) if schema.metadata else {}
        return schema.format, metadata, [(c.name, shape(c)) for c in children]

    arrays = page.batch.arrow_columns(mapping)
    return {
        c.name: (shape(a.schema), a.length, a.null_count, na.Array(a).to_pylist())
        for c, a in zip(mapping.columns, arrays, strict=True)
    }


@pytest.mark.parametrize("path", MAPPINGS, ids=[p.stem for p in MAPPINGS])
def test_a_varied_page_comes_from_the_child_with_the_same_arrow_columns(path: Path) -> None:
    """The child builds the Arrow columns and the parent reads them back from bytes: the
    same types, nulls and values as the columns built in-process, column by column."""
    mapping = load_mapping(path)
    body = a_varied_page()
    here = InlineMapper(mapping).decode(body).result()
    with ProcessMapper(mapping) as mapper:
        there = mapper.decode(body).result()
    assert there.batch.arrays is not None and not set(there.batch.columns) - {"uuid", "published"}
    assert (there.batch.accepted, there.batch.rejected, there.batch.issues) == (
        here.batch.accepted,
        here.batch.rejected,
        here.batch.issues,
    )
    assert (list(there.raw), there.uuids) == (list(here.raw), here.uuids)
    mine, theirs = arrow_values(there, mapping), arrow_values(here, mapping)
    for name in mine:
        assert mine[name] == theirs[name], name
    assert len(here.batch.accepted) > 1500 and here.batch.rejected and any(here.batch.issues)


def test_a_varied_page_from_the_child_is_stored_as_the_inline_one_is(
    mapping: CompiledMapping, tmp_path: Path
) -> None:
    """Every column of every table the page writes to, the child's against the in-process
    mapping's: timestamps to the microsecond, lists and lists of structs, unicode, nulls."""
    body = a_varied_page()
    pages = {"inline": InlineMapper(mapping).decode(body).result()}
    with ProcessMapper(mapping) as mapper:
        pages["child"] = mapper.decode(body).result()
    stored: dict[str, dict[str, list[object]]] = {}
    for name, page in pages.items():
        with Store(tmp_path / f"{name}.duckdb", mapping) as store:
            rows = PageRows("s", "https://x.okta.com", None, page.batch, page.raw, page.uuids)
            result = store.commit_page(rows, START)
            assert result.stored > 1500 and result.rejected and result.conflicts
            stored[name] = {
                f"{table}.{column}": [
                    r[0]
                    for r in store.con.execute(
                        f'SELECT "{column}" FROM {table} ORDER BY {order}'
                    ).fetchall()
                ]
                for table, order in TABLES.items()
                for (column,) in store.con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    f"WHERE table_name = '{table}' AND column_name NOT IN ('ingested_at', "
                    "'seen_at', 'rejected_at') ORDER BY ordinal_position"
                ).fetchall()
            }
    assert list(stored["child"]) == list(stored["inline"])
    for column in stored["inline"]:
        assert stored["child"][column] == stored["inline"][column], column
    published = stored["inline"]["events.published"]
    assert datetime(2026, 3, 1, 4, 45, 30, 123456, tzinfo=UTC) in published
    assert datetime(2026, 3, 1, 8, 0, 0, 1, tzinfo=UTC) in published


def test_a_page_the_parent_cannot_read_back_fails_its_body_and_the_mapper(
    mapping: CompiledMapping,
) -> None:
    """The child sends the columns of the file it loaded; a parent expecting others refuses
    the page (it is not stored under the wrong names), and the body waiting for it fails
    instead of waiting for ever."""
    fewer = dataclasses.replace(mapping, columns=mapping.columns[:-1])
    with ProcessMapper(fewer) as mapper:
        pending = mapper.decode(a_page())
        with pytest.raises(MapperFailed, match="sent the columns"):
            pending.result()
        assert not mapper.alive()
        with pytest.raises(MapperFailed, match="sent the columns"):
            mapper.decode(b"[]")

"""Mapping pages in a child process gives exactly what mapping them in-process gives."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import nanoarrow as na
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import MapperFailed
from ingest.collect.pagemap import InlineMapper, MappedPage, ProcessMapper
from ingest.collect.poll import poll_cycle
from ingest.mapping import CompiledMapping
from ingest.mapping.arrow import Table
from ingest.okta.body import BadBody
from ingest.simulate.generator import EventGenerator
from ingest.store.db import PageRows, Store
from ingest.store.rawtexts import RawTexts
from tests.helpers import Sim, source_for

START = datetime(2026, 3, 1, tzinfo=UTC)


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


def as_read(table: Table) -> tuple[str, list[object], list[object]]:
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


def test_a_poll_through_the_child_survives_bad_bodies_and_stores_everything(
    sim: Sim, mapper: ProcessMapper, tmp_path: Path, mapping: CompiledMapping, clock: FakeClock,
    token_env: str, client_for: object,
) -> None:  # fmt: skip
    now = clock.now()
    sim.org.add(sim.org.generator.stream(450, now - timedelta(hours=5), now - timedelta(minutes=2)))
    sim.org.inject("invalid_json", count=2)
    source = source_for(sim)
    client = client_for(source, clock)  # type: ignore[operator]
    with Store(tmp_path / "db.duckdb", mapping) as store:
        result = poll_cycle(source, store, client, clock, mapper=mapper)
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

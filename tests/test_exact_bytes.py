"""``raw`` holds each event's exact bytes as the page gave them: key order, number spelling,
escapes, unicode and whitespace inside the event, proved byte for byte against pages served
by the simulated org over HTTP, on a DuckDB file and on a lake."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.base.clock import FakeClock
from ingest.collect.pagemap import InlineMapper, ProcessMapper
from ingest.collect.poll import poll_cycle
from ingest.export.formats import Stored, formatter
from ingest.mapping import CompiledMapping
from ingest.okta.client import OktaClient
from ingest.okta.elements import parse_page, split_array
from ingest.store.db import Store
from ingest.store.rawtexts import same_content
from ingest.store.remap import remap
from tests.helpers import Sim, source_for

Client = Callable[[Any, Any], OktaClient]


def _reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


def odd_texts(events: list[dict[str, Any]]) -> list[bytes]:
    """The events written in ways orjson never writes: each one differently."""
    texts = []
    for n, event in enumerate(events):
        style = n % 4
        if style == 0:  # keys in reverse order, \\u escapes for all non-ASCII, spaces
            texts.append(json.dumps(_reversed(event), separators=(", ", " : ")).encode())
        elif style == 1:  # indented over lines, CRLF, raw UTF-8, a tab before a value
            text = json.dumps(event, indent=2, ensure_ascii=False).replace("\n", "\r\n")
            texts.append(text.replace('"uuid": ', '"uuid":\t').encode())
        elif style == 2:  # numbers spelled otherwise, escaped slashes, a surrogate pair
            odd = b'{"n": 1.50e3, "z": -0.0, "e": 1E+2, "big": 12345678901234567890, '
            odd += b'"s": "a\\/b \\u00e9\xc3\xa9 \\ud83d\\ude00 \\"q\\" \\t", '
            texts.append(odd + orjson.dumps(event)[1:])
        else:  # orjson's own writing, with spaces at both ends inside the braces
            texts.append(b"{ " + orjson.dumps(event)[1:-1] + b" }")
    return texts


def served(sim: Sim, count: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Events added to the org as odd texts, published in the last hours."""
    assert sim.clock is not None
    now = sim.clock.now()
    events = sim.org.generator.stream(count, now - timedelta(hours=5), now - timedelta(minutes=2))
    texts = odd_texts(events)
    sim.org.add(texts)
    return events, texts


def raw_by_uuid(store: Store, table: str = "events") -> dict[str, str]:
    rows = store.con.execute(f"SELECT uuid, raw::VARCHAR FROM {table}").fetchall()
    return {uuid: raw for uuid, raw in rows}


# a page mapped in this process or by the mapping process (remap needs ``map_later``)
EitherMapper = InlineMapper | ProcessMapper


@pytest.fixture(params=["inline", "child"])
def mapper(request: pytest.FixtureRequest, mapping: CompiledMapping) -> Iterator[EitherMapper]:
    if request.param == "inline":
        yield InlineMapper(mapping)
    else:
        with ProcessMapper(mapping) as child:
            yield child


def test_a_page_splits_into_each_elements_exact_bytes() -> None:
    elements = [
        b'{"b":1,  "a": 1.50e3, "u":"\\u00e9\xc3\xa9"}',
        b'{\n  "x" : [ 1 , 2 ],\r\n  "y":{}\n}',
        b'{"s":"],{\\"x\\":[","t":"\\\\"}',
    ]
    body = b" [\n" + b" ,\t".join(elements) + b"\n] "
    page = parse_page(body)
    assert page.texts == elements
    assert page.events == [orjson.loads(e) for e in elements]
    assert page.bad == []


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
objects = st.dictionaries(
    st.text(),
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=12,
    ),
    max_size=5,
)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(objects, st.integers(0, 5)), max_size=6),
    st.sampled_from(["", " ", "\n", " \r\n\t"]),
)
def test_any_page_gives_each_elements_bytes_however_it_is_written(
    elements: list[tuple[dict[str, Any], int]], gap: str
) -> None:
    """Each element written its own way (indent, separators, escapes or raw UTF-8, key order)
    comes back as exactly its bytes, and decoded as the same value."""
    texts = []
    for value, style in elements:
        if style % 2:
            value = _reversed(value)
        separators = ((",", ":"), (", ", ": "), (" ,", " : "))[style % 3]
        indent = 2 if style == 4 else None
        text = json.dumps(value, ensure_ascii=style < 3, separators=separators, indent=indent)
        texts.append(text.encode())
    body = ("[" + gap).encode() + (gap + "," + gap).encode().join(texts) + (gap + "]").encode()
    page = parse_page(body)
    assert page.texts == texts
    assert page.events == [orjson.loads(t) for t in texts]
    assert page.bad == []


def test_an_event_too_deep_to_write_back_is_rejected_with_its_bytes_either_way() -> None:
    deep = b'{"uuid":"deep","x":' + b"[" * 300 + b"]" * 300 + b"}"
    wide = b'{"uuid":"wide","x":[' + b",".join([b"[]"] * 400) + b"]}"  # many brackets, flat
    fine = b'{"uuid":"ok",  "n":1.0e1}'
    page = parse_page(b"[" + b",".join([fine, deep, wide]) + b"]")
    assert page.texts == [fine, wide]
    assert [(b.raw, "nested too deeply" in b.reason) for b in page.bad] == [(deep, True)]
    # the same when another element keeps the body from decoding as a whole
    cut = parse_page(b"[" + b",".join([fine, deep, b'{"uuid":"cut"', wide]) + b"]")
    assert cut.texts == [fine, wide]
    assert [b.raw for b in cut.bad] == [deep, b'{"uuid":"cut"']
    assert [t for t, broken in split_array(b"[" + fine + b"]") if not broken] == [fine]


@pytest.mark.parametrize("store", ["file", "postgres"], indirect=True)
def test_every_stored_raw_is_the_bytes_the_page_gave(
    sim: Sim,
    store: Store,
    clock: FakeClock,
    token_env: str,
    client_for: Client,
    mapper: EitherMapper,
) -> None:
    events, texts = served(sim, 60)
    unmappable = b'{ "published" : "2026-11-01T11:00:00.000Z",\n "uuid":"no-type-\\u00e9" }'
    sim.org.add([unmappable])  # no eventType: rejected, its bytes kept as they came
    source = source_for(sim, page_limit=25)
    result = poll_cycle(source, store, client_for(source, clock), clock, mapper=mapper)
    assert (result.stored, result.rejected) == (60, 1)
    stored = raw_by_uuid(store)
    assert len(stored) == 60
    for event, text in zip(events, texts, strict=True):
        assert stored[event["uuid"]].encode() == text
    [(reject,)] = store.con.execute("SELECT raw::VARCHAR FROM rejects").fetchall()
    assert reject.encode() == unmappable
    # what DuckDB reads out of them is the events' content
    uuid = events[2]["uuid"]  # written with "n": 1.50e3 and escapes
    found = store.con.execute(
        "SELECT raw->>'$.uuid', (raw->>'$.n')::DOUBLE, raw->>'$.s' FROM events WHERE uuid = ?",
        [uuid],
    ).fetchall()
    assert found == [(uuid, 1500.0, 'a/b \u00e9\u00e9 \U0001f600 "q" \t')]


def test_the_same_bytes_again_or_the_same_json_in_other_bytes_are_duplicates(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    events, texts = served(sim, 12)
    source = source_for(sim)
    client = client_for(source, clock)
    assert poll_cycle(source, store, client, clock).stored == 12
    # served again later: the same bytes, another writing of the same JSON, other content
    late = clock.now() + timedelta(seconds=5)
    same_bytes = texts[0]
    rewritten = orjson.dumps(orjson.loads(texts[1]))  # keys, numbers, escapes as orjson's
    other = orjson.dumps({**orjson.loads(texts[2]), "displayMessage": "something else"})
    assert rewritten != texts[1] and same_content(rewritten, texts[1])
    sim.org.add_late([same_bytes, rewritten, other], persisted_at=late)
    clock.advance(60)
    again = poll_cycle(source, store, client, clock)
    assert (again.stored, again.duplicates, again.conflicts) == (0, 2, 1)
    conflicts = store.con.execute("SELECT uuid, raw::VARCHAR FROM conflicts").fetchall()
    assert conflicts == [(events[2]["uuid"], other.decode())]
    # the first bytes stay stored
    stored = raw_by_uuid(store)
    assert [stored[e["uuid"]].encode() for e in events[:3]] == texts[:3]


def test_a_page_repeating_an_event_in_other_bytes_stores_it_once_without_a_conflict(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    events, texts = served(sim, 5)
    sim.org.add([orjson.dumps(events[3])])  # the same JSON as texts[3], in orjson's bytes
    source = source_for(sim)
    result = poll_cycle(source, store, client_for(source, clock), clock)
    assert (result.stored, result.duplicates, result.conflicts) == (5, 1, 0)
    assert store.con.execute("SELECT count(*) FROM conflicts").fetchall() == [(0,)]
    assert raw_by_uuid(store)[events[3]["uuid"]].encode() == texts[3]


def test_a_raw_export_keeps_each_event_on_one_line(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, client_for: Client
) -> None:
    events, texts = served(sim, 8)
    source = source_for(sim)
    poll_cycle(source, store, client_for(source, clock), clock)
    rows = store.con.execute("SELECT ingest_seq, raw FROM events ORDER BY ingest_seq").fetchall()
    lines = [formatter("raw")(Stored(seq, raw)) for seq, raw in rows]
    assert lines is not None and all(line is not None for line in lines)
    by_uuid = {orjson.loads(line)["uuid"]: line for line in lines if line is not None}
    for event, text in zip(events, texts, strict=True):
        line = by_uuid[event["uuid"]]
        assert b"\n" not in line and b"\r" not in line
        assert same_content(line, text)
        if b"\n" not in text:
            assert line == text  # untouched unless it had to be
    assert any(b"\n" in text for text in texts)


@pytest.mark.parametrize("store", ["file", "postgres"], indirect=True)
def test_remap_reads_the_exact_bytes_and_leaves_them_as_they_are(
    sim: Sim,
    store: Store,
    clock: FakeClock,
    token_env: str,
    client_for: Client,
    mapper: EitherMapper,
) -> None:
    events, texts = served(sim, 30)
    source = source_for(sim)
    poll_cycle(source, store, client_for(source, clock), clock)
    before = store.con.execute("SELECT * EXCLUDE (mapping_version) FROM events ORDER BY uuid")
    rows = before.fetchall()
    table = store.events_table  # on a lake, ``events`` is a view of it
    store.con.execute(f"UPDATE {table} SET mapping_version = 'old', event_type = NULL")
    done = remap(store, clock, batch_size=7, mapper=mapper)  # here or in the mapping process
    assert done.remapped == 30
    after = store.con.execute("SELECT * EXCLUDE (mapping_version) FROM events ORDER BY uuid")
    assert after.fetchall() == rows
    stored = raw_by_uuid(store)
    assert [stored[e["uuid"]].encode() for e in events] == texts

"""Mapped values as Arrow arrays: every type, with nulls, read back by DuckDB as it stores them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest

from ingest.mapping.arrow import Table, column, json_list, json_texts, repeated, strings
from ingest.store.rawtexts import RawTexts, raw_array

MEMBERS = (("id", "string"), ("count", "int"), ("at", "timestamp"))
T1 = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
T2 = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _read(table: Table) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    con = duckdb.connect()
    con.register("t", table)
    rows = con.execute("SELECT * FROM t").fetchall()
    types = con.execute("SELECT column_name, column_type FROM (DESCRIBE t)").fetchall()
    return rows, types


@pytest.mark.parametrize(
    ("type_name", "values", "duckdb_type"),
    [
        ("string", ["a", None, "é ✓"], "VARCHAR"),
        ("ip", ["10.0.0.1", None, "::1"], "VARCHAR"),
        ("json", ['{"a":1}', None, "[]"], "VARCHAR"),
        ("int", [1, None, -(2**63)], "BIGINT"),
        ("epoch_ms", [0, None, 1_700_000_000_000], "BIGINT"),
        ("float", [1.5, None, -0.0], "DOUBLE"),
        ("bool", [True, None, False], "BOOLEAN"),
        ("timestamp", [T1, None, T2], "TIMESTAMP WITH TIME ZONE"),
        ("list[string]", [["a", None], None, []], "VARCHAR[]"),
        ("list[int]", [[1, 2], [], None], "BIGINT[]"),
        ("list[timestamp]", [[T1, T2], None, [None]], "TIMESTAMP WITH TIME ZONE[]"),
    ],
)
def test_every_type_reaches_duckdb_as_it_was(
    type_name: str, values: list[Any], duckdb_type: str
) -> None:
    rows, types = _read(Table.of({"v": column(values, type_name)}))
    assert [r[0] for r in rows] == values
    assert types == [("v", duckdb_type)]


def test_a_list_of_structs_keeps_members_nulls_and_empty_lists() -> None:
    values = [
        [{"id": "a", "count": 1, "at": T1}, None, {"id": "b"}],
        None,
        [],
        [{"count": None, "extra": "ignored"}],
    ]
    rows, types = _read(Table.of({"v": column(values, "list[json]", MEMBERS)}))
    assert [r[0] for r in rows] == [
        [{"id": "a", "count": 1, "at": T1}, None, {"id": "b", "count": None, "at": None}],
        None,
        [],
        [{"id": None, "count": None, "at": None}],
    ]
    assert types == [
        ("v", 'STRUCT(id VARCHAR, count BIGINT, "at" TIMESTAMP WITH TIME ZONE)[]'),
    ]


def test_more_than_eight_rows_and_nulls_past_the_first_byte_of_the_bitmap() -> None:
    values = [None if i % 3 == 0 else f"v{i}" for i in range(21)]
    lists = [None if i % 5 == 0 else [i] * (i % 4) for i in range(21)]
    rows, _ = _read(
        Table.of(
            {"s": strings(values), "l": column(lists, "list[int]"), "c": repeated(7, 21, "int")}
        )
    )
    assert rows == [(s, lst, 7) for s, lst in zip(values, lists, strict=True)]


def test_json_texts_are_stored_in_a_json_column_as_they_are() -> None:
    texts = ['{"b":1,"a":[true]}', '"x"', '{"k":"é"}']
    data = "".join(texts).encode()
    starts = [0]
    for text in texts:
        starts.append(starts[-1] + len(text.encode()))
    offsets = b"".join(s.to_bytes(4, "little") for s in starts)
    con = duckdb.connect()
    con.execute("CREATE TABLE j (raw JSON)")
    for array in (json_texts(data, offsets, 3), json_list(texts)):
        con.register("t", Table.of({"raw": array}))
        assert con.execute("DESCRIBE t").fetchall()[0][1] == "JSON"
        con.execute("INSERT INTO j SELECT raw FROM t")
        con.unregister("t")
    assert [r[0] for r in con.execute("SELECT raw FROM j").fetchall()] == texts * 2


def test_raw_texts_index_like_the_page_and_pick_rows() -> None:
    texts = ['{"uuid":"a"}', '{"uuid":"bé"}', '{"uuid":"c"}']
    encoded = [t.encode() for t in texts]
    starts = [0, len(encoded[0]), len(encoded[0]) + len(encoded[1]), sum(map(len, encoded))]
    raw = RawTexts(b"".join(encoded), b"".join(s.to_bytes(4, "little") for s in starts))
    assert (len(raw), raw[1], list(raw)) == (3, texts[1], texts)
    with pytest.raises(IndexError):
        raw[3]
    for source in (raw, texts):
        rows, _ = _read(Table.of({"raw": raw_array(source, [0, 2])}))
        assert [r[0] for r in rows] == [texts[0], texts[2]]
    assert raw_array(raw, [0, 1, 2]) is raw.array


def test_a_table_of_several_batches_is_read_in_order_and_can_be_read_twice() -> None:
    first = Table.of({"n": column([1, 2], "int")})
    second = Table.of({"n": column([3], "int")})
    table = Table(first.schema, first.batches + second.batches)
    assert table.num_rows == 3
    con = duckdb.connect()
    con.register("t", table)
    assert con.execute("SELECT n FROM t").fetchall() == [(1,), (2,), (3,)]
    assert con.execute("SELECT sum(n) FROM t").fetchall() == [(6,)]

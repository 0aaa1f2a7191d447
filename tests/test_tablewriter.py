"""Query results in every output format."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson

from ingest.base.tablewriter import write_rows

COLUMNS = ["uuid", "published", "raw", "n"]
ROWS = [
    ("a", datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), '{"x": [1, 2]}', 1),
    ("b", None, "{}", None),
]


def render(fmt: str) -> str:
    out = io.StringIO()
    write_rows(COLUMNS, iter(ROWS), fmt, out, json_columns=frozenset({"raw"}))
    return out.getvalue()


def test_json_is_one_array_with_utc_times_and_nested_json() -> None:
    doc = orjson.loads(render("json"))
    assert doc[0] == {
        "uuid": "a",
        "published": "2026-01-02T03:04:05.006000Z",
        "raw": {"x": [1, 2]},
        "n": 1,
    }
    assert doc[1]["published"] is None


def test_empty_json_is_an_empty_array() -> None:
    out = io.StringIO()
    write_rows(["a"], iter([]), "json", out)
    assert orjson.loads(out.getvalue()) == []


def test_ndjson_is_one_object_per_line() -> None:
    lines = render("ndjson").splitlines()
    assert [orjson.loads(line)["uuid"] for line in lines] == ["a", "b"]


def test_csv_has_a_header_and_empty_cells_for_null() -> None:
    lines = render("csv").splitlines()
    assert lines[0] == "uuid,published,raw,n"
    assert lines[2] == "b,,{},"


def test_table_aligns_columns_and_counts_rows() -> None:
    text = render("table")
    assert text.splitlines()[0].split() == COLUMNS
    assert text.rstrip().endswith("(2 rows)")

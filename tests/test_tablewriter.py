"""Query results in every output format."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson

from ingest.base.tablewriter import write_rows
from tests.helpers import run_cli

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


def test_a_table_shows_control_characters_instead_of_passing_them_to_the_terminal() -> None:
    # what a failed sign-in's user name can hold: whatever was typed at the login page
    hostile = "\x1b[2J\x1b]0;pwned\x07evil\rmallory\x9b31m\x7f\tné"
    out = io.StringIO()
    write_rows([f"who{hostile}"], iter([(hostile,)]), "table", out)
    text = out.getvalue()
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text)
    shown = r"\x1b[2J\x1b]0;pwned\x07evil\x0dmallory\x9b31m\x7f\x09né"
    assert text.splitlines()[0] == f"who{shown}"
    assert text.splitlines()[2] == shown


def test_an_error_quoting_stored_text_shows_its_control_characters(tmp_path: Path) -> None:
    db = tmp_path / "okta.duckdb"
    duckdb.connect(str(db)).close()
    done = run_cli("sql", "--db", str(db), "SELECT CAST(chr(27) || '[2J' || chr(155) AS INT)")
    assert done.returncode != 0
    assert "\x1b" not in done.stderr and "\x9b" not in done.stderr
    assert r"\x1b[2J\x9b" in done.stderr and done.stderr.count("\n") == 1

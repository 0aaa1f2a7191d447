"""Type coercion: what each mapping type accepts, what it refuses, and the column types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.mapping.types import (
    Invalid,
    duckdb_type,
    rfc3339_exact,
    to_bool,
    to_float,
    to_int,
    to_ip,
    to_json,
    to_string,
    to_timestamp,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-03-26T21:05:32.159Z", datetime(2023, 3, 26, 21, 5, 32, 159000, tzinfo=UTC)),
        ("2023-03-26T21:05:32Z", datetime(2023, 3, 26, 21, 5, 32, tzinfo=UTC)),
        ("2023-03-26T21:05:32.159123Z", datetime(2023, 3, 26, 21, 5, 32, 159123, tzinfo=UTC)),
        ("2023-03-26T21:05:32.1591239Z", datetime(2023, 3, 26, 21, 5, 32, 159123, tzinfo=UTC)),
        ("2023-03-26T23:05:32.159+02:00", datetime(2023, 3, 26, 21, 5, 32, 159000, tzinfo=UTC)),
        ("2023-03-26T16:05:32-0500", datetime(2023, 3, 26, 21, 5, 32, tzinfo=UTC)),
        ("2023-03-26 21:05:32.159z", datetime(2023, 3, 26, 21, 5, 32, 159000, tzinfo=UTC)),
        ("2024-02-29T00:00:00.000Z", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_timestamps_accepted(text: str, expected: datetime) -> None:
    """RFC 3339 with Z or an offset, ms or us, becomes an aware UTC datetime."""
    parsed = to_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "2017-09-31T22:23:07.777Z",  # September 31st
        "2023-02-29T00:00:00.000Z",  # not a leap year
        "2023-03-26T24:00:00.000Z",
        "2023-03-26T21:05:60Z",  # leap second
        "redacted",
        "",
        "2023-03-26T21:05:32",  # no offset
        "2023-03-26",
        "Tue, 26 Sep 2017 20:21:32 GMT",
        "20230326T210532Z",
        "2023-W12-1T21:05:32.159Z",
        "2023-03-26T21:05:32,159Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
        1679864732159,
        1679864732.159,
        True,
        None,
        {"published": "2023-03-26T21:05:32.159Z"},
    ],
)
def test_timestamps_refused(value: Any) -> None:
    """Impossible dates, 'redacted', missing offsets and epoch numbers are invalid."""
    with pytest.raises(Invalid):
        to_timestamp(value)


def test_rfc3339_keeps_milliseconds_or_microseconds() -> None:
    """Timestamps print with ms, or with us when they have them, and a Z."""
    assert rfc3339_exact(datetime(2023, 3, 26, 21, 5, 32, 159000, tzinfo=UTC)) == (
        "2023-03-26T21:05:32.159Z"
    )
    assert rfc3339_exact(datetime(2023, 3, 26, 21, 5, 32, 159123, tzinfo=UTC)) == (
        "2023-03-26T21:05:32.159123Z"
    )


@pytest.mark.parametrize(
    ("coerce", "value", "expected"),
    [
        (to_string, "abc", "abc"),
        (to_string, 0, "0"),
        (to_string, 1.5, "1.5"),
        (to_string, True, "true"),
        (to_int, 577, 577),
        (to_int, "577", 577),
        (to_int, " -12 ", -12),
        (to_int, 3.0, 3),
        (to_int, 2**63 - 1, 2**63 - 1),
        (to_float, 43.6567, 43.6567),
        (to_float, "-79.34", -79.34),
        (to_float, 7, 7.0),
        (to_float, "1e3", 1000.0),
        (to_bool, True, True),
        (to_bool, "false", False),
        (to_bool, "TRUE", True),
        (to_ip, "142.126.158.61", "142.126.158.61"),
        (to_ip, "2001:DB8:0:0::1", "2001:db8::1"),
        (to_json, {"b": 1, "a": [1, None]}, '{"b":1,"a":[1,null]}'),
        (to_json, "text", '"text"'),
    ],
)
def test_coercion_accepts(coerce: Any, value: Any, expected: Any) -> None:
    """Each type takes its natural JSON form and the string forms Okta uses."""
    assert coerce(value) == expected


@pytest.mark.parametrize(
    ("coerce", "value"),
    [
        (to_string, {"a": 1}),
        (to_string, [1]),
        (to_int, "12a"),
        (to_int, 1.5),
        (to_int, True),
        (to_int, 2**63),
        (to_int, "nan"),
        (to_float, "nan"),
        (to_float, "inf"),
        (to_float, float("inf")),
        (to_float, False),
        (to_float, 10**400),
        (to_float, "1_000"),
        (to_bool, "yes"),
        (to_bool, 1),
        (to_bool, None),
        (to_ip, "null"),
        (to_ip, "999.1.1.1"),
        (to_ip, "010.0.0.1"),
        (to_ip, 167772161),
        (to_json, {"n": 2**70}),
        pytest.param(to_string, 10**5000, id="huge-int-as-string"),
        pytest.param(to_int, "9" * 5000, id="huge-int-text"),
        pytest.param(to_int, 10**5000, id="huge-int"),
        pytest.param(to_float, "9" * 5000, id="huge-float-text"),
    ],
)
def test_coercion_refuses(coerce: Any, value: Any) -> None:
    """Values that do not fit the type raise Invalid (never another exception)."""
    with pytest.raises(Invalid):
        coerce(value)


def test_column_types() -> None:
    """Mapping types translate to the DuckDB and Arrow types the store uses."""
    assert duckdb_type("string") == "VARCHAR"
    assert duckdb_type("int") == "BIGINT"
    assert duckdb_type("float") == "DOUBLE"
    assert duckdb_type("bool") == "BOOLEAN"
    assert duckdb_type("timestamp") == "TIMESTAMPTZ"
    assert duckdb_type("ip") == "VARCHAR"
    assert duckdb_type("json") == "JSON"
    assert duckdb_type("list[string]") == "VARCHAR[]"
    assert duckdb_type("list[json]") == "JSON[]"
    members = (("id", "string"), ("count", "int"))
    assert duckdb_type("list[json]", members) == 'STRUCT("id" VARCHAR, "count" BIGINT)[]'

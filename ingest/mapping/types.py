"""The mapping's value types: names, coercion of JSON values, and their DuckDB form.

A coercer takes a non-null JSON value and returns the typed value, or raises ``Invalid`` with a
short reason. Coercers are pure and cheap: they run once per field per event.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

SCALAR_TYPES: tuple[str, ...] = (
    "string",
    "int",
    "float",
    "bool",
    "timestamp",
    "epoch_ms",
    "ip",
    "json",
)
LIST_TYPES: tuple[str, ...] = tuple(f"list[{name}]" for name in SCALAR_TYPES)
ALL_TYPES: tuple[str, ...] = SCALAR_TYPES + LIST_TYPES

# Types a value map (`values = {...}`) may produce: one plain value, compared as a string.
VALUE_MAP_TYPES: frozenset[str] = frozenset({"string", "int", "float", "bool", "timestamp", "ip"})

_DUCKDB: dict[str, str] = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "epoch_ms": "BIGINT",
    "ip": "VARCHAR",
    "json": "JSON",
}

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})"
)


class Invalid(Exception):
    """A value could not be coerced to its field's type; the message says why (no field name)."""


class Partial(Exception):
    """A list value was coerced except for some items: ``value`` holds the result, with NULLs."""

    def __init__(self, value: Any, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.value = value
        self.problems = problems


def is_list_type(type_name: str) -> bool:
    return type_name.startswith("list[")


def item_type(type_name: str) -> str:
    """``list[int]`` -> ``int``; a scalar type is its own item type."""
    return type_name[5:-1] if is_list_type(type_name) else type_name


def show(value: Any) -> str:
    """A short, printable description of a JSON value for issue and rejection messages."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 128:
        return "a very large number"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def to_string(value: Any) -> str:
    """Strings as they are; numbers and booleans as their JSON text (``0`` -> ``"0"``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 128:
            raise Invalid("number too large to keep as text")
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise Invalid(f"expected a string, got {show(value)}")


def to_int(value: Any) -> int:
    """Integers, integral floats and integer strings, within BIGINT range."""
    if isinstance(value, bool):
        raise Invalid(f"expected an integer, got {show(value)}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise Invalid(f"expected an integer, got {show(value)}")
        result = int(value)
    elif isinstance(value, str) and len(value) <= 40 and _INT_TEXT.fullmatch(value.strip()):
        result = int(value.strip())
    else:
        raise Invalid(f"expected an integer, got {show(value)}")
    if not _INT_MIN <= result <= _INT_MAX:
        raise Invalid(f"integer out of range: {show(value)}")
    return result


def to_float(value: Any) -> float:
    """Finite numbers and numeric strings (no ``nan`` or ``inf``)."""
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, bool):
        raise Invalid(f"expected a number, got {show(value)}")
    if isinstance(value, float):
        result = value
    elif isinstance(value, int):
        try:
            result = float(value)
        except OverflowError:
            raise Invalid(f"number out of range: {show(value)}") from None
    elif isinstance(value, str) and len(value) <= 400 and _FLOAT_TEXT.fullmatch(value.strip()):
        result = float(value.strip())
    else:
        raise Invalid(f"expected a number, got {show(value)}")
    if not math.isfinite(result):
        raise Invalid(f"number out of range: {show(value)}")
    return result


def to_bool(value: Any) -> bool:
    """JSON booleans and the strings ``"true"``/``"false"`` in any case (as in debugData)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    raise Invalid(f"expected a boolean, got {show(value)}")


def to_timestamp(value: Any) -> datetime:
    """An RFC 3339 timestamp with ``Z`` or an offset, to an aware UTC datetime.

    Fractions of up to nine digits are accepted and truncated to microseconds. Numbers (epoch
    seconds or milliseconds are ambiguous), dates without a time, times without an offset,
    leap seconds and impossible dates are refused.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise Invalid("timestamp without a UTC offset")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise Invalid(f"expected an RFC 3339 timestamp, got {show(value)}")
    if (
        len(value) == 24
        and value[23] == "Z"
        and value[19] == "."
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
    ):
        # Okta's own form (milliseconds, Z): with the separators in place, fromisoformat
        # accepts nothing but ASCII digits in between.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(f"impossible or out-of-range date or time: {show(value)}") from None
    if _TIMESTAMP.fullmatch(value) is None:
        raise Invalid(f"not an RFC 3339 timestamp: {show(value)}")
    try:
        # The pattern above decides what is accepted; fromisoformat only does the arithmetic.
        parsed = datetime.fromisoformat(value.upper())
        return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid(f"impossible or out-of-range date or time: {show(value)}") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def to_epoch_ms(value: Any) -> int:
    """What ``to_timestamp`` accepts, as whole milliseconds since 1970-01-01T00:00:00Z.

    Sub-millisecond digits are dropped (rounded toward the past), as OCSF's ``timestamp_t``
    wants. Numbers are refused for the same reason as for ``timestamp``.
    """
    return (to_timestamp(value) - _EPOCH) // _MILLISECOND


@lru_cache(maxsize=8192)
def _canonical_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def to_ip(value: Any) -> str:
    """An IPv4 or IPv6 address in its canonical text form."""
    if isinstance(value, str):
        canonical = _canonical_ip(value.strip())
        if canonical is not None:
            return canonical
        raise Invalid(f"not an IP address: {show(value)}")
    raise Invalid(f"expected an IP address, got {show(value)}")


def to_json(value: Any) -> str:
    """Compact JSON text of any value, keys in their original order."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError) as err:
        raise Invalid(f"cannot be written as JSON: {err}") from None


COERCERS: dict[str, Callable[[Any], Any]] = {
    "string": to_string,
    "int": to_int,
    "float": to_float,
    "bool": to_bool,
    "timestamp": to_timestamp,
    "epoch_ms": to_epoch_ms,
    "ip": to_ip,
    "json": to_json,
}


def rfc3339_exact(value: datetime) -> str:
    """UTC with a ``Z``: milliseconds, or microseconds when the value has them."""
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond % 1000 == 0:
        return f"{base}.{value.microsecond // 1000:03d}Z"
    return f"{base}.{value.microsecond:06d}Z"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_type(type_name: str, members: tuple[tuple[str, str], ...] = ()) -> str:
    """The DuckDB column type; ``members`` are (name, type) of a ``list[json]`` struct."""
    if members:
        inner = ", ".join(f"{_quote(name)} {_DUCKDB[kind]}" for name, kind in members)
        return f"STRUCT({inner})[]"
    if is_list_type(type_name):
        return _DUCKDB[item_type(type_name)] + "[]"
    return _DUCKDB[type_name]

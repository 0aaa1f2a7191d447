"""Whole-column functions generated for fields read from one plain dotted path.

Mapping a batch calls, for every field and every event, an extractor and a converter: two
Python calls per value, most of the cost of a page. For the commonest field, a path of names
only (``$.client.geographicalContext.city``), this module writes the field's whole column as
one list comprehension with the lookups inlined, and, for plain text fields, the null-like
test too, so most values cost no call at all. The generated code does exactly what the
extractor and converter do (``tests/test_mapping_properties.py`` holds batches to the same
results); a value it does not handle inline is handed to the field's converter, and a value
that fails there raises as before, so the caller's careful, per-event route takes over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Column = Callable[[list[dict[str, Any]]], list[Any]]


def lookup_expression(keys: tuple[str, ...]) -> str:
    """An expression of ``e`` (a dict) worth ``e[k1][k2]...`` or None where the data stops."""
    expression = f"e.get({keys[0]!r})"
    for depth, key in enumerate(keys[1:], start=1):
        x = f"_x{depth}"
        expression = f"({x}.get({key!r}) if ({x} := {expression}).__class__ is dict else None)"
    return expression


def make_column(
    keys: tuple[str, ...], convert: Callable[[Any], Any], nulls: frozenset[str], text: bool
) -> Column:
    """The column of a field read from ``keys`` and converted by ``convert``.

    ``text`` says the converter is the plain text one: a string is kept unless it is null-like.
    """
    value = lookup_expression(keys)
    if text:
        item = (
            f"(None if _v in nulls else _v) if (_v := {value}).__class__ is str "
            "else (None if _v is None else convert(_v))"
        )
    else:
        item = f"None if (_v := {value}) is None else convert(_v)"
    source = f"def column(events):\n    return [{item} for e in events]\n"
    namespace: dict[str, Any] = {"convert": convert, "nulls": nulls}
    exec(compile(source, f"<column {'.'.join(keys)}>", "exec"), namespace)  # noqa: S102
    column: Column = namespace["column"]
    return column

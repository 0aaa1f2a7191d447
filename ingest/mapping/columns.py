"""Whole-column functions generated for fields read from one plain dotted path.

Mapping a batch calls, for every field and every event, an extractor and a converter: two
Python calls per value, most of the cost of a page. For the commonest field, a path of names
only (``$.client.geographicalContext.city``), this module writes the field's whole column as
one list comprehension with the lookup inlined, and, for plain text fields, the null-like
test too, so most values cost no call at all. The comprehension starts from the values at
the path's parent (``$.client.geographicalContext``) for every event, which ``Prefixes``
walks once per batch for all the fields below it. The generated code does exactly what the
extractor and converter do (``tests/test_mapping_properties.py`` holds batches to the same
results); a value it does not handle inline is handed to the field's converter, and a value
that fails there raises as before, so the caller's careful, per-event route takes over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Column = Callable[[list[Any]], list[Any]]


class Prefixes:
    """For a batch of events, the value at each key prefix for every event (None where the
    data stops), each prefix walked once however many fields read below it."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._known: dict[tuple[str, ...], list[Any]] = {(): events}

    def __call__(self, keys: tuple[str, ...]) -> list[Any]:
        known = self._known.get(keys)
        if known is None:
            last = keys[-1]
            known = [p.get(last) if p.__class__ is dict else None for p in self(keys[:-1])]
            self._known[keys] = known
        return known


def make_column(
    keys: tuple[str, ...], convert: Callable[[Any], Any], nulls: frozenset[str], text: bool
) -> Column:
    """The column of a field read from ``keys`` and converted by ``convert``, as a function
    of the values at ``keys[:-1]`` (``Prefixes``).

    ``text`` says the converter is the plain text one: a string is kept unless it is null-like.
    """
    value = f"(_b.get({keys[-1]!r}) if _b.__class__ is dict else None)"
    if text:
        item = (
            f"(None if _v in nulls else _v) if (_v := {value}).__class__ is str "
            "else (None if _v is None else convert(_v))"
        )
    else:
        item = f"None if (_v := {value}) is None else convert(_v)"
    source = f"def column(bases):\n    return [{item} for _b in bases]\n"
    namespace: dict[str, Any] = {"convert": convert, "nulls": nulls}
    exec(compile(source, f"<column {'.'.join(keys)}>", "exec"), namespace)  # noqa: S102
    column: Column = namespace["column"]
    return column

"""Whole-column functions for the commonest shapes of field: one plain dotted path, a
filtered path, the first of several plain paths.

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

Two more shapes get a whole-column function (``Whole``, a function of the batch's
``Prefixes``): a field read through a filter, ``$.target[?(@.type == 'User')].id``, whose
events' items ``Prefixes.groups`` sorts by the filter's key once for every field that filters
the same list (eight fields read ``target``), and a field read from the first of several
plain paths that holds a usable value (``paths = [...]``), from the paths' columns. They too
give what the extractor and converter give (``tests/test_mapping_fast_columns.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Column = Callable[[list[Any]], list[Any]]
Groups = dict[str, list[dict[str, Any]]]


class Prefixes:
    """For a batch of events, the value at each key prefix for every event (None where the
    data stops), each prefix walked once however many fields read below it; and, for the
    filtered paths (``$.target[?(@.type == 'User')].id``), each event's items grouped by the
    filter's key, grouped once however many fields filter them."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._known: dict[tuple[str, ...], list[Any]] = {(): events}
        self._groups: dict[tuple[tuple[str, ...], str], list[Groups | None]] = {}

    def groups(self, keys: tuple[str, ...], key: str) -> list[Groups | None]:
        """For every event, the items of the list (or the member values of the object) at
        ``keys`` that are objects whose ``key`` is a string, by that string, in their order;
        None where the value there is neither a list nor an object."""
        known = self._groups.get((keys, key))
        if known is None:
            known = [_grouped(base, key) for base in self(keys)]
            self._groups[(keys, key)] = known
        return known

    def __call__(self, keys: tuple[str, ...]) -> list[Any]:
        known = self._known.get(keys)
        if known is None:
            last = keys[-1]
            known = [p.get(last) if p.__class__ is dict else None for p in self(keys[:-1])]
            self._known[keys] = known
        return known


def _grouped(base: Any, key: str) -> Groups | None:
    items: Iterable[Any]
    if base.__class__ is list:
        items = base
    elif base.__class__ is dict:
        items = base.values()
    else:
        return None
    groups: Groups = {}
    for item in items:
        if item.__class__ is dict and (found := item.get(key)).__class__ is str:
            if found in groups:
                groups[found].append(item)
            else:
                groups[found] = [item]
    return groups


Whole = Callable[[Prefixes], list[Any]]


def filtered_column(
    where: tuple[tuple[str, ...], str, str, Callable[[Any], Any]],
    convert: Callable[[Any], Any],
    nulls: frozenset[str],
) -> Whole:
    """The column of a field read from ``$.a[?(@.key == 'text')].b`` (its first usable
    match, as its extractor finds it), from the batch's grouped items."""
    keys, key, equals, tail = where

    def first(groups: Groups | None) -> Any:
        if groups is None:
            return None
        for item in groups.get(equals, ()):
            value = tail(item)
            if value is None or (value.__class__ is str and value in nulls):
                continue
            return value
        return None

    def column(prefixes: Prefixes) -> list[Any]:
        found = [first(groups) for groups in prefixes.groups(keys, key)]
        return [None if value is None else convert(value) for value in found]

    return column


def first_present_column(
    paths: tuple[tuple[str, ...], ...], convert: Callable[[Any], Any], nulls: frozenset[str]
) -> Whole:
    """The column of a field read from the first of several plain dotted paths that holds a
    usable value (not null, not null-like, not an empty list), as its extractor finds it."""

    def first(values: tuple[Any, ...]) -> Any:
        for value in values:
            if value is None or (value.__class__ is str and value in nulls):
                continue
            if value.__class__ is list and not value:
                continue
            return value
        return None

    def column(prefixes: Prefixes) -> list[Any]:
        columns = [prefixes(keys) for keys in paths]
        found = [first(values) for values in zip(*columns, strict=True)]
        return [None if value is None else convert(value) for value in found]

    return column


def make_column(
    keys: tuple[str, ...],
    convert: Callable[[Any], Any],
    nulls: frozenset[str],
    text: bool,
    coerce: Callable[[Any], Any] | None = None,
) -> Column:
    """The column of a field read from ``keys`` and converted by ``convert``, as a function
    of the values at ``keys[:-1]`` (``Prefixes``).

    ``text`` says the converter is the plain text one: a string is kept unless it is null-like.
    ``coerce`` says the converter is "null-like strings are NULL, else ``coerce``" (a plain
    field of another type), which the column then does inline.
    """
    value = f"(_b.get({keys[-1]!r}) if _b.__class__ is dict else None)"
    if text:
        item = (
            f"(None if _v in nulls else _v) if (_v := {value}).__class__ is str "
            "else (None if _v is None else convert(_v))"
        )
    elif coerce is not None:
        item = (
            f"None if (_v := {value}) is None "
            "else (None if _v.__class__ is str and _v in nulls else coerce(_v))"
        )
    else:
        item = f"None if (_v := {value}) is None else convert(_v)"
    source = f"def column(bases):\n    return [{item} for _b in bases]\n"
    namespace: dict[str, Any] = {"convert": convert, "nulls": nulls, "coerce": coerce}
    exec(compile(source, f"<column {'.'.join(keys)}>", "exec"), namespace)  # noqa: S102
    column: Column = namespace["column"]
    return column

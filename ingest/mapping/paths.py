"""JSONPath compilation.

Every path is parsed once with jsonpath-ng (so the syntax, and its errors, are jsonpath-ng's).
The parsed tree is then compiled into plain dict and list lookups whenever it is made only of
names, single indexes, ``[*]`` and the common target filter ``[?(@.key == 'text')]``; anything
else (slices, ``..``, unions, other filters) is evaluated by jsonpath-ng itself. Both give the
same matches in the same order.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.filter import Expression, Filter
from jsonpath_ng.ext.parser import parse as jsonpath_parse
from jsonpath_ng.jsonpath import Child, Fields, Index, JSONPath, Root, This, Wildcard

from ingest.mapping.types import Invalid

MISSING: Any = object()
"""What a native getter returns where the data has no such member (a JSON null is ``None``)."""


class PathError(ValueError):
    """The text is not a JSONPath this engine accepts."""


@dataclass(frozen=True)
class _Each:
    """``[*]``: every element of an array (or every member value of an object)."""


@dataclass(frozen=True)
class _Where:
    """``[?(@.key == 'text')]``: the elements that are objects whose ``key`` is ``text``."""

    key: str
    equals: str


_Step = str | int | _Each | _Where
Getter = Callable[[Any], Any]


@dataclass(frozen=True)
class CompiledPath:
    """A path ready to run.

    ``get_one`` is for singular paths (names and indexes only): the value or ``None``.
    ``get_all`` gives every match in document order (a singular path gives zero or one).
    ``first(nulls)`` makes a getter of the first match that is neither null nor in ``nulls``.
    ``single_key`` is the name when the path is just ``$.name``; ``keys`` are the names when
    the path is made of names only (``$.a.b.c``). ``where`` describes the common filtered
    shape ``$.a.b[?(@.key == 'text')].c...`` when its part before the filter is names only:
    (those names, key, text, the getter of the rest from a matching item).
    """

    text: str
    singular: bool
    native: bool
    get_one: Getter
    get_all: Callable[[Any], list[Any]]
    first: Callable[[frozenset[str]], Getter]
    single_key: str | None = None
    keys: tuple[str, ...] | None = None
    where: tuple[tuple[str, ...], str, str, Getter] | None = None


@lru_cache(maxsize=1024)
def compile_path(text: str) -> CompiledPath:
    """Parse and compile ``text``; raise ``PathError`` with a one-line reason when it is bad.

    Results are cached: validation and compilation of one file share the parse.
    """
    if not isinstance(text, str) or not text.strip().startswith("$"):
        raise PathError(f"JSONPath must start with '$': {text!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tree = jsonpath_parse(text)
        except JSONPathError as err:
            raise PathError(f"bad JSONPath {text!r}: {err}") from None
        except Exception as err:  # the parser has other failure modes on odd input
            raise PathError(f"bad JSONPath {text!r}: {type(err).__name__}: {err}") from None
    for warning in caught:
        if issubclass(warning.category, DeprecationWarning):
            raise PathError(f"deprecated JSONPath syntax in {text!r}: {warning.message}")
    steps = _flatten(tree)
    if steps is None:
        return _fallback(text, tree)
    return _native(text, steps)


def _plain_field(node: Any) -> str | None:
    """The name of a one-name ``Fields`` node, else None."""
    if (
        isinstance(node, Fields)
        and len(node.fields) == 1
        and not getattr(node, "_deprecated_wildcard_use", False)
    ):
        return str(node.fields[0])
    return None


def _flatten(node: JSONPath) -> list[_Step] | None:
    """The steps of a path rooted at ``$``, or None when it needs jsonpath-ng."""
    if isinstance(node, Root):
        return []
    if isinstance(node, Child):
        left = _flatten(node.left)
        right = _relative(node.right)
        if left is None or right is None:
            return None
        return left + right
    return None


def _relative(node: JSONPath) -> list[_Step] | None:
    if isinstance(node, Child):
        left = _relative(node.left)
        right = _relative(node.right)
        return None if left is None or right is None else left + right
    name = _plain_field(node)
    if name is not None:
        return [name]
    if isinstance(node, Index) and len(node.indices) == 1:
        return [int(node.indices[0])]
    if isinstance(node, Wildcard):
        return [_Each()]
    if isinstance(node, Filter) and len(node.expressions) == 1:
        return _where(node.expressions[0])
    return None


def _where(expression: Any) -> list[_Step] | None:
    if not isinstance(expression, Expression) or expression.op != "==":
        return None
    if not isinstance(expression.value, str):
        return None
    target = expression.target
    if isinstance(target, Child) and isinstance(target.left, This):
        target = target.right
    key = _plain_field(target)
    if key is None:
        return None
    return [_Where(key, expression.value)]


def _fallback(text: str, tree: JSONPath) -> CompiledPath:
    def get_all(data: Any) -> list[Any]:
        try:
            return [match.value for match in tree.find(data)]
        except Exception as err:  # a library error on odd data must not escape as a crash
            raise Invalid(f"JSONPath {text!r} failed: {type(err).__name__}") from None

    def first(nulls: frozenset[str]) -> Getter:
        return lambda data: _first_of(get_all(data), nulls)

    return CompiledPath(text, False, False, _no_single, get_all, first)


def _no_single(data: Any) -> Any:
    raise AssertionError("get_one is only defined for singular paths")


def _first_of(values: Iterable[Any], nulls: frozenset[str]) -> Any:
    for value in values:
        if value is None or (value.__class__ is str and value in nulls):
            continue
        return value
    return None


def _native(text: str, steps: list[_Step]) -> CompiledPath:
    get_all = _many(steps)
    split = next((i for i, step in enumerate(steps) if isinstance(step, _Each | _Where)), None)
    if split is None:
        get_one = _singular(steps, None)

        def first_single(nulls: frozenset[str]) -> Getter:
            if not nulls:
                return get_one

            def getter(data: Any) -> Any:
                value = get_one(data)
                return None if value.__class__ is str and value in nulls else value

            return getter

        key = steps[0] if len(steps) == 1 and isinstance(steps[0], str) else None
        names = tuple(s for s in steps if isinstance(s, str))
        keys = names if names and len(names) == len(steps) else None
        return CompiledPath(text, True, True, get_one, get_all, first_single, key, keys)

    rest = steps[split + 1 :]
    if any(isinstance(step, _Each | _Where) for step in rest):

        def first_nested(nulls: frozenset[str]) -> Getter:
            return lambda data: _first_of(get_all(data), nulls)

        return CompiledPath(text, False, True, _no_single, get_all, first_nested)

    # The common shape, `$.target[?(@.type == 'User')].id`: one loop that stops at the
    # first usable match, building no lists.
    prefix = _singular(steps[:split], MISSING)
    tail = _singular(rest, None)
    step = steps[split]
    key, equals = (step.key, step.equals) if isinstance(step, _Where) else (None, None)

    def first_match(nulls: frozenset[str]) -> Getter:
        def getter(data: Any) -> Any:
            base = prefix(data)
            items: Iterable[Any]
            if base.__class__ is list:
                items = base
            elif base.__class__ is dict:
                items = base.values()
            else:
                return None
            for item in items:
                if key is not None:
                    if item.__class__ is not dict:
                        continue
                    found = item.get(key)
                    if found.__class__ is not str or found != equals:
                        continue
                value = tail(item)
                if value is None or (value.__class__ is str and value in nulls):
                    continue
                return value
            return None

        return getter

    where = None
    before = steps[:split]
    if key is not None and equals is not None and all(isinstance(s, str) for s in before):
        where = (tuple(str(s) for s in before), key, equals, tail)
    return CompiledPath(text, False, True, _no_single, get_all, first_match, where=where)


def _many(steps: list[_Step]) -> Callable[[Any], list[Any]]:
    """A getter of every match, for steps that may hold ``[*]`` and filters."""
    split = next((i for i, step in enumerate(steps) if isinstance(step, _Each | _Where)), None)
    if split is None:
        lookup = _singular(steps, MISSING)

        def single(data: Any) -> list[Any]:
            value = lookup(data)
            return [] if value is MISSING else [value]

        return single
    prefix = _singular(steps[:split], MISSING)
    select = _selector(steps[split])
    rest = steps[split + 1 :]
    if any(isinstance(step, _Each | _Where) for step in rest):
        tail_many = _many(rest)

        def nested(data: Any) -> list[Any]:
            base = prefix(data)
            if base is MISSING:
                return []
            return [value for item in select(base) for value in tail_many(item)]

        return nested
    tail = _singular(rest, MISSING)
    if not rest:
        return lambda data: [] if (base := prefix(data)) is MISSING else list(select(base))

    def flat(data: Any) -> list[Any]:
        base = prefix(data)
        if base is MISSING:
            return []
        return [value for item in select(base) if (value := tail(item)) is not MISSING]

    return flat


def _selector(step: _Step) -> Callable[[Any], list[Any]]:
    if isinstance(step, _Each):

        def each(value: Any) -> list[Any]:
            if value.__class__ is list:
                return value
            if value.__class__ is dict:
                return list(value.values())
            return []

        return each

    assert isinstance(step, _Where)
    key, equals = step.key, step.equals

    def where(value: Any) -> list[Any]:
        items: Iterable[Any]
        if value.__class__ is list:
            items = value
        elif value.__class__ is dict:
            items = value.values()
        else:
            return []
        return [
            item
            for item in items
            if item.__class__ is dict
            and (found := item.get(key, MISSING)).__class__ is str
            and found == equals
        ]

    return where


def _singular(steps: list[_Step], missing: Any) -> Callable[[Any], Any]:
    """A getter for names and indexes only; returns ``missing`` where the data stops."""
    if not steps:
        return lambda data: data
    if all(isinstance(step, str) for step in steps) and len(steps) <= 4:
        return _keys(tuple(str(step) for step in steps), missing)
    path = tuple(steps)

    def walk(data: Any) -> Any:
        current = data
        for step in path:
            if step.__class__ is str:
                if current.__class__ is not dict:
                    return missing
                current = current.get(step, MISSING)
                if current is MISSING:
                    return missing
            else:
                assert isinstance(step, int)
                if current.__class__ is not list or not -len(current) <= step < len(current):
                    return missing
                current = current[step]
        return current

    return walk


def _keys(keys: tuple[str, ...], missing: Any) -> Callable[[Any], Any]:
    """Unrolled name lookups for the usual depths (one to four): the hot path of every row."""
    if len(keys) == 1:
        (a,) = keys

        def one(data: Any) -> Any:
            if data.__class__ is dict:
                return data.get(a, missing)
            return missing

        return one
    if len(keys) == 2:
        a, b = keys

        def two(data: Any) -> Any:
            if data.__class__ is dict:
                v = data.get(a)
                if v.__class__ is dict:
                    return v.get(b, missing)
            return missing

        return two
    if len(keys) == 3:
        a, b, c = keys

        def three(data: Any) -> Any:
            if data.__class__ is dict:
                v = data.get(a)
                if v.__class__ is dict:
                    v = v.get(b)
                    if v.__class__ is dict:
                        return v.get(c, missing)
            return missing

        return three
    a, b, c, d = keys

    def four(data: Any) -> Any:
        if data.__class__ is dict:
            v = data.get(a)
            if v.__class__ is dict:
                v = v.get(b)
                if v.__class__ is dict:
                    v = v.get(c)
                    if v.__class__ is dict:
                        return v.get(d, missing)
        return missing

    return four

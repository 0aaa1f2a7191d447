"""One field's work, built once from its spec: how to find the value and how to convert it.

A field's value goes through these steps, each one optional:

    source (path | paths | const | from)
      -> array  (first / all / join, when the value is a list)
      -> null_likes -> pattern -> lookup (+ lookup_field) -> values (+ values_default)
      -> type coercion            (failure: ``Invalid``; some list items failed: ``Partial``)
      -> default                  (applied by the caller when the result is NULL)

Extractors and converters are plain closures with no I/O; converters are only called on
non-null values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.mapping.columns import (
    Column,
    Whole,
    filtered_column,
    first_present_column,
    make_column,
)
from ingest.mapping.lookups import LookupTable
from ingest.mapping.options import StructMember
from ingest.mapping.paths import CompiledPath, compile_path
from ingest.mapping.spec import FieldSpec
from ingest.mapping.types import (
    COERCERS,
    Invalid,
    Partial,
    is_list_type,
    item_type,
    show,
    to_string,
)

Extractor = Callable[[dict[str, Any]], Any]
Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class FieldPlan:
    """A compiled field. ``extract`` is None for a derived field (``source_field`` is set)."""

    name: str
    type: str
    required: bool
    default: Any
    source_field: str | None
    extract: Extractor | None
    convert: Converter
    origin: str
    members: tuple[tuple[str, str], ...] = ()
    gate_field: str | None = None
    gate_values: frozenset[str] | None = None
    # extract and convert over a whole batch, where the path allows it (see columns.py): a
    # function of the values at ``column_parent`` for every event
    column: Column | None = None
    column_parent: tuple[str, ...] = ()
    # the same over a whole batch for a filtered path or several plain paths: a function of
    # the batch's ``Prefixes``
    whole: Whole | None = None

    def gate_open(self, value: Any) -> bool:
        """Whether the gate field's value lets this field through (``when``).

        Without ``in`` (``gate_values`` None) any value does; NULL never does.
        """
        if value is None:
            return False
        if self.gate_values is None:
            return True
        key = _key(value)
        return key is not None and key in self.gate_values


def build_field(spec: FieldSpec, lookups: Mapping[str, LookupTable]) -> FieldPlan:
    """Compile one validated field."""
    table = lookups[spec.lookup].entries if spec.lookup is not None else None
    convert = _converter(spec, table)
    plain = spec.path is not None and spec.source_field is None
    keys = compile_path(spec.path).keys if plain and spec.path is not None else None
    return FieldPlan(
        name=spec.name,
        type=spec.type,
        required=spec.required,
        default=spec.default,
        source_field=spec.source_field,
        extract=None if spec.source_field is not None else _extractor(spec),
        convert=convert,
        origin=_origin(spec),
        members=tuple((member.name, member.type) for member in spec.struct),
        gate_field=spec.when_field,
        gate_values=spec.when_values,
        column=_column(spec, keys, convert, table) if keys else None,
        column_parent=keys[:-1] if keys else (),
        whole=None if keys or spec.source_field is not None else _whole(spec, convert),
    )


def _column(spec: FieldSpec, keys: tuple[str, ...], convert: Converter, table: object) -> Column:
    plain = _plain(spec, table)
    text = spec.type == "string" and plain
    nulls = spec.null_likes
    # what ``_converter`` makes of a plain field of another type with null-likes
    inline = plain and bool(nulls) and not text and not is_list_type(spec.type)
    coerce = COERCERS[spec.type] if inline else None
    return make_column(keys, convert, nulls, text, coerce)


def _whole(spec: FieldSpec, convert: Converter) -> Whole | None:
    """A whole-column function where the extractor would be a filtered path's first match or
    the first usable value of several plain paths (see columns.py); None elsewhere."""
    nulls = spec.null_likes
    if spec.path is not None:
        path = compile_path(spec.path)
        if path.singular or _mode(spec) != "first" or path.where is None:
            return None
        return filtered_column(path.where, convert, nulls)
    if spec.paths and not spec.merge:
        plain = [compile_path(text).keys for text in spec.paths]
        if any(keys is None for keys in plain):
            return None
        return first_present_column(tuple(k for k in plain if k is not None), convert, nulls)
    return None


def _plain(spec: FieldSpec, table: object) -> bool:
    """No step between the path and the type: the value is only coerced (or nulled)."""
    return (
        spec.array is None
        and spec.pattern is None
        and table is None
        and spec.values is None
        and spec.values_default is None
    )


def _origin(spec: FieldSpec) -> str:
    if spec.path is not None:
        return f"from {spec.path}"
    if spec.paths:
        return f"from {' or '.join(spec.paths)}"
    if spec.source_field is not None:
        return f"derived from {spec.source_field}"
    return "constant"


def _mode(spec: FieldSpec) -> str:
    if spec.array is not None:
        return spec.array
    return "all" if is_list_type(spec.type) else "first"


def _path_getter(path: CompiledPath, mode: str, nulls: frozenset[str]) -> Extractor:
    if path.singular:
        return path.get_one
    if mode == "first":
        return path.first(nulls)
    get_all = path.get_all
    return lambda event: get_all(event) or None


def _extractor(spec: FieldSpec) -> Extractor:
    if spec.path is not None:
        return _path_getter(compile_path(spec.path), _mode(spec), spec.null_likes)
    if spec.paths and spec.merge:
        return _merged(spec)
    if spec.paths:
        getters = tuple(
            _path_getter(compile_path(text), _mode(spec), spec.null_likes) for text in spec.paths
        )
        nulls = spec.null_likes

        def first_present(event: dict[str, Any]) -> Any:
            for get in getters:
                value = get(event)
                if value is None or (value.__class__ is str and value in nulls):
                    continue
                if value.__class__ is list and not value:
                    continue
                return value
            return None

        return first_present
    const = spec.const
    return lambda event: const


def _merged(spec: FieldSpec) -> Extractor:
    """``merge = true``: the matches of every path, in order, without repeats or NULLs."""
    getters = tuple(compile_path(text).get_all for text in spec.paths)
    nulls = spec.null_likes

    def merged(event: dict[str, Any]) -> Any:
        out: list[Any] = []
        for get_all in getters:
            for match in get_all(event):
                # a path that points at an array contributes its items
                for item in match if match.__class__ is list else (match,):
                    if item is None or (item.__class__ is str and item in nulls):
                        continue
                    if item not in out:
                        out.append(item)
        return out or None

    return merged


def _key(value: Any) -> str | None:
    """How a value is looked up in ``values`` and lookup tables (their keys are strings)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return to_string(value)
    return None


def _converter(spec: FieldSpec, table: Mapping[str, Any] | None) -> Converter:
    nulls = spec.null_likes
    if is_list_type(spec.type):
        if spec.struct:
            element = _struct_converter(spec.struct, nulls)
        else:
            element = COERCERS[item_type(spec.type)]
        return _list_converter(element, nulls)

    coerce = COERCERS[spec.type]
    if _plain(spec, table):
        if not nulls:
            return coerce
        if spec.type == "string":

            def string_or_null(value: Any) -> Any:
                if value.__class__ is str:
                    return None if value in nulls else value
                return to_string(value)

            return string_or_null

        def coerce_or_null(value: Any) -> Any:
            if value.__class__ is str and value in nulls:
                return None
            return coerce(value)

        return coerce_or_null

    array, separator = spec.array, spec.separator
    regex = re.compile(spec.pattern) if spec.pattern is not None else None
    lookup_field = spec.lookup_field
    values = spec.values
    values_default = spec.values_default

    def convert(value: Any) -> Any:
        if array is not None and value.__class__ is list:
            value = _join(value, separator, nulls) if array == "join" else _first(value, nulls)
            if value is None:
                return None
        if value.__class__ is str and value in nulls:
            return None
        if regex is not None and isinstance(value, str):
            found = regex.search(value)
            value = found.group(1 if regex.groups else 0) if found is not None else None
            if value is None:  # no match, or an optional group that did not take part
                return None
        if table is not None:
            key = _key(value)
            value = table.get(key) if key is not None else None
            if lookup_field is not None:
                value = value.get(lookup_field) if isinstance(value, dict) else None
            if value is None:
                return None
        if values is not None:
            key = _key(value)
            if key is not None and key in values:
                return values[key]
            if values_default is not None:
                return values_default
        return coerce(value)

    return convert


def _first(items: list[Any], nulls: frozenset[str]) -> Any:
    for item in items:
        if item is None or (item.__class__ is str and item in nulls):
            continue
        return item
    return None


def _join(items: list[Any], separator: str, nulls: frozenset[str]) -> str | None:
    parts = [
        to_string(item)
        for item in items
        if item is not None and not (item.__class__ is str and item in nulls)
    ]
    return separator.join(parts) if parts else None


def _list_converter(element: Converter, nulls: frozenset[str]) -> Converter:
    """Convert every item; a failed item becomes NULL and is reported through ``Partial``."""
    strings = element is to_string

    def convert(value: Any) -> list[Any]:
        items = value if value.__class__ is list else [value]
        if strings:
            # The usual list[string]: items that are all strings (or null) need no call.
            out = [
                None if item is None or item in nulls else item
                for item in items
                if item is None or item.__class__ is str
            ]
            if len(out) == len(items):
                return out
        else:
            try:
                return [
                    None
                    if item is None or (item.__class__ is str and item in nulls)
                    else element(item)
                    for item in items
                ]
            except (Invalid, Partial):
                pass
        return _list_items(items, element, nulls)

    return convert


def _list_items(items: list[Any], element: Converter, nulls: frozenset[str]) -> list[Any]:
    """The careful route: convert item by item, collecting what failed."""
    out: list[Any] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        if item is None or (item.__class__ is str and item in nulls):
            out.append(None)
            continue
        try:
            out.append(element(item))
        except Invalid as err:
            out.append(None)
            problems.append(f"item {index}: {err}")
        except Partial as partial:
            out.append(partial.value)
            problems.extend(f"item {index}: {text}" for text in partial.problems)
    if problems:
        raise Partial(out, problems)
    return out


def _struct_converter(members: tuple[StructMember, ...], nulls: frozenset[str]) -> Converter:
    """Project one item (an object) onto the named members, each with its own type.

    A member whose path is one plain name and whose type is string (the usual case) is read
    and checked inline; the others go through their compiled path and coercer.
    """
    simple: list[tuple[str, str]] = []
    general: list[tuple[str, Extractor, Converter]] = []
    for member in members:
        name = compile_path(member.path).single_key
        if name is not None and member.type == "string":
            simple.append((member.name, name))
        else:
            get = _path_getter(compile_path(member.path), "first", nulls)
            general.append((member.name, get, COERCERS[member.type]))
    order = [member.name for member in members]

    def project(item: Any) -> dict[str, Any]:
        if item.__class__ is not dict:
            raise Invalid(f"expected an object, got {show(item)}")
        out: dict[str, Any] = {}
        problems: list[str] | None = None
        for name, key in simple:
            value = item.get(key)
            if value is not None and (value.__class__ is not str or value in nulls):
                try:
                    value = None if value.__class__ is str else to_string(value)
                except Invalid as err:
                    value = None
                    problems = problems or []
                    problems.append(f"{name}: {err}")
            out[name] = value
        for name, get, coerce in general:
            value = get(item)
            if value is None or (value.__class__ is str and value in nulls):
                out[name] = None
                continue
            try:
                out[name] = coerce(value)
            except Invalid as err:
                out[name] = None
                problems = problems or []
                problems.append(f"{name}: {err}")
        if general:
            out = {name: out[name] for name in order}
        if problems:
            raise Partial(out, problems)
        return out

    return project

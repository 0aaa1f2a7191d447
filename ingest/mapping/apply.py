"""Applying a compiled mapping: events in, columns (or documents) out, column by column.

A batch is mapped one field at a time over all events, so the common case is a list
comprehension per field; only a field where some value fails takes the careful, per-event
route. ``apply_event`` does the same steps row-wise for a single event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ingest.base.errors import EventRejected
from ingest.mapping.columns import Prefixes
from ingest.mapping.pipeline import FieldPlan
from ingest.mapping.types import Invalid, Partial, is_list_type, item_type, rfc3339_exact

if TYPE_CHECKING:
    from nanoarrow.c_array import CArray
    from nanoarrow.c_schema import CSchema

    from ingest.mapping.arrow import Table


# What the Arrow conversion reads of a compiled mapping (``CompiledMapping`` and its
# ``Column`` in ingest.mapping.compile, which builds on this module): protocols, so that the
# arrow runs one way, from compile to apply.
class _TypedColumn(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def doc(self) -> str: ...
    @property
    def members(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def arrow_type(self) -> CSchema: ...


class _Shape(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def columns(self) -> Sequence[_TypedColumn]: ...


@dataclass(frozen=True)
class Plan:
    """The compiled fields: in file order (the output) and in evaluation order."""

    fields: tuple[FieldPlan, ...]
    order: tuple[FieldPlan, ...]

    @cached_property
    def layout(self) -> tuple[Slot, ...]:
        """Where each field goes in a document (worked out on first use)."""
        return document_layout(self.fields)


@dataclass(frozen=True)
class MappedBatch:
    """The result of mapping a batch of events.

    ``columns`` holds one value per accepted event, in input order; ``accepted`` and
    ``rejected`` are indexes into the input; ``issues`` has one list per accepted event.
    """

    columns: dict[str, list[Any]]
    accepted: list[int]
    rejected: list[tuple[int, str]]
    issues: list[list[str]]
    # arrow_columns' answer made ahead of time: a page from the mapping process comes with
    # its Arrow columns and, of its Python columns, only those the store reads (a page's
    # values as Python objects take about four times the memory; ingest.collect.pagemap)
    arrays: tuple[CArray, ...] | None = dataclasses.field(default=None, repr=False, compare=False)

    def arrow_columns(self, mapping: _Shape) -> tuple[CArray, ...]:
        """The accepted rows' values as one Arrow array per mapping column, in column order."""
        if self.arrays is not None:
            return self.arrays
        from ingest.mapping.arrow import column

        return tuple(column(self.columns[c.name], c.type, c.members) for c in mapping.columns)

    def to_arrow(self, mapping: _Shape) -> Table:
        """The accepted rows as an Arrow table typed by the mapping's columns (an Arrow C
        stream: ``duckdb`` scans it, ``pyarrow.table(...)`` reads it)."""
        import nanoarrow as na

        from ingest.mapping.arrow import Table, batch, struct_schema

        fields = [
            na.Schema(column.arrow_type, name=column.name, metadata={"doc": column.doc})
            for column in mapping.columns
        ]
        schema = struct_schema(
            fields, metadata={"mapping": mapping.name, "mapping_version": mapping.version}
        )
        return Table(schema, [batch(schema, self.arrow_columns(mapping))])


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def apply_events(plan: Plan, events: Sequence[Any]) -> MappedBatch:
    """Map every event; never raises for bad data (bad events land in ``rejected``)."""
    objects: list[dict[str, Any]] = []
    positions: list[int] = []
    early: dict[int, str] = {}
    for index, event in enumerate(events):
        if event.__class__ is dict:
            objects.append(event)
        elif isinstance(event, Mapping):
            objects.append(dict(event))
        else:
            early[index] = f"event is not a JSON object (got {_kind(event)})"
            continue
        positions.append(index)

    issues: dict[int, list[str]] = {}
    failures: dict[int, list[str]] = {}
    values: dict[str, list[Any]] = {}
    prefixes = Prefixes(objects)
    for field in plan.order:
        if field.gate_field is None:
            values[field.name] = _map_field(field, prefixes, objects, values, issues, failures)
        else:
            values[field.name] = _map_gated(field, prefixes, objects, values, issues, failures)

    accepted_local = [j for j in range(len(objects)) if j not in failures]
    if failures:
        columns = {f.name: [values[f.name][j] for j in accepted_local] for f in plan.fields}
    else:
        columns = {f.name: values[f.name] for f in plan.fields}
    rejected = sorted(
        [*early.items(), *((positions[j], "; ".join(r)) for j, r in failures.items())]
    )
    return MappedBatch(
        columns=columns,
        accepted=[positions[j] for j in accepted_local],
        rejected=rejected,
        issues=[issues.get(j, []) for j in accepted_local],
    )


def _map_field(
    field: FieldPlan,
    prefixes: Prefixes,
    objects: list[dict[str, Any]],
    values: Mapping[str, list[Any]],
    issues: dict[int, list[str]],
    failures: dict[int, list[str]],
) -> list[Any]:
    failed: set[int] = set()

    def report(j: int, text: str) -> None:
        if field.required:
            failures.setdefault(j, []).append(f"{field.name}: {text}")
            failed.add(j)
        else:
            issues.setdefault(j, []).append(f"{field.name}: {text}")

    convert = field.convert
    extract = field.extract
    column: list[Any] | None = None
    if extract is None:
        assert field.source_field is not None
        raws = values[field.source_field]
    else:
        try:
            # The usual case, in one pass: nothing fails.
            if field.column is not None:
                column = field.column(prefixes(field.column_parent))
            elif field.whole is not None:
                column = field.whole(prefixes)
            else:
                column = [
                    None if (raw := extract(event)) is None else convert(raw) for event in objects
                ]
        except (Invalid, Partial):
            raws = []
            for j, event in enumerate(objects):
                try:
                    raws.append(extract(event))
                except Invalid as err:
                    raws.append(None)
                    report(j, str(err))
    if column is None:
        try:
            column = [None if raw is None else convert(raw) for raw in raws]
        except (Invalid, Partial):
            column = []
            for j, raw in enumerate(raws):
                if raw is None:
                    column.append(None)
                    continue
                try:
                    column.append(convert(raw))
                except Invalid as err:
                    column.append(None)
                    report(j, str(err))
                except Partial as partial:
                    column.append(partial.value)
                    for text in partial.problems:
                        issues.setdefault(j, []).append(f"{field.name}: {text}")

    if None not in column:
        return column
    default = field.default
    if default is not None:
        if isinstance(default, list):
            return [list(default) if value is None else value for value in column]
        return [default if value is None else value for value in column]
    if field.required:
        for j, value in enumerate(column):
            if value is None and j not in failed:
                reason = f"{field.name}: missing (required, {field.origin})"
                failures.setdefault(j, []).append(reason)
    return column


def _map_gated(
    field: FieldPlan,
    prefixes: Prefixes,
    objects: list[dict[str, Any]],
    values: Mapping[str, list[Any]],
    issues: dict[int, list[str]],
    failures: dict[int, list[str]],
) -> list[Any]:
    """A field with ``when``: mapped only for the events whose gate is open, NULL elsewhere.

    Shut events are not even read, so they report no issue for this field.
    """
    assert field.gate_field is not None
    gate = values[field.gate_field]
    open_at = [j for j, value in enumerate(gate) if field.gate_open(value)]
    if len(open_at) == len(objects):
        return _map_field(field, prefixes, objects, values, issues, failures)
    column: list[Any] = [None] * len(objects)
    if not open_at:
        return column
    sub_values: dict[str, list[Any]] = {}
    if field.source_field is not None:
        source = values[field.source_field]
        sub_values[field.source_field] = [source[j] for j in open_at]
    sub_issues: dict[int, list[str]] = {}
    sub_failures: dict[int, list[str]] = {}
    subset = [objects[j] for j in open_at]
    mapped = _map_field(field, Prefixes(subset), subset, sub_values, sub_issues, sub_failures)
    for k, j in enumerate(open_at):
        column[j] = mapped[k]
    for k, texts in sub_issues.items():
        issues.setdefault(open_at[k], []).extend(texts)
    for k, texts in sub_failures.items():  # gated fields are never required; kept for safety
        failures.setdefault(open_at[k], []).extend(texts)
    return column


def apply_event(plan: Plan, event: Any) -> tuple[dict[str, Any], list[str]]:
    """One event -> (row, issues); raise ``EventRejected`` with the reason when it cannot be.

    The same steps as ``apply_events``, row-wise: the tests hold the two to the same results.
    """
    if event.__class__ is not dict:
        if not isinstance(event, Mapping):
            raise EventRejected(f"event is not a JSON object (got {_kind(event)})")
        event = dict(event)
    values: dict[str, Any] = {}
    issues: list[str] = []
    reasons: list[str] = []
    for field in plan.order:
        if field.gate_field is not None and not field.gate_open(values[field.gate_field]):
            values[field.name] = None
            continue
        failed = False
        try:
            if field.extract is None:
                assert field.source_field is not None
                raw = values[field.source_field]
            else:
                raw = field.extract(event)
            value = None if raw is None else field.convert(raw)
        except Invalid as err:
            value, failed = None, True
            (reasons if field.required else issues).append(f"{field.name}: {err}")
        except Partial as partial:
            value = partial.value
            issues.extend(f"{field.name}: {text}" for text in partial.problems)
        if value is None:
            default = field.default
            if default is not None:
                value = list(default) if isinstance(default, list) else default
            elif field.required and not failed:
                reasons.append(f"{field.name}: missing (required, {field.origin})")
        values[field.name] = value
    if reasons:
        raise EventRejected("; ".join(reasons))
    return {field.name: values[field.name] for field in plan.fields}, issues


def event_document(plan: Plan, event: Any) -> dict[str, Any]:
    """One event as a nested, JSON-ready object: dotted names nest, NULLs are left out."""
    row, _ = apply_event(plan, event)
    document: dict[str, Any] = {}
    for name, parents, leaf, jsonable in plan.layout:
        value = row[name]
        if value is None:
            continue
        target = document
        for key, is_array in parents:
            # a word ending in [] is a one-item array holding the object
            target = target.setdefault(key, [{}])[0] if is_array else target.setdefault(key, {})
        target[leaf] = value if jsonable is None else jsonable(value)
    return document


Slot = tuple[str, tuple[tuple[str, bool], ...], str, Callable[[Any], Any] | None]


def document_layout(fields: Sequence[FieldPlan]) -> tuple[Slot, ...]:
    """Where each field goes in a document and how its value becomes JSON, worked out once.

    Each slot is (field name, parents as (key, one-item array?), leaf key, converter or None
    when the typed value is already JSON-ready).
    """
    slots: list[Slot] = []
    for field in fields:
        *parts, leaf = field.name.split(".")
        parents = tuple(
            (part[:-2], True) if part.endswith("[]") else (part, False) for part in parts
        )
        slots.append((field.name, parents, leaf, _converter_for(field)))
    return tuple(slots)


_NEEDS_CONVERSION = frozenset({"timestamp", "json"})


def _converter_for(field: FieldPlan) -> Callable[[Any], Any] | None:
    if field.members:
        members = dict(field.members)

        def struct_items(value: list[Any]) -> list[Any]:
            return [
                None
                if item is None
                else {
                    key: _jsonable(members[key], member)
                    for key, member in item.items()
                    if member is not None  # NULL members are left out, like NULL fields
                }
                for item in value
            ]

        return struct_items
    inner = item_type(field.type)
    if inner not in _NEEDS_CONVERSION:
        return None
    if is_list_type(field.type):
        return lambda value: [_jsonable(inner, item) for item in value]
    return lambda value: _jsonable(inner, value)


def _jsonable(type_name: str, value: Any) -> Any:
    """A typed value as JSON: timestamps as RFC 3339 text, ``json`` text as the value itself."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return rfc3339_exact(value)
    if type_name == "json":
        return orjson.loads(value)
    return value

"""Mapped events as JSON objects, for ``oktaduck map`` and the exports.

A ``columns`` mapping gives a flat object with every column, NULLs included, in column
order (a stable shape for comparisons); a ``document`` mapping gives its nested object with
NULLs left out (the usual shape of ECS and OCSF documents).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ingest.base.errors import EventRejected
from ingest.mapping.apply import _jsonable
from ingest.mapping.compile import CompiledMapping


def render(mapping: CompiledMapping, event: Any) -> tuple[dict[str, Any], list[str]]:
    """(JSON-ready object, issues) for one event; raises ``EventRejected``."""
    row, issues = mapping.apply(event)
    if mapping.output == "document":
        return mapping.apply_document(event), issues
    out: dict[str, Any] = {}
    for column in mapping.columns:
        value = row[column.name]
        if column.members and value is not None:
            members = dict(column.members)
            value = [
                None if item is None else {k: _jsonable(members[k], v) for k, v in item.items()}
                for item in value
            ]
        elif column.type.startswith("list[") and value is not None:
            inner = column.type[5:-1]
            value = [_jsonable(inner, item) for item in value]
        else:
            value = _jsonable(column.type, value)
        out[column.name] = value
    return out, issues


@dataclass(frozen=True)
class Parsed:
    """One input item: its position (line number, or index in a JSON array) and the event,
    or why it could not be read."""

    where: str
    event: Any = None
    error: str | None = None


def read_events(lines: Iterable[bytes]) -> Iterator[Parsed]:
    """Events from NDJSON lines, or from one JSON array spread over any number of lines."""
    iterator = iter(lines)
    first: bytes | None = None
    number = 0
    for raw in iterator:
        number += 1
        if raw.strip():
            first = raw
            break
    if first is None:
        return
    if first.lstrip().startswith(b"["):
        body = first + b"".join(iterator)
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            yield Parsed("input", error=f"not a JSON array: {err}")
            return
        for index, item in enumerate(items):
            yield Parsed(f"item {index}", event=item)
        return
    yield _line(number, first)
    for raw in iterator:
        number += 1
        if raw.strip():
            yield _line(number, raw)


def _line(number: int, raw: bytes) -> Parsed:
    try:
        return Parsed(f"line {number}", event=orjson.loads(raw))
    except orjson.JSONDecodeError as err:
        return Parsed(f"line {number}", error=f"not JSON: {err}")


@dataclass
class MapCounts:
    mapped: int = 0
    rejected: int = 0
    unreadable: int = 0


def map_stream(mapping: CompiledMapping, lines: Iterable[bytes], out: Any, err: Any) -> MapCounts:
    """Write one mapped JSON object per line to ``out`` (binary); report bad input on ``err``
    (text), one line each, and keep going."""
    counts = MapCounts()
    for item in read_events(lines):
        if item.error is not None:
            counts.unreadable += 1
            err.write(f"{item.where}: skipped: {item.error}\n")
            continue
        try:
            doc, issues = render(mapping, item.event)
        except EventRejected as reason:
            counts.rejected += 1
            err.write(f"{item.where}{_uuid(item.event)}: rejected: {reason}\n")
            continue
        for issue in issues:
            err.write(f"{item.where}{_uuid(item.event)}: warning: {issue}\n")
        out.write(orjson.dumps(doc) + b"\n")
        counts.mapped += 1
    return counts


def _uuid(event: Any) -> str:
    uuid = event.get("uuid") if isinstance(event, dict) else None
    return f" ({uuid})" if isinstance(uuid, str) else ""

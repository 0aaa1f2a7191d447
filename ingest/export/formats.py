"""Export formats: stored events as one JSON object per line (without the newline).

- ``raw``: the Okta event as received (stored in ``events.raw``, its exact bytes); an event
  whose text has line breaks (only ever whitespace between its tokens) loses them, so that
  it stays one line.
- ``normalized``: the row of ``events`` (the normalized columns plus ``source``).
- ``ecs`` / ``ocsf``: the raw event through ``mappings/okta/ecs.toml`` / ``ocsf.toml``.

Keys keep a stable order (the mapping's field order, or Okta's for raw); timestamps are UTC
with a ``Z``. ``fields`` (from the sink's config) are added at the top level of every object,
e.g. ``{"org": "acme"}`` for multi-org SIEMs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ingest.base.errors import ConfigError, EventRejected
from ingest.base.tablewriter import to_json_value
from ingest.mapping import CompiledMapping, default_mapping_dir, load_mapping

FORMATS = ("raw", "normalized", "ecs", "ocsf")


@dataclass(frozen=True)
class Stored:
    """What the exporter reads of one stored event."""

    seq: int
    raw: str
    row: Mapping[str, Any] | None = None  # normalized columns, for the normalized format


Formatter = Callable[[Stored], bytes | None]


def columns_for(fmt: str, normalized: CompiledMapping) -> list[str]:
    """The ``events`` columns a format needs besides ``ingest_seq`` and ``raw``."""
    if fmt == "normalized":
        return ["source", *(c.name for c in normalized.columns)]
    return []


def formatter(fmt: str, fields: Mapping[str, Any] | None = None) -> Formatter:
    """A function turning one stored event into its NDJSON line (None: cannot be mapped)."""
    extra = dict(fields or {})
    if fmt == "raw":
        if not extra:
            return lambda stored: one_line(stored.raw.encode())
        return lambda stored: orjson.dumps({**orjson.loads(stored.raw), **extra})
    if fmt == "normalized":

        def normalized(stored: Stored) -> bytes:
            row = {k: to_json_value(v) for k, v in (stored.row or {}).items()}
            return orjson.dumps({**row, **extra})

        return normalized
    if fmt in ("ecs", "ocsf"):
        mapping = load_mapping(default_mapping_dir() / "okta" / f"{fmt}.toml")

        def document(stored: Stored) -> bytes | None:
            try:
                doc = mapping.apply_document(orjson.loads(stored.raw))
            except EventRejected:
                return None
            return orjson.dumps({**doc, **extra})

        return document
    raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def one_line(text: bytes) -> bytes:
    """A stored JSON text without its line breaks. A JSON string cannot hold a raw CR or LF
    (they are escaped), so any in a stored text is whitespace between tokens: dropping it
    keeps the same JSON, in one line."""
    if b"\n" in text or b"\r" in text:
        return text.replace(b"\r", b"").replace(b"\n", b"")
    return text


def format_batch(fmt: Formatter, batch: Sequence[Stored]) -> list[bytes]:
    """Lines for a batch; events the format cannot map are left out (they are stored as
    events only when the normalized mapping accepted them, so this is rare)."""
    lines = []
    for stored in batch:
        line = fmt(stored)
        if line is not None:
            lines.append(line)
    return lines

"""Write query results as a table, JSON, NDJSON or CSV, streaming row by row."""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any, Protocol

import orjson

FORMATS = ("table", "json", "ndjson", "csv")


class TextSink(Protocol):
    """Anything with ``write(str)``: a text file, a socket adapter, an in-memory buffer."""

    def write(self, text: str, /) -> object: ...


_MAX_CELL = 60


def default_format(stream: IO[str]) -> str:
    """``table`` on a terminal, NDJSON when piped."""
    return "table" if stream.isatty() else "ndjson"


def to_json_value(value: Any, is_json: bool = False) -> Any:
    if value is None:
        return None
    if is_json and isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [to_json_value(v, False) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v, False) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    value = to_json_value(value, False)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def write_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    fmt: str,
    out: TextSink | None = None,
    json_columns: frozenset[str] = frozenset(),
) -> int:
    """Write ``rows`` in ``fmt``; return the number of rows written."""
    out = out or sys.stdout
    flags = [c in json_columns for c in columns]
    count = 0
    if fmt in ("json", "ndjson"):
        if fmt == "json":
            out.write("[")
        for row in rows:
            doc = {c: to_json_value(v, j) for c, v, j in zip(columns, row, flags, strict=True)}
            line = orjson.dumps(doc).decode()
            if fmt == "json":
                out.write(("," if count else "") + "\n" + line)
            else:
                out.write(line + "\n")
            count += 1
        if fmt == "json":
            out.write("\n]\n" if count else "]\n")
        return count
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(v) for v in row])
            count += 1
        return count
    if fmt == "table":
        return _write_table(columns, rows, out)
    raise ValueError(f"unknown format {fmt!r}")


def _write_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextSink) -> int:
    cells = [[_clip(_text(v)) for v in row] for row in rows]
    names = [_clip(c) for c in columns]
    widths = [len(c) for c in names]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    out.write("  ".join(c.ljust(w) for c, w in zip(names, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(f"({len(cells)} row{'s' if len(cells) != 1 else ''})\n")
    return len(cells)


def _clip(text: str) -> str:
    text = visible(text.replace("\n", " "))
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


# C0 and C1 control characters and DEL: what a terminal acts on instead of showing
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` for a terminal, every control character written as ``\\xNN``: event fields
    are whatever a client sent Okta (a failed sign-in's user name is what was typed), and an
    ESC or CSI in them would otherwise move the cursor, recolour or rewrite what an analyst
    sees."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)

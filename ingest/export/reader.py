"""Read stored events in ingest order, in bounded batches, for the exporters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import duckdb

from ingest.export.formats import Stored


def _select(columns: Sequence[str]) -> str:
    extra = "".join(f', "{c}"' for c in columns)
    return f"SELECT ingest_seq, raw{extra} FROM events"


def _stored(rows: list[tuple[Any, ...]], columns: Sequence[str]) -> list[Stored]:
    if not columns:
        return [Stored(r[0], r[1]) for r in rows]
    return [Stored(r[0], r[1], dict(zip(columns, r[2:], strict=True))) for r in rows]


def read_after(
    con: duckdb.DuckDBPyConnection, after_seq: int, limit: int, columns: Sequence[str] = ()
) -> list[Stored]:
    """Up to ``limit`` events with ``ingest_seq > after_seq``, in ingest order."""
    rows = con.execute(
        _select(columns) + " WHERE ingest_seq > $after ORDER BY ingest_seq LIMIT $n",
        {"after": after_seq, "n": limit},
    ).fetchall()
    return _stored(rows, columns)


def read_range(
    con: duckdb.DuckDBPyConnection,
    since: datetime,
    until: datetime,
    batch: int,
    columns: Sequence[str] = (),
    where: str = "",
    params: dict[str, Any] | None = None,
) -> Iterator[list[Stored]]:
    """Events published in ``[since, until)`` (plus an optional SQL condition), in ingest
    order, ``batch`` at a time."""
    after = -1
    condition = f" AND ({where})" if where else ""
    while True:
        rows = con.execute(
            _select(columns)
            + " WHERE published >= $since AND published < $until AND ingest_seq > $after"
            + condition
            + " ORDER BY ingest_seq LIMIT $n",
            {**(params or {}), "since": since, "until": until, "after": after, "n": batch},
        ).fetchall()
        if not rows:
            return
        yield _stored(rows, columns)
        after = rows[-1][0]


def last_seq(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(ingest_seq), 0) FROM events").fetchall()[0][0])


def seq_before(con: duckdb.DuckDBPyConnection, published: datetime) -> int:
    """The cursor from which every event published at or after ``published`` is exported."""
    row = con.execute(
        "SELECT min(ingest_seq) FROM events WHERE published >= $t", {"t": published}
    ).fetchall()
    first = row[0][0]
    return int(first) - 1 if first is not None else last_seq(con)

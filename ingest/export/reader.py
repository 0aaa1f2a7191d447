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
    """Up to ``limit`` events with ``ingest_seq > after_seq``, in ingest order.

    Sequence numbers are dense but for small gaps, so the query asks for the range
    ``(after, after + limit]``: DuckDB then reads ``raw`` for those rows only (an ``ORDER BY
    ... LIMIT`` over everything after the cursor would decompress every remaining event).
    Across a larger gap it jumps to the next stored number.
    """
    query = _select(columns) + (
        " WHERE ingest_seq > $after AND ingest_seq <= $upto ORDER BY ingest_seq"
    )
    while True:
        rows = con.execute(query, {"after": after_seq, "upto": after_seq + limit}).fetchall()
        if rows:
            return _stored(rows, columns)
        nxt = con.execute(
            "SELECT min(ingest_seq) FROM events WHERE ingest_seq > $after", {"after": after_seq}
        ).fetchall()[0][0]
        if nxt is None:
            return []
        after_seq = int(nxt) - 1


def read_range(
    con: duckdb.DuckDBPyConnection,
    since: datetime,
    until: datetime,
    batch: int,
    columns: Sequence[str] = (),
    where: str = "",
    params: dict[str, Any] | None = None,
) -> Iterator[list[Stored]]:
    """Events published in ``[since, until)`` (plus an optional SQL condition), ``batch`` at
    a time, streamed from one query in storage order (which is ingest order: rows are
    appended in sequence and DuckDB preserves insertion order)."""
    condition = f" AND ({where})" if where else ""
    cur = con.execute(
        _select(columns) + " WHERE published >= $since AND published < $until" + condition,
        {**(params or {}), "since": since, "until": until},
    )
    while rows := cur.fetchmany(batch):
        yield _stored(rows, columns)


def last_seq(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(ingest_seq), 0) FROM events").fetchall()[0][0])


def seq_before(con: duckdb.DuckDBPyConnection, published: datetime) -> int:
    """The cursor from which every event published at or after ``published`` is exported."""
    row = con.execute(
        "SELECT min(ingest_seq) FROM events WHERE published >= $t", {"t": published}
    ).fetchall()
    first = row[0][0]
    return int(first) - 1 if first is not None else last_seq(con)

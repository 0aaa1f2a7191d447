"""Re-apply the current mapping to stored history, from ``raw``.

Rows made by another mapping version are re-mapped in batches, each batch in its own
transaction, so an interrupted run loses nothing and a rerun continues where it stopped.
Rejected events are retried too: one that now maps is stored (unless its uuid is already
there) and the reject is marked resolved; page elements that could not be decoded at all
(``raw_bytes`` set) are not, as no mapping can make them an event. Cursors are never touched.

On a lake the rows are updated in ``event_rows`` (``store.events_table``), found by the row id
the ``events`` view shows as ``ingest_seq`` (an UPDATE keeps it); a batch that loses a race
with another writer's update or delete (retention, another remap) is run again from its read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import orjson

from ingest.base.clock import Clock
from ingest.base.crashpoints import crash_point
from ingest.mapping.arrow import Table, column, repeated
from ingest.store.db import Store, registered

DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class RemapProgress:
    """Counts so far; passed to the progress callback after every batch."""

    remapped: int = 0
    moved_to_rejects: int = 0
    rejects_resolved: int = 0
    rejects_still_failing: int = 0
    total_events: int = 0
    total_rejects: int = 0


Progress = Callable[[RemapProgress], None]


def pending(store: Store) -> tuple[int, int]:
    """(events made by another mapping version, unresolved rejects from another version)."""
    con = store.con
    version = store.mapping.version
    with store._lock:
        events = con.execute(
            "SELECT count(*) FROM events WHERE mapping_version <> ?", [version]
        ).fetchall()[0][0]
        rejects = con.execute(
            "SELECT count(*) FROM rejects WHERE resolved_at IS NULL AND mapping_version <> ? "
            "AND raw_bytes IS NULL",
            [version],
        ).fetchall()[0][0]
    return int(events), int(rejects)


def remap(
    store: Store,
    clock: Clock,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    include_current: bool = False,
) -> RemapProgress:
    """Re-map every row and reject not made by the current mapping version."""
    total_events, total_rejects = pending(store)
    state = RemapProgress(total_events=total_events, total_rejects=total_rejects)
    after_seq = -1
    while True:
        done, after_seq, moved = _remap_events(store, clock.now(), batch_size, after_seq)
        if not done:
            break
        state = _bump(state, remapped=done - moved, moved_to_rejects=moved)
        if progress:
            progress(state)
    while True:
        resolved, failing, handled = _retry_rejects(store, clock.now(), batch_size)
        if not handled:
            break
        state = _bump(state, rejects_resolved=resolved, rejects_still_failing=failing)
        if progress:
            progress(state)
    return state


def _bump(state: RemapProgress, **inc: int) -> RemapProgress:
    values = {k: getattr(state, k) + v for k, v in inc.items()}
    return RemapProgress(**{**state.__dict__, **values})


def _remap_events(
    store: Store, now: datetime, batch_size: int, after_seq: int
) -> tuple[int, int, int]:
    """Re-map one batch; return (rows handled, last ingest_seq, rows moved to rejects)."""
    return store.retrying(lambda con: _remap_batch(store, con, now, batch_size, after_seq))


def _remap_batch(
    store: Store, con: duckdb.DuckDBPyConnection, now: datetime, batch_size: int, after_seq: int
) -> tuple[int, int, int]:
    mapping = store.mapping
    target = store.events_table
    # the lake's rows are found by their row id (``events`` shows it plus one as ingest_seq)
    seq = f"{target}.rowid + 1" if store.lake else f"{target}.ingest_seq"
    rows = con.execute(
        "SELECT ingest_seq, source, raw FROM events WHERE mapping_version <> $v "
        "AND ingest_seq > $after ORDER BY ingest_seq LIMIT $n",
        {"v": mapping.version, "after": after_seq, "n": batch_size},
    ).fetchall()
    if not rows:
        return 0, after_seq, 0
    events = [orjson.loads(raw) for _, _, raw in rows]
    batch = mapping.apply_batch(events)
    seqs = [rows[i][0] for i in batch.accepted]
    names = [c.name for c in mapping.columns]
    columns = dict(zip(names, batch.arrow_columns(mapping), strict=True))
    columns["ingest_seq"] = column(seqs, "int")
    columns["mapping_issues"] = column([i or None for i in batch.issues], "list[string]")
    columns["mapping_version"] = repeated(mapping.version, len(seqs), "string")
    table = Table.of(columns)
    names += ["mapping_issues", "mapping_version"]
    assignments = ", ".join(f'"{n}" = r."{n}"' for n in names)
    with registered(con, "remap_rows", table):
        con.execute(
            f"UPDATE {target} SET {assignments} FROM remap_rows r WHERE {seq} = r.ingest_seq"
        )
    for index, reason in batch.rejected:
        number, source, raw = rows[index]
        _insert_reject(con, source, events[index], raw, reason, mapping.version, now)
        con.execute(f"DELETE FROM {target} WHERE {seq} = ?", [number])
    crash_point("remap.batch")
    return len(rows), rows[-1][0], len(batch.rejected)


def _insert_reject(
    con: duckdb.DuckDBPyConnection,
    source: str,
    event: object,
    raw: str,
    reason: str,
    version: str,
    now: datetime,
) -> None:
    uuid = event.get("uuid") if isinstance(event, dict) else None
    con.execute(
        "INSERT INTO rejects (source, uuid, reason, raw_hash, raw, mapping_version, first_seen) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            source,
            uuid if isinstance(uuid, str) else None,
            reason,
            hashlib.sha256(raw.encode()).hexdigest(),
            raw,
            version,
            now,
        ],
    )


def _retry_rejects(store: Store, now: datetime, batch_size: int) -> tuple[int, int, int]:
    """Retry one batch of rejects; return (resolved, still failing, handled)."""
    return store.retrying(lambda con: _retry_batch(store, con, now, batch_size))


def _retry_batch(
    store: Store, con: duckdb.DuckDBPyConnection, now: datetime, batch_size: int
) -> tuple[int, int, int]:
    mapping = store.mapping
    rows = con.execute(
        "SELECT rowid, source, raw FROM rejects WHERE resolved_at IS NULL "
        "AND mapping_version <> $v AND raw_bytes IS NULL LIMIT $n",
        {"v": mapping.version, "n": batch_size},
    ).fetchall()
    if not rows:
        return 0, 0, 0
    events = [orjson.loads(raw) for _, _, raw in rows]
    batch = mapping.apply_batch(events)
    for index, reason in batch.rejected:
        con.execute(
            "UPDATE rejects SET reason = ?, mapping_version = ? WHERE rowid = ?",
            [reason, mapping.version, rows[index][0]],
        )
    resolved = 0
    by_source: dict[str, list[int]] = {}
    for position, index in enumerate(batch.accepted):
        by_source.setdefault(rows[index][1], []).append(position)
    for source, positions in by_source.items():
        raws = [r[2] for r in rows]
        resolved += len(store.insert_mapped(con, source, batch, positions, raws, now))
    for index in batch.accepted:
        con.execute("UPDATE rejects SET resolved_at = ? WHERE rowid = ?", [now, rows[index][0]])
    return resolved, len(batch.rejected), len(rows)

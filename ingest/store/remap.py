"""Re-apply the current mapping to stored history, from ``raw``.

Rows made by another mapping version are re-mapped in batches, each batch in its own
transaction, so an interrupted run loses nothing and a rerun continues where it stopped.
Rejected events are retried too: one that now maps is stored (unless its uuid is already
there) and the reject is marked resolved; page elements that could not be decoded at all
(``raw_bytes`` set) are not, as no mapping can make them an event. Cursors are never touched.

A batch is read, then mapped (by the poll's mapping process when ``oktaduck remap`` has more
than a batch to do: it maps the next batch while this one is written), then written: its
rows' ``mapping_version``, and only those columns whose new values differ from the stored ones
in some row of the batch (a mapping change touches a few columns, and an UPDATE of every
column costs DuckDB a delete and an insert of each row).

On a lake the rows are updated in ``event_rows`` (``store.events_table``), found by the row id
the ``events`` view shows as ``ingest_seq`` (an UPDATE keeps it); a batch whose write loses a
race with another writer's update or delete (retention, another remap) is written again (the
texts it mapped do not change; a row deleted meanwhile is not written back).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Callable, Iterator, Sequence, Sized
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import duckdb
import orjson

from ingest.base.clock import Clock
from ingest.base.crashpoints import crash_point
from ingest.mapping import MappedBatch
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


class MappedPage(Protocol):
    """What a page mapper answers for a page (``ingest.collect.pagemap.MappedPage``)."""

    @property
    def batch(self) -> MappedBatch: ...
    @property
    def raw(self) -> Sized: ...
    @property
    def uuids(self) -> Sequence[str | None]: ...
    @property
    def bad(self) -> Sequence[object]: ...


class PendingPage(Protocol):
    def result(self) -> MappedPage: ...


class PageMapper(Protocol):
    """What maps a page's body: ``ProcessMapper`` of ``ingest.collect.pagemap``, the mapping
    process a poll uses, which maps the next batch while this one is written."""

    def map_later(self, body: bytes) -> PendingPage: ...


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
    mapper: PageMapper | Sequence[PageMapper] | None = None,
) -> RemapProgress:
    """Re-map every row and reject not made by the current mapping version.

    A batch's stored texts make one page, mapped here (decoded whole by orjson, then
    ``apply_batch``) or by ``mapper``: the mapping process a poll uses (``parse_page``, then
    ``apply_batch``), which maps the next batch while this one is written; or by several,
    in turn (``_batches``: one batch more ahead than there are mappers).
    """
    total_events, total_rejects = pending(store)
    state = RemapProgress(total_events=total_events, total_rejects=total_rejects)
    for batch in _batches(store, mapper, batch_size):
        done, moved = _write_events(store, clock.now(), batch)
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


def _batches(
    store: Store, mapper: PageMapper | Sequence[PageMapper] | None, batch_size: int
) -> Iterator[_Batch]:
    """The batches to re-map, in order, each read (and handed to its mapper) while those
    before it are mapped and written: one more ahead than there are mappers, so that a
    mapper has a batch to work on while the one before it is written (with only one ahead
    per mapper, a remap with one mapper mapped and wrote by turns: 6.0 against 4.4 s for
    63,600 rows)."""
    given: list[PageMapper | None] = list(mapper) if isinstance(mapper, Sequence) else [mapper]
    mappers = given or [None]  # none given: mapped here
    turn = itertools.cycle(mappers)
    ahead: deque[_Batch] = deque()
    after: int | None = -1
    while True:
        while len(ahead) < len(mappers) + 1 and after is not None:
            batch = _read_batch(store, next(turn), batch_size, after)
            if batch is None:
                after = None  # none left: what is ahead is all there is
            else:
                ahead.append(batch)
                after = batch.rows[-1][0]
        if not ahead:
            return
        yield ahead.popleft()


def _bump(state: RemapProgress, **inc: int) -> RemapProgress:
    values = {k: getattr(state, k) + v for k, v in inc.items()}
    return RemapProgress(**{**state.__dict__, **values})


@dataclass(frozen=True)
class _Batch:
    """Stored rows to map again (ingest_seq, source, raw) and their page, mapped now or soon
    (None: mapped here)."""

    rows: list[tuple[int, str, str]]
    body: bytes
    page: PendingPage | None


def _read_batch(
    store: Store, mapper: PageMapper | None, batch_size: int, after_seq: int
) -> _Batch | None:
    """The next rows made by another mapping version after ``after_seq``, handed to the
    mapper as one page (None: there are none)."""
    version = store.mapping.version
    with store._lock:
        # the batch's range first, from two narrow columns; then its texts, read for those
        # rows only (ordering the whole table's ``raw`` to keep a batch of it decompressed
        # every text after ``after_seq``: a third of the time of a 5000-row batch)
        seqs = store.con.execute(
            "SELECT ingest_seq FROM events WHERE mapping_version <> $v AND ingest_seq > $after "
            "ORDER BY ingest_seq LIMIT $n",
            {"v": version, "after": after_seq, "n": batch_size},
        ).fetchall()
        if not seqs:
            return None
        rows = store.con.execute(
            "SELECT ingest_seq, source, raw::VARCHAR FROM events WHERE mapping_version <> $v "
            "AND ingest_seq BETWEEN $lo AND $hi ORDER BY ingest_seq",
            {"v": version, "lo": seqs[0][0], "hi": seqs[-1][0]},
        ).fetchall()
    body = b"[" + b",".join(raw.encode() for _, _, raw in rows) + b"]"
    return _Batch(rows, body, None if mapper is None else mapper.map_later(body))


def _write_events(store: Store, now: datetime, batch: _Batch) -> tuple[int, int]:
    """Write one mapped batch in its own transaction; return (rows handled, rows moved to
    rejects)."""
    mapped: MappedBatch | None = None
    uuids: list[str | None] = []
    if batch.page is not None:
        page = batch.page.result()
        if not page.bad and len(page.raw) == len(batch.rows):
            mapped, uuids = page.batch, list(page.uuids)
    if mapped is None:  # here: the texts were parsed when stored, so the page decodes whole
        try:
            events = orjson.loads(batch.body)
        except orjson.JSONDecodeError:  # not expected: each on its own then
            events = [orjson.loads(raw) for _, _, raw in batch.rows]
        mapped = store.mapping.apply_batch(events)
        uuids = [_uuid(event) for event in events]
    done = mapped
    return store.retrying(lambda con: _write_batch(store, con, now, batch.rows, done, uuids))


def _uuid(event: object) -> str | None:
    uuid = event.get("uuid") if isinstance(event, dict) else None
    return uuid if isinstance(uuid, str) else None


def _write_batch(
    store: Store,
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    rows: list[tuple[int, str, str]],
    batch: MappedBatch,
    uuids: list[str | None],
) -> tuple[int, int]:
    mapping = store.mapping
    target = store.events_table
    # the lake's rows are found by their row id (``events`` shows it plus one as ingest_seq)
    seq = f"{target}.rowid + 1" if store.lake else f"{target}.ingest_seq"
    seqs = [rows[i][0] for i in batch.accepted]
    names = [c.name for c in mapping.columns]
    columns = dict(zip(names, batch.arrow_columns(mapping), strict=True))
    columns["ingest_seq"] = column(seqs, "int")
    columns["mapping_issues"] = column([i or None for i in batch.issues], "list[string]")
    columns["mapping_version"] = repeated(mapping.version, len(seqs), "string")
    table = Table.of(columns)
    names.append("mapping_issues")
    with registered(con, "remap_rows", table):
        # the batch's range of ingest_seq lets the scans skip every other row group (a
        # join alone reads the whole table's ingest_seq for every batch)
        span = {"lo": rows[0][0], "hi": rows[-1][0]}
        changed = _changed_columns(con, target, seq, names, span) if seqs else []
        assignments = ", ".join(f'"{n}" = r."{n}"' for n in [*changed, "mapping_version"])
        con.execute(
            f"UPDATE {target} SET {assignments} FROM remap_rows r "
            f"WHERE {seq} = r.ingest_seq AND {seq} BETWEEN $lo AND $hi",
            span,
        )
    for index, reason in batch.rejected:
        number, source, raw = rows[index]
        _insert_reject(con, source, uuids[index], raw, reason, mapping.version, now)
        con.execute(f"DELETE FROM {target} WHERE {seq} = ?", [number])
    crash_point("remap.batch")
    return len(rows), len(batch.rejected)


def _changed_columns(
    con: duckdb.DuckDBPyConnection, target: str, seq: str, names: list[str], span: dict[str, int]
) -> list[str]:
    """The columns of ``names`` whose new value (``remap_rows``) differs from the stored one
    in at least one row of the batch: only those are updated. A mapping change touches a
    few columns; an UPDATE of all of them costs some 60x one of ``mapping_version`` alone
    (DuckDB rewrites a row whose list column is updated as a delete and an insert), and
    the comparison, one join of the batch, costs a tenth of that. Each new value is compared
    as the UPDATE would store it, cast to its column's type (a field whose type the mapping
    changed keeps its column's old type, and DuckDB does not compare a VARCHAR with a
    BIGINT)."""
    types = dict(
        con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {target})").fetchall()
    )

    def new_value(name: str) -> str:
        kind = types.get(name)
        return f'CAST(r."{name}" AS {kind})' if kind else f'r."{name}"'

    differs = ", ".join(f'bool_or({target}."{n}" IS DISTINCT FROM {new_value(n)})' for n in names)
    rows = con.execute(
        f"SELECT {differs} FROM {target} JOIN remap_rows r ON {seq} = r.ingest_seq "
        f"WHERE {seq} BETWEEN $lo AND $hi",
        span,
    ).fetchall()
    flags = rows[0] if rows else [True] * len(names)
    return [name for name, flag in zip(names, flags, strict=True) if flag is not False]


def _insert_reject(
    con: duckdb.DuckDBPyConnection,
    source: str,
    uuid: str | None,
    raw: str,
    reason: str,
    version: str,
    now: datetime,
) -> None:
    con.execute(
        "INSERT INTO rejects (source, uuid, reason, raw_hash, raw, mapping_version, first_seen) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            source,
            uuid,
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

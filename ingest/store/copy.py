"""``oktaduck store copy``: move a store's contents between a DuckDB file and a lake.

Both stores are attached to one DuckDB connection (the lake's, with the file attached as
``copy_file``), so rows go from one to the other in SQL, never through Python.

- **Events** are copied in ``ingest_seq`` order, in batches of one transaction each on the
  target. The same transaction adds a row to the target's ``store_copy_progress`` table (the
  last source ``ingest_seq`` copied and the events copied so far), so a copy killed at any
  moment resumes after the last batch it committed when run again, and never doubles one.
- **Numbering.** A file keeps the lake's ``ingest_seq`` as it is. On a lake ``ingest_seq`` is
  the row id + 1, handed out at commit: batches in order give the events numbers in the same
  order, provided a batch never holds an event of an earlier day after one of a later day
  (the rows of one commit are numbered partition by partition), so a batch also ends there.
  A batch ends at every export cursor too, so the events a sink has received are exactly those
  numbered up to some number on the lake, which becomes its cursor there.
- **Cursors, rejects, conflicts, export cursors, imports** (what ``oktaduck import`` read
  from which file, so an import resumes on the target as it would have on the source) follow
  in one transaction once every event is there, replacing the target's (a rerun writes the
  same again). A source made before imports were recorded has none to copy.
- **Verification**: every table's row count, and per day of ``published`` the count, an
  order-independent hash of the uuids (a sum and an xor of each uuid's hash) and a sum of
  the raw events' hashes, computed by DuckDB on both sides.

A target that holds anything other than an earlier run of the same copy is refused.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ingest.base.crashpoints import crash_point
from ingest.base.errors import StoreError
from ingest.mapping import CompiledMapping
from ingest.store.db import Store, StoreTarget, describe
from ingest.store.lake import LAKE, LakeConfig, connect_lake, translate_lake

DEFAULT_BATCH = 50_000
FILE = "copy_file"  # the name the DuckDB file is attached as
PROGRESS_TABLE = "store_copy_progress"
_TABLES = ("cursors", "rejects", "conflicts", "export_cursors", "imports")


@dataclass(frozen=True)
class CopyProgress:
    copied: int  # events in the target
    total: int  # events in the source
    batches: int  # batches committed by this run


@dataclass(frozen=True)
class CopyResult:
    events: int  # events in the target at the end
    copied: int  # events this run copied (the rest were there from an interrupted run)
    batches: int
    counts: dict[str, int]  # rows of cursors, rejects, conflicts, export_cursors
    days: int  # days of events verified
    seconds: float


@dataclass(frozen=True)
class _Side:
    """One store as seen from the shared connection: where events are read or written."""

    db: str  # the attached database's name
    lake: bool

    @property
    def events(self) -> str:  # read: with ingest_seq
        return f"{self.db}.events"

    @property
    def event_rows(self) -> str:  # write
        return f"{self.db}.event_rows" if self.lake else f"{self.db}.events"

    def table(self, name: str) -> str:
        """Where rows of ``name`` are written: the lake's cursors and imports are append-only
        logs."""
        if self.lake and name in ("cursors", "export_cursors", "imports"):
            return f"{self.db}.{name.removesuffix('s')}_log"
        return f"{self.db}.{name}"


def copy_store(
    source: StoreTarget,
    target: StoreTarget,
    mapping: CompiledMapping,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[CopyProgress], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CopyResult:
    """Copy ``source`` into ``target`` (one a file, the other a lake); see the module."""
    started = time.monotonic()
    if isinstance(source, LakeConfig) == isinstance(target, LakeConfig):
        raise StoreError("store copy copies between a DuckDB file and a lake: give one of each")
    lake = source if isinstance(source, LakeConfig) else target
    assert isinstance(lake, LakeConfig)
    file = target if isinstance(source, LakeConfig) else source
    assert isinstance(file, Path)
    if isinstance(source, Path):
        _check_source_file(source)
    # the target's schema (tables, the mapping's columns), made as the store itself makes it
    with Store(target, mapping, serves_queries=False):
        pass
    with _connected(lake, file, lake_is_source=isinstance(source, LakeConfig)) as con:
        src = _Side(
            LAKE if isinstance(source, LakeConfig) else FILE, isinstance(source, LakeConfig)
        )
        dst = _Side(
            LAKE if isinstance(target, LakeConfig) else FILE, isinstance(target, LakeConfig)
        )
        try:
            return _copy(con, src, dst, describe(source), batch, progress, now, started)
        except duckdb.Error as err:
            raise translate_lake(err, lake) from None


def _shown(path: Path) -> str:
    """A path for a message: as typed, or quoted when it holds control characters."""
    text = str(path)[:300]
    return text if text.isprintable() else repr(text)


def _check_source_file(path: Path) -> None:
    try:
        if not path.is_file():
            raise StoreError(f"database {_shown(path)} does not exist or is not a file")
    except (OSError, ValueError):
        raise StoreError(f"database {_shown(path)}: not a readable path") from None


@contextlib.contextmanager
def _connected(
    lake: LakeConfig, file: Path, lake_is_source: bool
) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_lake(lake, read_only=lake_is_source, files=(file.absolute(),))
    try:
        mode = "" if lake_is_source else " (READ_ONLY)"
        try:
            con.execute(f"ATTACH '{_quoted(str(file.absolute()))}' AS {FILE}{mode}")
        except duckdb.Error as err:
            text = str(err).splitlines()[0] if str(err) else type(err).__name__
            if "lock" in text.lower():
                raise StoreError(
                    f"database {_shown(file)} is in use by another process; stop it first"
                ) from None
            raise StoreError(f"database {_shown(file)}: {text[:300]}") from None
        con.execute(f"USE {LAKE}")
        yield con
    finally:
        con.close()


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def _copy(
    con: duckdb.DuckDBPyConnection,
    src: _Side,
    dst: _Side,
    source_name: str,
    batch: int,
    progress: Callable[[CopyProgress], None] | None,
    now: Callable[[], datetime],
    started: float,
) -> CopyResult:
    total = _one(con, f"SELECT count(*) FROM {src.events}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {dst.db}.{PROGRESS_TABLE} (from_store VARCHAR NOT NULL, "
        "through_seq BIGINT NOT NULL, events BIGINT NOT NULL, copied_at TIMESTAMPTZ NOT NULL)"
    )
    through, copied_before = _resume_point(con, src, dst)
    columns = _match_columns(con, src, dst)
    ends = _batch_ends(con, src, dst, through, batch)
    events = copied_before
    done = 0
    for end in ends:
        con.execute("BEGIN TRANSACTION")
        try:
            rows = con.execute(
                f"INSERT INTO {dst.event_rows} BY NAME SELECT {columns} FROM {src.events} "
                "WHERE ingest_seq > $lo AND ingest_seq <= $hi ORDER BY ingest_seq",
                {"lo": through, "hi": end},
            ).fetchall()
            events += int(rows[0][0]) if rows else 0
            crash_point("store_copy.inserted")
            con.execute(
                f"INSERT INTO {dst.db}.{PROGRESS_TABLE} VALUES ($src, $seq, $events, $now)",
                {"src": source_name, "seq": end, "events": events, "now": now()},
            )
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        crash_point("store_copy.committed")
        through = end
        done += 1
        if progress is not None:
            progress(CopyProgress(events, total, done))
    _copy_tables(con, src, dst)
    counts, days = _verify(con, src, dst)
    return CopyResult(
        events, events - copied_before, done, counts, days, time.monotonic() - started
    )


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None) -> int:
    rows = con.execute(sql, params or {}).fetchall()
    return int(rows[0][0] or 0) if rows else 0


def _resume_point(con: duckdb.DuckDBPyConnection, src: _Side, dst: _Side) -> tuple[int, int]:
    """The last source ``ingest_seq`` an earlier run committed and the events it had copied;
    (0, 0) for a new copy. StoreError when the target holds anything else."""
    rows = con.execute(
        f"SELECT through_seq, events FROM {dst.db}.{PROGRESS_TABLE} "
        "ORDER BY events DESC, through_seq DESC LIMIT 1"
    ).fetchall()
    held = _one(con, f"SELECT count(*) FROM {dst.events}")
    if not rows:
        others = [t for t in _TABLES if _one(con, f"SELECT count(*) FROM {dst.db}.{t}")]
        if held or others:
            what = f"{held} events" if held else ", ".join(others)
            raise StoreError(f"the target already holds {what}: store copy fills a new store only")
        return 0, 0
    through, events = int(rows[0][0]), int(rows[0][1])
    digest = "SELECT count(*), sum(hash(uuid)), bit_xor(hash(uuid)) FROM {} WHERE ingest_seq <= $s"
    here = con.execute(digest.format(src.events), {"s": through}).fetchall()
    there = con.execute(digest.format(dst.events), {"s": 2**62}).fetchall()
    if held != events or here != there:
        raise StoreError(
            f"the target holds {held} events, not the {events} events before source number "
            f"{through} an earlier copy of it left there: store copy fills a new store only"
        )
    return through, events


def _match_columns(con: duckdb.DuckDBPyConnection, src: _Side, dst: _Side) -> str:
    """Add to the target's events every column the source's have (a field of an older or
    another mapping); the column list to copy."""

    def described(relation: str) -> list[tuple[str, str]]:
        rows = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    present = {name for name, _ in described(dst.event_rows)}
    names = []
    for name, kind in described(src.events):
        if name == "ingest_seq" and dst.lake:
            continue  # the lake numbers its rows itself
        if name not in present:
            con.execute(f'ALTER TABLE {dst.event_rows} ADD COLUMN "{name}" {kind}')
        names.append(f'"{name}"')
    return ", ".join(names)


def _batch_ends(
    con: duckdb.DuckDBPyConnection, src: _Side, dst: _Side, after: int, batch: int
) -> list[int]:
    """The last source ``ingest_seq`` of each batch still to copy, in order."""
    ends = {
        int(r[0])
        for r in con.execute(
            "SELECT ingest_seq FROM (SELECT ingest_seq, row_number() OVER (ORDER BY ingest_seq) "
            f"AS n FROM {src.events} WHERE ingest_seq > $after) "
            "WHERE n % $batch = 0",
            {"after": after, "batch": batch},
        ).fetchall()
    }
    last = _one(con, f"SELECT coalesce(max(ingest_seq), 0) FROM {src.events}")
    if last > after:
        ends.add(last)
    if dst.lake:
        # an event of an earlier day than the one before it starts a batch of its own
        ends.update(
            int(r[0])
            for r in con.execute(
                "SELECT before FROM (SELECT published::DATE AS day, "
                "lag(published::DATE) OVER w AS day_before, lag(ingest_seq) OVER w AS before "
                f"FROM {src.events} WINDOW w AS (ORDER BY ingest_seq)) "
                "WHERE day < day_before AND before > $after",
                {"after": after},
            ).fetchall()
        )
        # and a batch ends at every export cursor, so each translates exactly
        ends.update(
            int(r[0])
            for r in con.execute(
                f"SELECT last_seq FROM {src.db}.export_cursors "
                "WHERE last_seq > $after AND last_seq < $last",
                {"after": after, "last": last},
            ).fetchall()
        )
    return sorted(ends)


def _copy_tables(con: duckdb.DuckDBPyConnection, src: _Side, dst: _Side) -> None:
    """Cursors, rejects, conflicts and export cursors, in one transaction on the target."""
    sinks = con.execute(f"SELECT sink, last_seq FROM {src.db}.export_cursors").fetchall()
    seqs = {str(sink): _translated(con, src, dst, int(seq)) for sink, seq in sinks}
    con.execute("BEGIN TRANSACTION")
    try:
        for name in _TABLES:
            con.execute(f"DELETE FROM {dst.table(name)}")
        con.execute(f"INSERT INTO {dst.table('cursors')} BY NAME SELECT * FROM {src.db}.cursors")
        con.execute(f"INSERT INTO {dst.db}.rejects BY NAME SELECT * FROM {src.db}.rejects")
        con.execute(f"INSERT INTO {dst.db}.conflicts BY NAME SELECT * FROM {src.db}.conflicts")
        if _has(con, src, "imports"):
            con.execute(
                f"INSERT INTO {dst.table('imports')} BY NAME SELECT * FROM {src.db}.imports"
            )
        for sink, seq in seqs.items():
            con.execute(
                f"INSERT INTO {dst.table('export_cursors')} BY NAME "
                f"SELECT * REPLACE ($seq::BIGINT AS last_seq) FROM {src.db}.export_cursors "
                "WHERE sink = $sink",
                {"seq": seq, "sink": sink},
            )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _has(con: duckdb.DuckDBPyConnection, side: _Side, name: str) -> bool:
    """Whether a store has table or view ``name`` (a source opened read-only is not brought
    up to the newest schema: one made by an older oktaduck may lack a table)."""
    return bool(
        _one(
            con,
            "SELECT count(*) FROM (SELECT table_name AS n FROM duckdb_tables() "
            "WHERE database_name = $db UNION ALL SELECT view_name FROM duckdb_views() "
            "WHERE database_name = $db) WHERE n = $name",
            {"db": side.db, "name": name},
        )
    )


def _translated(con: duckdb.DuckDBPyConnection, src: _Side, dst: _Side, seq: int) -> int:
    """An export cursor's ``last_seq`` in the target's numbering: the number of the last of
    the events it covers. A file keeps the lake's numbers; on a lake the events up to
    ``seq`` are the first ones numbered (a batch ended there), so it is the n-th number."""
    if not dst.lake:
        return seq
    covered = _one(con, f"SELECT count(*) FROM {src.events} WHERE ingest_seq <= $s", {"s": seq})
    if not covered:
        return 0
    return _one(
        con,
        f"SELECT ingest_seq FROM {dst.events} ORDER BY ingest_seq LIMIT 1 OFFSET $n",
        {"n": covered - 1},
    )


def _verify(con: duckdb.DuckDBPyConnection, src: _Side, dst: _Side) -> tuple[dict[str, int], int]:
    """Row counts of every table, and per day of events the count and hashes of the uuids
    and raw events, equal on both sides; StoreError naming what differs."""
    counts: dict[str, int] = {}
    for name in ("events", *_TABLES):
        if not _has(con, src, name):
            continue  # a source older than the table: nothing was copied into it
        here = _one(con, f"SELECT count(*) FROM {src.db}.{name}")
        there = _one(con, f"SELECT count(*) FROM {dst.db}.{name}")
        if here != there:
            raise StoreError(
                f"verification failed: {name} has {here} rows in the source, {there} in the "
                "target (was the source written during the copy? stop its daemons and rerun)"
            )
        counts[name] = here
    per_day = (
        "SELECT published::DATE AS day, count(*) AS n, sum(hash(uuid)) AS uuid_sum, "
        "bit_xor(hash(uuid)) AS uuid_xor, sum(hash(raw::VARCHAR)) AS raw_sum FROM {} GROUP BY 1"
    )
    rows = con.execute(
        f"SELECT coalesce(s.day, t.day)::VARCHAR, s.day IS NULL OR t.day IS NULL "
        f"OR (s.n, s.uuid_sum, s.uuid_xor, s.raw_sum) IS DISTINCT FROM "
        f"(t.n, t.uuid_sum, t.uuid_xor, t.raw_sum) AS differs "
        f"FROM ({per_day.format(src.events)}) s FULL JOIN ({per_day.format(dst.events)}) t "
        "ON s.day = t.day ORDER BY 2 DESC, 1"
    ).fetchall()
    bad = [str(day) for day, differs in rows if differs]
    if bad:
        raise StoreError(
            f"verification failed: the events of {len(bad)} days differ ({', '.join(bad[:3])})"
        )
    return counts, len(rows)

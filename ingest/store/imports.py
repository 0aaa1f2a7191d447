"""The ``imports`` table: what ``oktaduck import`` read from which archive file.

One row per import of a file (``id``), written in the same transaction as each group of its
events, so that the row always says exactly how far the file's events are stored:

- ``path``, ``size``, ``mtime``: the file when its import began; ``head_sha256``: the
  SHA-256 of its first MiB as stored (compressed or not). A file is known again by its
  size and head, wherever it lies now; the same path with another size or head is a
  changed file, imported anew.
- ``unwrap``: the envelope the events were taken out of (``none``, ``detail``, ...).
- ``position``: bytes of the file's content (decompressed) read and committed; ``line``:
  the lines up to there. A rerun of an unfinished import reads on from ``position``.
- ``records``: the lines or array elements read, ``stored``, ``duplicates`` (their uuid was
  stored already), ``rejected`` (kept in ``rejects`` with the file and line).
- ``finished_at``: set by the commit of the file's last group; NULL while it is unfinished.

In a file store the row is updated in place; on a lake each commit appends it to
``import_log`` (append-only, as the lake's cursors are) and the ``imports`` view shows the
newest row of each import.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import duckdb

_COLUMNS = (
    "id, source, path, size, mtime, head_sha256, unwrap, position, line, records, stored, "
    "duplicates, rejected, started_at, updated_at, finished_at"
)
_KEPT = ("id", "started_at")  # what writing the row again leaves as the first write made it


@dataclass(frozen=True)
class ImportRow:
    """One import of one file, as far as it is committed."""

    id: str
    source: str
    path: str
    size: int
    mtime: datetime | None
    head_sha256: str
    unwrap: str
    position: int
    line: int
    records: int
    stored: int
    duplicates: int
    rejected: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def find_import(
    con: duckdb.DuckDBPyConnection, source: str, size: int, head_sha256: str
) -> ImportRow | None:
    """The newest import of a file of this size and head into ``source``, if any."""
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM imports WHERE source = $source AND size = $size "
        "AND head_sha256 = $head ORDER BY started_at DESC, updated_at DESC LIMIT 1",
        {"source": source, "size": size, "head": head_sha256},
    ).fetchall()
    return ImportRow(*rows[0]) if rows else None


def imported_paths(con: duckdb.DuckDBPyConnection, source: str, path: str) -> int:
    """How many imports of another file were made from this path into ``source``."""
    rows = con.execute(
        "SELECT count(*) FROM imports WHERE source = $source AND path = $path",
        {"source": source, "path": path},
    ).fetchall()
    return int(rows[0][0]) if rows else 0


def write_import(con: duckdb.DuckDBPyConnection, row: ImportRow, lake_owner: str | None) -> None:
    """Write the row, inside the caller's transaction: in place in a file store, appended
    to ``import_log`` on a lake (``lake_owner``: the writing process's name)."""
    params = {f.name: getattr(row, f.name) for f in fields(row)}
    names = ", ".join(f"${f.name}" for f in fields(row))
    if lake_owner is not None:
        con.execute(
            f"INSERT INTO import_log ({_COLUMNS}, owner) VALUES ({names}, $owner)",
            {**params, "owner": lake_owner},
        )
        return
    # an UPDATE, and an INSERT only when it finds no row: DuckDB's INSERT ... ON CONFLICT DO
    # UPDATE cost 5 ms of CPU a commit, the UPDATE 1.7 (an import commits every 2000 events)
    updates = ", ".join(f"{name} = ${name}" for name in params if name not in _KEPT)
    changed = con.execute(
        f"UPDATE imports SET {updates} WHERE id = $id",
        {name: value for name, value in params.items() if name != "started_at"},
    ).fetchall()
    if not changed or not changed[0][0]:
        con.execute(f"INSERT INTO imports ({_COLUMNS}) VALUES ({names})", params)

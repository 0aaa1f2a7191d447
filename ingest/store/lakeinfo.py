"""What a lake holds, for ``status`` and ``/metrics``: its data files and snapshots.

Read from the catalog through DuckLake's read-only functions (``ducklake_table_info``,
``ducklake_snapshots``, ``ducklake_options``); no data file is opened.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ingest.store.lake import LAKE


@dataclass(frozen=True)
class LakeSummary:
    files: int  # Parquet files of the current snapshot, delete files included
    bytes: int
    snapshots: int  # kept in the catalog (housekeeping expires the old ones)
    data_path: str | None


def lake_summary(con: duckdb.DuckDBPyConnection) -> LakeSummary:
    """The lake attached to ``con`` as ``lake``, summed over its tables."""
    files = con.execute(
        "SELECT coalesce(sum(file_count + delete_file_count), 0), "
        "coalesce(sum(file_size_bytes + delete_file_size_bytes), 0) "
        f"FROM ducklake_table_info('{LAKE}')"
    ).fetchall()[0]
    snapshots = con.execute(f"SELECT count(*) FROM ducklake_snapshots('{LAKE}')").fetchall()[0]
    path = con.execute(
        f"SELECT value FROM ducklake_options('{LAKE}') WHERE option_name = 'data_path'"
    ).fetchall()
    return LakeSummary(
        files=int(files[0]),
        bytes=int(files[1]),
        snapshots=int(snapshots[0]),
        data_path=str(path[0][0]) if path and path[0][0] else None,
    )

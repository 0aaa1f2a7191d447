"""The store: one DuckDB file with the events, the cursors and the rejects; grouped commits,
read-only queries and their guard, remapping and retention."""

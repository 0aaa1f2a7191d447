"""Naming rules for output fields: SQL-safe column names, or dotted document paths."""

from __future__ import annotations

import re

# Columns the store adds to every row: a mapping may not declare them.
STORE_COLUMNS = frozenset(
    {"source", "raw", "mapping_version", "mapping_issues", "ingested_at", "ingest_seq"}
)
# DuckDB's reserved keywords (duckdb_keywords() WHERE keyword_category = 'reserved').
_SQL_RESERVED_WORDS = """
all analyse analyze and any array as asc asymmetric both case cast check collate column constraint
create default deferrable desc describe distinct do else end except false fetch for foreign from
group having in initially intersect into lambda lateral leading limit not null offset on only or
order pivot pivot_longer pivot_wider placing primary qualify references returning select show some
summarize symmetric table then to trailing true union unique unpivot using variadic when where
window with
"""
SQL_RESERVED = frozenset(_SQL_RESERVED_WORDS.split())
_COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_DOCUMENT_SEGMENT = re.compile(r"[A-Za-z_@][A-Za-z0-9_@-]*")


def field_name_problem(name: str, output: str) -> str | None:
    """Why ``name`` cannot be a field of an ``output`` mapping, or None when it can."""
    if output == "columns":
        if not _COLUMN_NAME.fullmatch(name):
            return (
                "not a valid column name: use snake_case (a-z, 0-9, _), "
                "starting with a letter, at most 63 characters"
            )
        if name in SQL_RESERVED:
            return "column name is a reserved SQL word"
        if name in STORE_COLUMNS:
            return "column name is reserved: the store adds this column itself"
        return None
    *parents, leaf = name.split(".")
    if not all(_DOCUMENT_SEGMENT.fullmatch(part.removesuffix("[]")) for part in parents) or not (
        _DOCUMENT_SEGMENT.fullmatch(leaf)
    ):
        return (
            "not a valid document field name: dotted words (a-z, A-Z, 0-9, _, @, -); "
            "a word before a dot may end in [] (a one-item array)"
        )
    return None

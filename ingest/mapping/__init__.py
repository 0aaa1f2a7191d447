"""Declarative mappings: TOML files that turn Okta events into rows or documents.

Load a file once with ``load_mapping``; the result applies it to events with no I/O. The
language is described in ``mappings/README.md``.
"""

from __future__ import annotations

from ingest.mapping.apply import MappedBatch
from ingest.mapping.compile import Column, CompiledMapping, load_mapping
from ingest.mapping.directory import check_all, default_mapping_dir

__all__ = [
    "Column",
    "CompiledMapping",
    "MappedBatch",
    "check_all",
    "default_mapping_dir",
    "load_mapping",
]

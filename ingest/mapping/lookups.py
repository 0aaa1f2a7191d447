"""Lookup tables: JSON or TOML objects that a field maps its value through."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ingest.base.tomlfile import MAX_TOML_BYTES


@dataclass(frozen=True)
class LookupTable:
    """A loaded table and the bytes it came from (they are part of the mapping's version)."""

    name: str
    path: Path
    content: bytes
    entries: Mapping[str, Any]


class BadLookupFile(ValueError):
    """The table's file is missing, unreadable or not an object; the message says which."""


def load_lookup(name: str, path: Path) -> LookupTable:
    """Read one table; ``.json`` and ``.toml`` files hold one object of key -> value."""
    try:
        with path.open("rb") as file:
            content = file.read(MAX_TOML_BYTES + 1)
    except OSError as err:
        raise BadLookupFile(f"cannot read {path}: {err.strerror or err}") from None
    if len(content) > MAX_TOML_BYTES:
        raise BadLookupFile(f"{path} is larger than 16 MiB")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            entries: Any = orjson.loads(content)
        elif suffix == ".toml":
            entries = tomllib.loads(content.decode("utf-8"))
        else:
            raise BadLookupFile(f"{path}: a lookup file must be .json or .toml")
    except (orjson.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BadLookupFile(f"{path} is not valid {suffix[1:].upper()}: {err}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise BadLookupFile(f"{path} is not valid TOML: nested too deeply") from None
    if not isinstance(entries, dict):
        raise BadLookupFile(f"{path} must hold one object of key -> value")
    return LookupTable(name=name, path=path, content=content, entries=entries)

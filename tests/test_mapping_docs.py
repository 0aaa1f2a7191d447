"""mappings/README.md documents the whole language and every normalized column."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.mapping import load_mapping
from ingest.mapping.spec import FIELD_KEYS, MAPPING_KEYS, TOP_KEYS
from ingest.mapping.types import ALL_TYPES, SCALAR_TYPES

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "mappings" / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("key", [*TOP_KEYS, *MAPPING_KEYS, *FIELD_KEYS])
def test_every_key_is_documented(key: str) -> None:
    """Each key the validator accepts appears in the README's tables."""
    assert f"`{key}`" in README or f"[{key}" in README


@pytest.mark.parametrize("type_name", [*SCALAR_TYPES, "list[T]"])
def test_every_type_is_documented(type_name: str) -> None:
    """Each type has a row in the README's type table."""
    assert f"| `{type_name}` |" in README
    assert set(ALL_TYPES) >= set(SCALAR_TYPES)


def test_every_normalized_column_is_documented() -> None:
    """The README's column table lists exactly the columns of normalized.toml, in order."""
    mapping = load_mapping(REPO / "mappings" / "okta" / "normalized.toml")
    rows = [
        line.split("|")[1].strip().strip("`")
        for line in README.split("## normalized.toml", 1)[1].splitlines()
        if line.startswith("| `")
    ]
    assert rows == [column.name for column in mapping.columns]


def test_switches_are_documented() -> None:
    """The golden rewrite switch, the folder variable and the lookup builder are explained."""
    assert "OKTADUCK_UPDATE_GOLDEN=1" in README
    assert "OKTADUCK_MAPPINGS" in README
    assert "python -m ingest.mapping.categories" in README

"""Where mapping files live, and checking all of them at once."""

from __future__ import annotations

import os
from pathlib import Path

from ingest.errors import MappingError
from ingest.mapping.compile import load_mapping
from ingest.mapping.spec import InvalidMapping

ENV_VAR = "OKTADUCK_MAPPINGS"
LOOKUP_DIR = "lookups"


def default_mapping_dir() -> Path:
    """``$OKTADUCK_MAPPINGS`` when set, else the ``mappings/`` folder of the repository checkout."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parents[2] / "mappings"


def mapping_files(directory: Path) -> list[Path]:
    """Every ``*.toml`` under ``directory`` except the ones inside a ``lookups`` folder."""
    return sorted(
        path
        for path in directory.rglob("*.toml")
        if LOOKUP_DIR not in path.relative_to(directory).parts[:-1]
    )


def check_all(directory: Path) -> list[str]:
    """Validate every mapping file under ``directory``; return the problems (empty means ok)."""
    directory = Path(directory)
    if not directory.is_dir():
        return [f"{directory}: not a directory of mapping files"]
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for path in mapping_files(directory):
        try:
            mapping = load_mapping(path)
        except InvalidMapping as err:
            problems.extend(err.problems)
            continue
        except MappingError as err:
            problems.append(str(err))
            continue
        if mapping.name in seen:
            problems.append(
                f"{path}: [mapping]: name {mapping.name!r} is already used by {seen[mapping.name]}"
            )
        else:
            seen[mapping.name] = path
    return problems

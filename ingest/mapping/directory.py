"""Where mapping files live, and checking all of them at once."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

from ingest.base.errors import InvalidMapping, MappingError
from ingest.mapping.compile import load_mapping

ENV_VAR = "OKTADUCK_MAPPINGS"
LOOKUP_DIR = "lookups"
BUNDLED_PACKAGE = "ingest.bundled_mappings"


def default_mapping_dir() -> Path:
    """The folder of the default mapping files.

    In this order:

    1. ``$OKTADUCK_MAPPINGS`` when it is set (and not empty);
    2. the data package ``ingest.bundled_mappings``, the copy of the repository's ``mappings/``
       that an installed wheel carries (setup.py puts it there);
    3. the ``mappings/`` folder next to the ``ingest`` package, which is the checkout's own:
       an editable install (``make``), or a checkout on ``PYTHONPATH``. Edits there take
       effect at once.
    """
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    bundled = bundled_mapping_dir()
    if bundled is not None:
        return bundled
    return Path(__file__).resolve().parents[2] / "mappings"


def bundled_mapping_dir() -> Path | None:
    """Where the installed data package ``ingest.bundled_mappings`` is, or None without one."""
    try:
        spec = find_spec(BUNDLED_PACKAGE)
    except ImportError:
        return None
    if spec is None or spec.submodule_search_locations is None:
        return None
    # A folder of data files is a namespace package: no module, only its folder.
    for location in spec.submodule_search_locations:
        folder = Path(location)
        if folder.is_dir():
            return folder.resolve()
    return None


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

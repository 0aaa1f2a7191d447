"""The package's layout holds: every import runs down the floors of docs/architecture.md
("Layout"), and no modules import each other in a circle.

Imports are read from the source with ``ast``, all of them: at the top, inside functions and
under ``TYPE_CHECKING``, since a circle held together by a late import is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ingest

PACKAGE = Path(ingest.__file__).parent

# Each part of ingest/ and the parts it may import (docs/architecture.md, "Layout").
MAY_IMPORT: dict[str, set[str]] = {
    "base": set(),
    "filters": {"base"},
    "okta": {"base"},
    "mapping": {"base"},
    "simulate": {"filters", "base"},
    "store": {"mapping", "okta", "base"},
    "feeds": {"store", "filters", "base"},
    "export": {"store", "filters", "mapping", "okta", "base"},
    "collect": {"store", "mapping", "okta", "base"},
    "config": {"collect", "export", "store", "mapping", "okta", "base"},
    "config_check": {"config", "export", "okta", "base"},
    "demo": {"config", "collect", "store", "simulate", "mapping", "okta", "base"},
    "service": {"config", "collect", "feeds", "export", "store", "mapping", "okta", "base"},
}
MAY_IMPORT["cli"] = set(MAY_IMPORT)

# Within a part, modules kept apart on purpose (docs/architecture.md, "Layout"): the API's HTTP
# server knows no route, and no command reaches up into the parser that lists it.
MODULE_MAY_IMPORT: dict[str, set[str]] = {
    "ingest.service.httpserver": {"ingest.service.httpanswer", "base"},
    "ingest.service.httpanswer": {"base"},
    **{
        f"ingest.cli.commands.{name}": {"ingest.cli.commands.common", *MAY_IMPORT}
        for name in ("collect", "query", "mappings", "demo", "common", "importing")
    },
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ingest modules ``path`` imports: ``from ingest.simulate import targets`` imports the
    module ``ingest.simulate.targets``, ``from ingest.mapping import Column`` the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return (found & modules) - {"ingest", _module(path)}


def _graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module(p) for p in paths}
    return {_module(p): _imports(p, modules) for p in paths}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_every_part_of_the_package_is_placed_on_a_floor() -> None:
    parts = {_part(m) for m in _graph()} - {"ingest", "__main__"}
    assert parts == set(MAY_IMPORT)


def test_imports_run_down_the_floors_only() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if _part(target) != _part(module)
        and _part(module) != "ingest"
        and _part(target) not in MAY_IMPORT[_part(module)]
    )
    assert wrong == []


def test_modules_kept_apart_import_only_what_they_may() -> None:
    graph = _graph()
    assert set(MODULE_MAY_IMPORT) <= set(graph)  # a module renamed must be renamed here too
    wrong = sorted(
        f"{module} imports {target}"
        for module, allowed in MODULE_MAY_IMPORT.items()
        for target in graph[module]
        if target not in allowed
        and (_part(target) == _part(module) or _part(target) not in allowed)
    )
    assert wrong == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph = _graph()
    circles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []

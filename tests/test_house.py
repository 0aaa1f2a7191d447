"""The test suite's own rules: test modules share code through tests/helpers (and fixtures
through tests/conftest.py), never by importing one another; tests that need a subprocess
fixture are slow, so that make test-fast stays fast."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, cast

import pytest

from tests.helpers import REPO, SLOW_FIXTURES, mark_slow_by_fixture

TESTS = REPO / "tests"


def _imported_modules(path: Path, top: Path) -> list[tuple[int, str]]:
    """Every module a file under ``top`` (the folder holding the ``tests`` package) imports,
    absolute, with its line; relative imports are resolved."""
    package = ".".join(path.relative_to(top).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            # ``from tests import test_x`` imports a module too
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def refused(module: str) -> bool:
    """A test module (``tests.test_x``, ``tests.security.test_y``) or a conftest."""
    parts = module.split(".")
    return parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts[1:])


def cross_imports(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root.parent)}:{line}: imports {module}"
        for path in sorted(root.rglob("*.py"))
        for line, module in _imported_modules(path, root.parent)
        if refused(module)
    ]


def test_no_test_module_imports_another_or_conftest() -> None:
    assert cross_imports(TESTS) == []


def test_the_check_finds_each_form_of_cross_import(tmp_path: Path) -> None:
    """The walk is not vacuous: every way of spelling such an import is caught, helpers are
    not."""
    root = tmp_path / "tests"
    (root / "security").mkdir(parents=True)
    (root / "test_a.py").write_text(
        "import tests.test_b\n"
        "from tests.test_b import helper\n"
        "from tests import test_b\n"
        "from tests.conftest import make_sim\n"
        "from tests.helpers import make_sim\n"
        "from tests.helpers.feeds import Dataset\n"
        "import json\n"
    )
    (root / "security" / "test_c.py").write_text(
        "def f():\n    from tests.security.test_d import x\n    from ..test_b import y\n"
    )
    found = [line.split(": imports ")[1] for line in cross_imports(root)]
    assert found == [
        "tests.security.test_d",
        "tests.security.test_d.x",
        "tests.test_b",
        "tests.test_b.y",
        "tests.test_b",
        "tests.test_b",
        "tests.test_b.helper",
        "tests.test_b",
        "tests.conftest",
        "tests.conftest.make_sim",
    ]


class _Collected:
    """What mark_slow_by_fixture reads of a collected test, and the marks it gets."""

    def __init__(self, *fixturenames: str) -> None:
        self.fixturenames = list(fixturenames)
        self.marks: list[pytest.MarkDecorator] = []

    def add_marker(self, mark: pytest.MarkDecorator) -> None:
        self.marks.append(mark)


def test_a_test_using_a_subprocess_fixture_is_marked_slow(request: pytest.FixtureRequest) -> None:
    items = [_Collected("tmp_path", "live_sim"), _Collected("sim", "clock"), _Collected("rsyslog")]
    mark_slow_by_fixture(cast(Any, items))
    assert [[m.name for m in item.marks] for item in items] == [["slow"], [], ["slow"]]
    # and in this session, every collected test that uses one carries the mark
    for item in request.session.items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            assert item.get_closest_marker("slow") is not None, item.nodeid

"""The one exception tree: every public exception class lives in ingest/base/errors.py.

Exceptions that stay in their module are named in the errors.py docstring, which says why;
a new one elsewhere fails here until it moves to errors.py or is written down there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ingest
import ingest.base.errors

SOURCE = Path(ingest.__file__).parent  # the whole package
STAYING = {
    "Stopped",
    "RequestAbandoned",
    "CorruptBody",
    "Oversize",
    "BadBody",
    "Invalid",
    "Partial",
    "PathError",
    "BadLookupFile",
    "QueryError",
    "RelpProtocolError",
    "SessionEnded",
}


def _exception_classes_outside_errors() -> dict[str, str]:
    known = {"Exception", "ValueError", "RuntimeError", "OSError", "KeyError", "TypeError"}
    known |= {name for name in dir(ingest.base.errors) if name.endswith(("Error", "Failed"))}
    known |= {
        name
        for name, value in vars(ingest.base.errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    found: dict[str, str] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if bases & known or node.name.endswith("Error"):
                found[node.name] = str(path.relative_to(SOURCE.parent))
    return found


def test_public_exceptions_live_in_errors_py() -> None:
    public = {
        name: where
        for name, where in _exception_classes_outside_errors().items()
        if not name.startswith("_") and name not in STAYING
    }
    assert public == {}


def test_the_docstring_names_what_stays_outside() -> None:
    doc = ingest.base.errors.__doc__ or ""
    assert all(name in doc for name in STAYING)
    tree = doc.split("::", 1)[1]
    public = [
        name
        for name, value in vars(ingest.base.errors).items()
        if isinstance(value, type) and issubclass(value, ingest.base.errors.OktaduckError)
    ]
    assert all(f" {name}" in tree for name in public)

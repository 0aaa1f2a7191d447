"""Every log event name the documentation gives is one the code emits, and the README's list
of log events is complete.

An alert written against a documented name that the code never logs never fires, so the
names are checked both ways: the names are collected from the source (every string constant
in the first argument of an ``emit(...)`` call) and from the documentation (README.md,
docs/*.md, deploy/README.md and the docstrings of ingest/base/logs.py), where a log event name is
a dotted name in backticks in a paragraph or table that speaks of log events.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "ingest"
NAME = re.compile(r"``?([a-z][a-z_]*\.[a-z][a-z_]*)``?")
# a block (paragraph, list item or table) that names log events says so
SPEAKS_OF_EVENTS = re.compile(r"log events?\b|`event` name|stable dotted name", re.IGNORECASE)


def emitted_names() -> set[str]:
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called != "emit":
                continue
            for part in ast.walk(node.args[0]):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    names.add(part.value)
    return names


def _blocks(text: str) -> list[str]:
    """Paragraphs and tables; a table joins the paragraph that introduces it."""
    blocks: list[str] = []
    for chunk in re.split(r"\n\s*\n", text):
        if chunk.lstrip().startswith("|") and blocks:
            blocks[-1] += "\n" + chunk
        else:
            blocks.extend(re.split(r"\n(?=- )", chunk))  # each list item on its own
    return blocks


def documented_names(text: str) -> set[str]:
    """Names in a table introduced as log events, or in the sentence that says so."""
    names: set[str] = set()
    for block in _blocks(text):
        if "\n|" in block:
            if SPEAKS_OF_EVENTS.search(block.split("\n|", 1)[0]):
                names.update(NAME.findall(block))
            continue
        for sentence in re.split(r"(?<=[.:;])\s+(?=[A-Z])", block):
            if SPEAKS_OF_EVENTS.search(sentence):
                names.update(NAME.findall(sentence))
    return names


def _docs() -> dict[str, str]:
    paths = [REPO / "README.md", REPO / "deploy" / "README.md", *sorted(REPO.glob("docs/*.md"))]
    texts = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in paths if p.exists()}
    tree = ast.parse((SOURCE / "base" / "logs.py").read_text(encoding="utf-8"))
    docstrings = [
        ast.get_docstring(node) or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
    ]
    texts["ingest/base/logs.py docstrings"] = "\n\n".join(docstrings)
    return texts


def _readme_event_table() -> set[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for block in _blocks(text):
        if block.startswith("The log events to alert on"):
            return set(NAME.findall(block))
    raise AssertionError("README.md lost its table of log events")


def test_the_collectors_find_what_they_should() -> None:
    emitted = emitted_names()
    assert {"poll.pages_stored", "poll.cycle_done", "daemon.stopping", "okta.retry"} <= emitted
    text = "Alert on the log event `poll.page_stored`.\n\nThe key `api.workers` is a setting."
    assert documented_names(text) == {"poll.page_stored"}


def test_every_documented_log_event_is_emitted() -> None:
    emitted = emitted_names()
    unknown = {where: sorted(documented_names(text) - emitted) for where, text in _docs().items()}
    assert {where: names for where, names in unknown.items() if names} == {}


def test_the_readme_lists_every_emitted_log_event() -> None:
    assert sorted(emitted_names() - _readme_event_table()) == []

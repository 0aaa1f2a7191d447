"""Every relative link in README.md, docs/*.md, mappings/README.md and deploy/README.md points
at a file that exists, and every #anchor at a heading of that file (GitHub's way of naming
headings); every module the README and docs/ name in backquotes is in the checkout. (Log
event names are checked by test_docs_log_events.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "mappings" / "README.md",
    REPO / "deploy" / "README.md",
]
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`\n]*`", "", line))
    return "\n".join(lines)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


def test_the_pages_exist_and_link_to_each_other() -> None:
    readme = links(REPO / "README.md")
    for name in ("architecture.md", "performance.md", "simulator.md", "security.md"):
        assert (REPO / "docs" / name).is_file()
        assert any(link.startswith(f"docs/{name}") for link in readme), name


def test_the_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[a](missing.md) `[b](code.md)`\n```\n[c](fenced.md)\n```\n")
    assert links(page) == ["missing.md"]
    assert anchors(page) == {"title"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for link in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading with that anchor")
    assert broken == []


def test_every_source_path_named_in_the_docs_exists() -> None:
    """A module named in backquotes (`ingest/collect/pagemap.py`) is one the checkout has."""
    installed_only = {"ingest/bundled_mappings"}  # the wheel's name for mappings/
    missing = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for path in re.findall(r"`((?:ingest|tests|deploy|mappings)/[\w./-]+)`", text):
            if path not in installed_only and not (REPO / path).exists():
                missing.append(f"{page.relative_to(REPO)}: {path}")
    assert missing == []

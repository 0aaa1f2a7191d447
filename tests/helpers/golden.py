"""The golden cases the mapping tests share: inputs, and the expectations they are checked
against in ``tests/golden/<mapping>/<case>.json``.

Inputs are the real sample events in ``tests/samples/*.ndjson`` (one case per line), the
synthesized quirk events in ``tests/golden/inputs/*.json`` and, for the document mappings, the
feed events in ``tests/golden/inputs/feeds/*.json``. To rewrite expectations on purpose after a
mapping change, run the tests with ``OKTADUCK_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from ingest.base.errors import EventRejected
from ingest.mapping import CompiledMapping
from ingest.mapping.types import rfc3339_exact
from tests.helpers import REPO, SAMPLES

GOLDEN = REPO / "tests" / "golden"
UPDATE = os.environ.get("OKTADUCK_UPDATE_GOLDEN") == "1"

Case = tuple[str, str, Any]  # name, where the input comes from, the event


def _sample_cases() -> list[Case]:
    cases = []
    for path in sorted(SAMPLES.glob("*.ndjson")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for number, line in enumerate(lines, start=1):
            name = f"sample-{path.stem}-{number:02d}"
            cases.append((name, f"tests/samples/{path.name} line {number}", json.loads(line)))
    return cases


def _quirk_cases() -> list[Case]:
    cases = []
    for path in sorted((GOLDEN / "inputs").glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        cases.append((f"quirk-{path.stem}", f"tests/golden/inputs/{path.name}", body["event"]))
    return cases


def _feed_cases() -> list[Case]:
    cases = []
    for path in sorted((GOLDEN / "inputs" / "feeds").glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        cases.append((f"feed-{path.stem}", f"tests/golden/inputs/feeds/{path.name}", body["event"]))
    return cases


# The normalized mapping's cases; the document mappings (ECS, OCSF) also map the feed events.
NORMALIZED_CASES = _sample_cases() + _quirk_cases()
CASES = NORMALIZED_CASES + _feed_cases()
IDS = [case[0] for case in CASES]


def plain(value: Any) -> Any:
    """Make a mapped value comparable with what JSON gives back."""
    if isinstance(value, datetime):
        return rfc3339_exact(value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def document_outcome(mapping: CompiledMapping, event: Any) -> dict[str, Any]:
    """The document and issues for an event, or the reason it is rejected."""
    try:
        _, issues = mapping.apply(event)
        document = mapping.apply_document(event)
    except EventRejected as rejected:
        return {"accepted": False, "reason": str(rejected)}
    return {"accepted": True, "document": plain(document), "issues": issues}


def check_golden(mapping: CompiledMapping, folder: str, name: str, source: str, event: Any) -> None:
    """The event maps to exactly the stored expectation in tests/golden/<folder>/<name>.json."""
    actual = {"source": source, **document_outcome(mapping, event)}
    expected_path = GOLDEN / folder / f"{name}.json"
    if UPDATE:
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
        expected_path.write_text(text, encoding="utf-8")
    assert expected_path.exists(), f"no expectation for {name}: run with OKTADUCK_UPDATE_GOLDEN=1"
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))


def stale_expectations(folder: str) -> list[str]:
    """Expectation files in tests/golden/<folder> that no case produces any more."""
    names = set(IDS)
    return sorted(p.name for p in (GOLDEN / folder).glob("*.json") if p.stem not in names)


def documents(mapping: CompiledMapping) -> list[tuple[str, dict[str, Any]]]:
    """The document of every accepted case, by case name."""
    out = []
    for name, _, event in CASES:
        outcome = document_outcome(mapping, event)
        if outcome["accepted"]:
            out.append((name, outcome["document"]))
    return out

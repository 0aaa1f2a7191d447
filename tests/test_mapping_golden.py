"""Golden cases for mappings/okta/normalized.toml: input event -> expected row, issues or reason.

Inputs are the real sample events in ``tests/samples/*.ndjson`` (one case per line) and
the synthesized quirk events in ``tests/golden/inputs/*.json``. Expectations live in
``tests/golden/normalized/<case>.json``. To rewrite them on purpose after a mapping change, run

    OKTADUCK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_mapping_golden.py

and review the diff before committing it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ingest.base.errors import EventRejected
from ingest.mapping import CompiledMapping, load_mapping
from tests.helpers import REPO
from tests.helpers.golden import GOLDEN, UPDATE
from tests.helpers.golden import NORMALIZED_CASES as CASES
from tests.helpers.golden import plain as _plain

EXPECTED = GOLDEN / "normalized"
MAPPING = REPO / "mappings" / "okta" / "normalized.toml"


def _outcome(mapping: CompiledMapping, event: Any) -> dict[str, Any]:
    try:
        row, issues = mapping.apply(event)
    except EventRejected as rejected:
        return {"accepted": False, "reason": str(rejected)}
    return {"accepted": True, "row": _plain(row), "issues": issues}


@pytest.fixture(scope="module")
def normalized() -> CompiledMapping:
    return load_mapping(MAPPING)


@pytest.mark.parametrize(("name", "source", "event"), CASES, ids=[case[0] for case in CASES])
def test_golden_case(normalized: CompiledMapping, name: str, source: str, event: Any) -> None:
    """Each input maps to exactly its stored expectation (row and issues, or the reason)."""
    actual = {"source": source, **_outcome(normalized, event)}
    expected_path = EXPECTED / f"{name}.json"
    if UPDATE:
        EXPECTED.mkdir(parents=True, exist_ok=True)
        text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
        expected_path.write_text(text, encoding="utf-8")
    assert expected_path.exists(), f"no expectation for {name}: run with OKTADUCK_UPDATE_GOLDEN=1"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert actual == expected


def test_batch_agrees_with_golden_cases(normalized: CompiledMapping) -> None:
    """apply_batch over all golden inputs gives the same rows, issues and reasons as apply."""
    events = [case[2] for case in CASES]
    batch = normalized.apply_batch(events)
    singles = [_outcome(normalized, event) for event in events]
    assert [i for i, single in enumerate(singles) if single["accepted"]] == batch.accepted
    assert [(i, s["reason"]) for i, s in enumerate(singles) if not s["accepted"]] == batch.rejected
    for position, index in enumerate(batch.accepted):
        row = {name: column[position] for name, column in batch.columns.items()}
        assert _plain(row) == singles[index]["row"]
        assert batch.issues[position] == singles[index]["issues"]


def test_every_expectation_has_an_input() -> None:
    """No stale expectation files: each one belongs to a current case."""
    names = {case[0] for case in CASES}
    stale = sorted(path.name for path in EXPECTED.glob("*.json") if path.stem not in names)
    assert stale == [], f"expectations without an input (delete them): {stale}"


def test_the_samples_are_there() -> None:
    """The real sample events are part of the golden set (17 of them)."""
    assert len([case for case in CASES if case[0].startswith("sample-")]) == 17

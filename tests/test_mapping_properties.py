"""Properties over arbitrary input: JSON in, a typed row or EventRejected out, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonpath_ng.ext.parser import parse as jsonpath_parse

from ingest.base.errors import EventRejected
from ingest.mapping import CompiledMapping, load_mapping
from ingest.mapping.paths import compile_path

pytestmark = pytest.mark.slow  # Hypothesis: many examples

REPO = Path(__file__).resolve().parents[1]
NORMALIZED = load_mapping(REPO / "mappings" / "okta" / "normalized.toml")

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["null", "", "true", "false", "0", "12", "User", "AppInstance"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)


def _shaped(keys: list[str], value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Objects with some of Okta's keys, or anything at all."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, value)) | json_values


timestamps = st.sampled_from(
    [
        "2024-01-02T03:04:05.678Z",
        "2024-01-02T03:04:05.678123+05:30",
        "2017-09-31T22:23:07.777Z",
        "redacted",
        "2024-01-02",
        "",
    ]
) | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
targets = st.lists(
    _shaped(
        ["id", "type", "alternateId", "displayName", "detailEntry"],
        st.sampled_from(["User", "UserGroup", "AppInstance", "AppUser"]) | json_values,
    ),
    max_size=4,
)
okta_events = st.fixed_dictionaries(
    {},
    optional={
        "uuid": st.uuids().map(str) | json_values,
        "published": timestamps | json_values,
        "eventType": st.sampled_from(["user.session.start", "x.y"]) | json_values,
        "version": st.sampled_from(["0", 0]) | json_values,
        "outcome": _shaped(["result", "reason"], st.sampled_from(["SUCCESS", "DENY"]) | scalars),
        "actor": _shaped(["id", "type", "alternateId", "displayName"], scalars),
        "client": _shaped(
            ["ipAddress", "zone", "userAgent", "geographicalContext", "device", "id"],
            st.sampled_from(["10.0.0.1", "::1", "null"]) | json_values,
        ),
        "securityContext": _shaped(["asNumber", "isProxy", "risk", "ipDetails"], json_values),
        "debugContext": _shaped(
            ["debugData"],
            _shaped(["threatSuspected", "risk", "requestUri"], json_values),
        ),
        "request": _shaped(["ipChain"], st.lists(_shaped(["ip"], scalars), max_size=3)),
        "target": targets | json_values,
    },
)
events = okta_events | json_values

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "ip": (str,),
    "json": (str,),
    "int": (int,),
    "float": (float,),
    "bool": (bool,),
    "timestamp": (datetime,),
}


def _check_row(mapping: CompiledMapping, row: dict[str, Any]) -> None:
    assert list(row) == [column.name for column in mapping.columns]
    for column in mapping.columns:
        value = row[column.name]
        if value is None:
            continue
        if column.type.startswith("list["):
            assert isinstance(value, list)
            inner = column.type[5:-1]
            allowed: tuple[type, ...] = (dict,) if column.members else _PYTHON_TYPES[inner]
            assert all(item is None or isinstance(item, allowed) for item in value)
        else:
            assert isinstance(value, _PYTHON_TYPES[column.type])
        if column.type == "int":
            assert -(2**63) <= value < 2**63
        if column.type == "timestamp":
            assert value.tzinfo is UTC


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
def test_any_json_is_mapped_or_rejected(event: Any) -> None:
    """Arbitrary JSON gives a typed row with issues, or EventRejected; no other exception."""
    try:
        row, issues = NORMALIZED.apply(event)
    except EventRejected as rejected:
        assert str(rejected)
        return
    _check_row(NORMALIZED, row)
    assert all(isinstance(issue, str) and issue for issue in issues)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(events, max_size=8))
def test_batch_agrees_with_single_events(batch: list[Any]) -> None:
    """apply_batch gives the rows, issues and reasons of apply, and converts to Arrow."""
    result = NORMALIZED.apply_batch(batch)
    accepted, rejected, rows, issues = [], [], [], []
    for index, event in enumerate(batch):
        try:
            row, row_issues = NORMALIZED.apply(event)
        except EventRejected as err:
            rejected.append((index, str(err)))
            continue
        accepted.append(index)
        rows.append(row)
        issues.append(row_issues)
    assert result.accepted == accepted
    assert result.rejected == rejected
    assert result.issues == issues
    assert [
        {name: column[i] for name, column in result.columns.items()} for i in range(len(rows))
    ] == rows
    assert result.to_arrow(NORMALIZED).num_rows == len(accepted)


PATHS = [
    "$.uuid",
    "$.client.geographicalContext.geolocation.lat",
    "$.request.ipChain[*].ip",
    "$.target[?(@.type == 'User')].id",
    "$.target[?(@.type == 'AppUser')].alternateId",
    "$.target[*]",
    "$.target[0].id",
    "$.target[-1]",
    "$.*",
    "$.target[*].detailEntry[*]",
    "$",
]


@pytest.mark.parametrize("text", PATHS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=events)
def test_native_paths_match_jsonpath_ng(text: str, data: Any) -> None:
    """Compiled lookups find exactly what jsonpath-ng finds, in the same order."""
    compiled = compile_path(text)
    assert compiled.native
    expected = [match.value for match in jsonpath_parse(text).find(data)]
    assert compiled.get_all(data) == expected
    if compiled.singular:
        assert compiled.get_one(data) == (expected[0] if expected else None)
    first = compiled.first(frozenset({"null"}))(data)
    usable = [value for value in expected if value is not None and value != "null"]
    assert first == (usable[0] if usable else None)


DOCUMENT_FIELDS = """
[mapping]
name = "doc"
output = "document"

[fields."@timestamp"]
path = "$.published"
type = "timestamp"

[fields."event.outcome"]
path = "$.outcome.result"
values = { SUCCESS = "success", DENY = "failure" }
values_default = "unknown"

[fields."related.ip"]
path = "$.request.ipChain[*].ip"
type = "list[ip]"

[fields."okta.target"]
path = "$.target"
type = "list[json]"

[fields."okta.debug"]
path = "$.debugContext"
type = "json"
"""


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
def test_documents_are_json_ready(tmp_path_factory: pytest.TempPathFactory, event: Any) -> None:
    """apply_document gives plain JSON (or EventRejected) for any input."""
    path = tmp_path_factory.getbasetemp() / "document.toml"
    if not path.exists():
        path.write_text(DOCUMENT_FIELDS, encoding="utf-8")
    mapping = load_mapping(path)
    try:
        document = mapping.apply_document(event)
    except EventRejected:
        return
    assert orjson.loads(orjson.dumps(document)) == document

"""mappings/okta/ocsf.toml: golden events, required attributes per class, schema validation.

The same inputs as tests/test_mapping_ecs.py; expectations in ``tests/golden/ocsf/<case>.json``
(rewrite on purpose with ``OKTADUCK_UPDATE_GOLDEN=1``). The engine features this mapping needs
(``when``, ``epoch_ms``, one-item arrays ``name[].x``, ``merge``) are tested here too.
"""

from __future__ import annotations

import importlib.util
import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.base.errors import EventRejected, InvalidMapping
from ingest.mapping import CompiledMapping, load_mapping
from ingest.mapping.classify import OCSF_ACTIVITIES, OCSF_CATEGORIES, OCSF_CLASSES, OCSF_VERSION
from tests.helpers import REPO
from tests.helpers.golden import CASES, IDS, check_golden, documents, stale_expectations

MAPPINGS = REPO / "mappings" / "okta"

# Required attributes per class, OCSF 1.3.0 (https://schema.ocsf.io/1.3.0/classes/<name>,
# attributes whose requirement is "required", without the profiles we do not apply), plus the
# class constraints ("at least one of"). Every event also needs the base event's required
# attributes and metadata's (metadata.product.vendor_name, metadata.version).
BASE_REQUIRED = ("activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time",
                 "type_uid")  # fmt: skip
CLASS_REQUIRED: dict[int, tuple[str, ...]] = {
    2004: ("finding_info",),
    3001: ("user",),
    3002: ("user",),
    3004: ("entity",),
    3005: ("privileges", "user"),
    3006: ("group",),
    6003: ("actor", "api", "src_endpoint"),
}
CLASS_AT_LEAST_ONE: dict[int, tuple[str, ...]] = {
    3002: ("service", "dst_endpoint"),
    3006: ("privileges", "user"),
}
# Objects' required attributes and "at least one of" constraints (objects/<name> in 1.3.0).
OBJECT_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # attribute path: (required, at least one of)
    "user": ((), ("account", "name", "uid")),
    "actor.user": ((), ("account", "name", "uid")),
    "group": ((), ("name", "uid")),
    "entity": ((), ("name", "uid", "device", "group", "org", "policy", "user")),
    "finding_info": (("title", "uid"), ()),
    "api": (("operation",), ()),
    "service": ((), ("name", "uid")),
    "resource": ((), ("name", "uid")),
    "src_endpoint": ((), ("ip", "uid", "name", "hostname", "svc_name", "instance_uid")),
    "metadata.product": (("vendor_name",), ("name", "uid")),
    "metadata": (("product", "version"), ()),
}


# Top-level attributes each class defines (1.3.0, with the host profile for all but 6003),
# restricted to the ones this mapping can emit.
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


BASE_ATTRIBUTES = _words(
    "activity_id activity_name category_uid category_name class_uid class_name type_uid "
    "type_name time severity_id severity status_id status status_code status_detail message "
    "metadata unmapped"
)
CLASS_ATTRIBUTES: dict[int, frozenset[str]] = {
    2004: _words(
        "actor finding_info evidences resources action action_id disposition disposition_id"
    ),
    3001: _words("actor src_endpoint http_request user"),
    3002: _words(
        "actor src_endpoint http_request user session auth_protocol auth_protocol_id is_mfa "
        "is_remote service"
    ),
    3004: _words("actor src_endpoint http_request entity"),
    3005: _words("actor src_endpoint http_request user privileges resource"),
    3006: _words("actor src_endpoint http_request user group privileges resource"),
    6003: _words("actor src_endpoint http_request api resources"),
}


@pytest.fixture(scope="module")
def ocsf() -> CompiledMapping:
    return load_mapping(MAPPINGS / "ocsf.toml")


@pytest.fixture(scope="module")
def outputs(ocsf: CompiledMapping) -> list[tuple[str, dict[str, Any]]]:
    return documents(ocsf)


def _broken(ocsf: CompiledMapping, name: str) -> set[str]:
    """Top-level attributes of a case whose input value was invalid (it has a mapping issue).

    Such an object may lack what its constraints need (an invalid client IP leaves
    src_endpoint without ip): the issue is recorded, and the checks below excuse it.
    """
    event = next(event for case, _, event in CASES if case == name)
    _, issues = ocsf.apply(event)
    return {issue.split(":", 1)[0].split(".", 1)[0] for issue in issues}


@pytest.mark.parametrize(("name", "source", "event"), CASES, ids=IDS)
def test_golden_case(ocsf: CompiledMapping, name: str, source: str, event: Any) -> None:
    """Each input maps to exactly its stored OCSF event (or rejection reason)."""
    check_golden(ocsf, "ocsf", name, source, event)


def test_every_expectation_has_an_input() -> None:
    """No stale expectation files in tests/golden/ocsf."""
    assert stale_expectations("ocsf") == []


def _get(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def test_required_attributes_per_class(
    ocsf: CompiledMapping, outputs: list[tuple[str, dict[str, Any]]]
) -> None:
    """Every golden output has the base's and its class's required attributes and objects."""
    for name, document in outputs:
        broken = _broken(ocsf, name)
        class_uid = document["class_uid"]
        for attribute in (*BASE_REQUIRED, *CLASS_REQUIRED[class_uid]):
            assert document.get(attribute) not in (None, [], {}), (name, attribute)
        one_of = CLASS_AT_LEAST_ONE.get(class_uid)
        if one_of:
            assert any(document.get(a) for a in one_of), (name, one_of)
        for path, (required, at_least_one) in OBJECT_RULES.items():
            value = _get(document, path)
            if value is None or path.split(".", 1)[0] in broken:
                continue
            assert all(value.get(key) is not None for key in required), (name, path)
            if at_least_one:
                assert any(value.get(key) is not None for key in at_least_one), (name, path)


def test_only_attributes_of_the_class(outputs: list[tuple[str, dict[str, Any]]]) -> None:
    """Class-specific attributes appear only in events of a class that defines them."""
    for name, document in outputs:
        allowed = BASE_ATTRIBUTES | CLASS_ATTRIBUTES[document["class_uid"]]
        assert sorted(set(document) - allowed) == [], name


def test_ids_are_consistent(outputs: list[tuple[str, dict[str, Any]]]) -> None:
    """category_uid, type_uid, captions and status follow from class, activity and outcome."""
    for name, document in outputs:
        class_uid, activity_id = document["class_uid"], document["activity_id"]
        assert class_uid in OCSF_CLASSES, name
        assert activity_id in OCSF_ACTIVITIES[class_uid], name
        assert document["category_uid"] == class_uid // 1000, name
        assert document["type_uid"] == class_uid * 100 + activity_id, name
        assert document["class_name"] == OCSF_CLASSES[class_uid], name
        assert document["category_name"] == OCSF_CATEGORIES[class_uid // 1000], name
        assert document["activity_name"] == OCSF_ACTIVITIES[class_uid][activity_id], name
        assert document["severity_id"] in (0, 1, 2, 3, 4, 5, 6, 99), name
        if class_uid == 2004:  # a finding's status is its lifecycle; the outcome is its action
            assert "status_id" not in document and "status" not in document, name
            assert document["action_id"] in (0, 1, 2, 99), name
            assert document["disposition_id"] in (0, 1, 2, 15, 23, 99), name
        else:
            assert document["status_id"] in (0, 1, 2, 99), name
        assert document["metadata"]["version"] == OCSF_VERSION, name


def test_time_is_epoch_milliseconds(ocsf: CompiledMapping) -> None:
    """time is published in milliseconds since the epoch; original_time keeps the text."""
    event = CASES[0][2]
    document = ocsf.apply_document(event)
    published = datetime.fromisoformat(event["published"].replace("Z", "+00:00"))
    assert document["time"] == int(published.timestamp() * 1000)
    assert document["metadata"]["original_time"] == event["published"]
    assert document["metadata"]["uid"] == event["uuid"]


def _feed(name: str) -> dict[str, Any]:
    return next(event for case, _, event in CASES if case == f"feed-{name}")


@pytest.mark.parametrize(
    ("name", "class_uid", "activity_id", "status_id"),
    [
        ("user-session-start-success", 3002, 1, 1),
        ("user-session-start-failure", 3002, 1, 2),
        ("user-session-start-deny", 3002, 1, 2),
        ("user-session-start-unknown-actor", 3002, 1, 2),
        ("user-session-end", 3002, 2, 1),
        ("user-authentication-sso", 3002, 1, 1),
        ("user-authentication-auth-via-mfa", 3002, 1, 1),
        ("user-mfa-okta-verify-deny-push", 3002, 1, 2),
        ("group-user-membership-add", 3006, 3, 1),
        ("group-user-membership-remove", 3006, 4, 1),
        ("group-privilege-grant", 3006, 1, 1),
        ("application-user-membership-add", 3005, 1, 1),
        ("application-user-membership-remove", 3005, 2, 1),
        ("user-account-privilege-grant", 3005, 1, 1),
        ("user-account-lock", 3001, 9, 2),
        ("user-lifecycle-create", 3001, 1, 1),
        ("user-mfa-factor-deactivate", 3001, 11, 1),
        ("user-mfa-factor-suspend", 3001, 11, 1),
        ("system-api-token-revoke", 3004, 4, 1),
        ("device-user-add", 3004, 1, 1),
        ("system-api-token-create", 3004, 1, 1),
        ("policy-rule-update", 3004, 3, 1),
        ("zone-deactivate", 3004, 11, 1),
        ("system-idp-lifecycle-create", 3004, 1, 1),
        ("security-threat-detected", 2004, 1, None),
        ("security-request-blocked", 2004, 1, None),
        ("system-org-rate-limit-violation", 6003, 99, 2),
        ("policy-evaluate-sign-on-challenge", 3002, 99, 99),
    ],
)
def test_feed_event_classes(
    ocsf: CompiledMapping, name: str, class_uid: int, activity_id: int, status_id: int | None
) -> None:
    """The feed event types land in the intended class and activity, with the right status
    (none for a finding: Okta keeps no lifecycle of its detections)."""
    document = ocsf.apply_document(_feed(name))
    assert (document["class_uid"], document["activity_id"]) == (class_uid, activity_id)
    assert document.get("status_id") == status_id


def test_class_objects_come_from_the_right_targets(ocsf: CompiledMapping) -> None:
    """user is the target user (else the actor), group the UserGroup, resource the app."""
    event = _feed("group-user-membership-add")
    document = ocsf.apply_document(event)
    user = next(t for t in event["target"] if t["type"] == "User")
    group = next(t for t in event["target"] if t["type"] == "UserGroup")
    assert document["user"]["uid"] == user["id"]
    assert document["group"] == {"uid": group["id"], "name": group["displayName"]}
    assert document["actor"]["user"]["uid"] == event["actor"]["id"]

    event = _feed("application-user-membership-add")
    document = ocsf.apply_document(event)
    app = next(t for t in event["target"] if t["type"] == "AppInstance")
    assert document["resource"] == {
        "uid": app["id"],
        "name": app["displayName"],
        "type": "AppInstance",
    }

    event = _feed("user-account-privilege-grant")
    role = event["debugContext"]["debugData"]["privilegeGranted"]
    assert ocsf.apply_document(event)["privileges"] == [role]

    event = _feed("user-session-start-success")
    assert ocsf.apply_document(event)["user"]["uid"] == event["actor"]["id"]


def test_detection_finding_keeps_the_source(ocsf: CompiledMapping) -> None:
    """A ThreatInsight event is a finding with the request's source IP in its evidence."""
    event = _feed("security-threat-detected")
    document = ocsf.apply_document(event)
    assert document["finding_info"]["uid"] == event["uuid"]
    assert document["evidences"][0]["src_endpoint"]["ip"] == event["client"]["ipAddress"]
    assert "src_endpoint" not in document


def test_defaults_for_unlisted_event_types_are_consistent() -> None:
    """An event type the catalog does not list is 6003 API Activity, activity 0 Unknown."""
    fields = tomllib.loads((MAPPINGS / "ocsf.toml").read_text("utf-8"))["fields"]
    class_uid, activity_id = fields["class_uid"]["default"], fields["activity_id"]["default"]
    assert class_uid == 6003 and activity_id == 0
    assert fields["category_uid"]["default"] == class_uid // 1000
    assert fields["type_uid"]["default"] == class_uid * 100 + activity_id
    assert fields["class_name"]["default"] == OCSF_CLASSES[class_uid]
    assert fields["activity_name"]["default"] == OCSF_ACTIVITIES[class_uid][activity_id]
    assert fields["type_name"]["default"] == f"API Activity: {OCSF_ACTIVITIES[6003][0]}"


def test_lookup_entries_are_consistent() -> None:
    """Every entry of lookups/ocsf_event_types.json has ids that agree with each other."""
    table = json.loads((MAPPINGS / "lookups" / "ocsf_event_types.json").read_text("utf-8"))
    for event_type, entry in table.items():
        class_uid, activity_id = entry["class_uid"], entry["activity_id"]
        assert activity_id in OCSF_ACTIVITIES[class_uid], event_type
        assert entry["category_uid"] == class_uid // 1000, event_type
        assert entry["type_uid"] == class_uid * 100 + activity_id, event_type
        assert entry.get("is_mfa") in (None, True), event_type
        assert "is_mfa" not in entry or class_uid == 3002, event_type


_VALIDATOR = importlib.util.find_spec("ocsf_json_schema") and importlib.util.find_spec("jsonschema")


@pytest.mark.skipif(not _VALIDATOR, reason="ocsf-json-schema and jsonschema are not installed")
def test_outputs_validate_against_the_ocsf_schema(
    ocsf: CompiledMapping, outputs: list[tuple[str, dict[str, Any]]]
) -> None:
    """Every golden output validates against the OCSF 1.3.0 JSON schema of its class."""
    import jsonschema
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=OCSF_VERSION))
    validators: dict[tuple[int, tuple[str, ...]], Any] = {}
    problems = []
    for name, document in outputs:
        profiles = tuple(document["metadata"].get("profiles", []))
        key = (document["class_uid"], profiles)
        if key not in validators:
            class_name = schema.lookup_class_name_from_uid(document["class_uid"])
            class_schema = schema.get_class_schema(class_name, list(profiles))
            validators[key] = jsonschema.Draft202012Validator(class_schema)
        broken = _broken(ocsf, name)
        for error in validators[key].iter_errors(document):
            if error.absolute_path and str(error.absolute_path[0]) in broken:
                continue
            problems.append(f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    assert problems == []


# --- engine features used by the ECS and OCSF mappings -----------------------------------------

_HEAD = '[mapping]\nname = "t"\noutput = "document"\n'


def _mapping(tmp_path: Path, body: str) -> CompiledMapping:
    path = tmp_path / "t.toml"
    path.write_text(_HEAD + body, encoding="utf-8")
    return load_mapping(path)


def test_when_keeps_a_value_only_where_the_gate_is_open(tmp_path: Path) -> None:
    """when = {field, in}: the value where the gate field's value is listed, else left out."""
    mapping = _mapping(
        tmp_path,
        '[fields.kind]\npath = "$.kind"\ntype = "int"\n'
        '[fields."x.ip"]\npath = "$.ip"\ntype = "ip"\nwhen = { field = "kind", in = [1, 3] }\n'
        '[fields.y]\nconst = "z"\nwhen = { field = "kind", in = [2] }\ndefault = "d"\n',
    )
    assert mapping.apply_document({"kind": 1, "ip": "10.0.0.1"}) == {
        "kind": 1,
        "x": {"ip": "10.0.0.1"},
    }
    assert mapping.apply_document({"kind": 2, "ip": "10.0.0.1"}) == {"kind": 2, "y": "z"}
    # a shut gate does not read the value, so a bad value reports nothing
    assert mapping.apply({"kind": 2, "ip": "bad"})[1] == []
    assert mapping.apply({"kind": 3, "ip": "bad"})[1] == ["x.ip: not an IP address: 'bad'"]
    events = [
        {"kind": k, "ip": ip}
        for k, ip in [(1, "bad"), (2, "10.0.0.2"), (3, "10.0.0.3"), (None, "x")]
    ]
    batch = mapping.apply_batch(events)
    singles = [mapping.apply(event) for event in events]
    assert batch.columns["x.ip"] == [row["x.ip"] for row, _ in singles]
    assert batch.columns["y"] == [row["y"] for row, _ in singles]
    assert batch.issues == [issues for _, issues in singles]


_B = "[fields.b]\nconst = 1\n"
_BAD_FILES = [
    ('[fields.a]\nconst = 1\nwhen = { field = "nope", in = [1] }\n', "when names unknown field"),
    ('[fields.a]\nconst = 1\nwhen = { field = "a", in = [1] }\n', "when cannot name the field"),
    (
        '[fields.a]\nconst = 1\nwhen = { field = "b", in = [] }\n' + _B,
        "when.in must be a non-empty",
    ),
    (
        '[fields.a]\npath = "$.a"\nrequired = true\nwhen = { field = "b", in = [1] }\n' + _B,
        "a required field cannot have when",
    ),
    (
        '[fields.a]\nconst = 1\nwhen = { field = "b", in = [1] }\n[fields.b]\nfrom = "a"\n',
        "when and from form a cycle: a -> b -> a",
    ),
    ('[fields.a]\nconst = 1\nwhen = { field = "b", else = 2 }\n' + _B, "when: unknown key 'else'"),
    ('[fields.a]\npath = "$.a"\nmerge = true\ntype = "list[string]"\n', "merge only applies with"),
    ('[fields.a]\npaths = ["$.a"]\nmerge = true\n', "merge makes a list"),
    ('[fields."a[].b"]\nconst = 1\n[fields."a.c"]\nconst = 2\n', "both a one-item array and"),
    ('[fields."a.b[]"]\nconst = 1\n', "not a valid document field name"),
]


@pytest.mark.parametrize(("body", "problem"), _BAD_FILES)
def test_new_keys_are_validated(tmp_path: Path, body: str, problem: str) -> None:
    """when, merge and one-item-array names are checked when the file is loaded."""
    with pytest.raises(InvalidMapping) as raised:
        _mapping(tmp_path, body)
    assert problem in str(raised.value)


def test_merge_collects_every_path_once(tmp_path: Path) -> None:
    """merge = true: matches of every path, in order, without NULLs, null-likes or repeats."""
    mapping = _mapping(
        tmp_path,
        '[fields.ips]\npaths = ["$.ip", "$.chain[*].ip", "$.more"]\nmerge = true\n'
        'type = "list[string]"\nnull_likes = ["null"]\n',
    )
    event = {
        "ip": "1.1.1.1",
        "chain": [{"ip": "1.1.1.1"}, {"ip": "null"}, {"ip": "2.2.2.2"}],
        "more": ["3.3.3.3", None],
    }
    assert mapping.apply_document(event) == {"ips": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]}
    assert mapping.apply_document({"ip": "null"}) == {}


def test_epoch_ms_type(tmp_path: Path) -> None:
    """epoch_ms: an RFC 3339 time as whole milliseconds since 1970 (sub-ms dropped)."""
    mapping = _mapping(tmp_path, '[fields.t]\npath = "$.t"\ntype = "epoch_ms"\n')
    assert mapping.apply_document({"t": "1970-01-01T00:00:01.234Z"}) == {"t": 1234}
    assert mapping.apply_document({"t": "2024-09-24T10:15:02.417999+02:00"}) == {"t": 1727165702417}
    assert mapping.apply_document({"t": "1969-12-31T23:59:59.999Z"}) == {"t": -1}
    row, issues = mapping.apply({"t": 1727165702417})
    assert row["t"] is None and issues == ["t: expected an RFC 3339 timestamp, got 1727165702417"]
    assert mapping.columns[0].duckdb_type == "BIGINT"


def test_one_item_array_names(tmp_path: Path) -> None:
    """A word ending in [] before a dot makes a one-item array holding an object."""
    mapping = _mapping(
        tmp_path,
        '[fields."ev[].src.ip"]\npath = "$.ip"\n'
        '[fields."ev[].src.port"]\npath = "$.port"\ntype = "int"\n',
    )
    assert mapping.apply_document({"ip": "1.2.3.4", "port": 22}) == {
        "ev": [{"src": {"ip": "1.2.3.4", "port": 22}}]
    }
    assert mapping.apply_document({}) == {}


def test_rejections_match_the_normalized_mapping(ocsf: CompiledMapping) -> None:
    """OCSF rejects what normalized rejects for want of uuid, published or eventType."""
    normalized = load_mapping(MAPPINGS / "normalized.toml")
    for name, _, event in CASES:
        try:
            normalized.apply(event)
            expected = True
        except EventRejected:
            expected = False
        try:
            ocsf.apply(event)
            actual = True
        except EventRejected:
            actual = False
        assert actual == expected, name


@pytest.mark.parametrize("name", ["ecs", "ocsf"])
def test_batch_agrees_with_single_events(name: str) -> None:
    """apply_batch over all golden inputs gives the same rows, issues and reasons as apply."""
    mapping = load_mapping(MAPPINGS / f"{name}.toml")
    events = [case[2] for case in CASES]
    batch = mapping.apply_batch(events)
    accepted, rejected, rows, issues = [], [], [], []
    for index, event in enumerate(events):
        try:
            row, found = mapping.apply(event)
        except EventRejected as reason:
            rejected.append((index, str(reason)))
            continue
        accepted.append(index)
        rows.append(row)
        issues.append(found)
    assert batch.accepted == accepted
    assert batch.rejected == rejected
    assert batch.issues == issues
    for position, row in enumerate(rows):
        assert {key: column[position] for key, column in batch.columns.items()} == row


@pytest.mark.parametrize(
    ("result", "action", "disposition"),
    [
        ("ALLOW", (1, "Allowed"), (1, "Allowed")),
        ("DENY", (2, "Denied"), (2, "Blocked")),
        ("RATE_LIMIT", (2, "Denied"), (2, "Blocked")),
        ("SUCCESS", (0, "Unknown"), (15, "Detected")),
        ("CHALLENGE", (99, "CHALLENGE"), (23, "Challenge")),
        ("FAILURE", (99, "FAILURE"), (99, "FAILURE")),
        ("UNKNOWN", (0, "Unknown"), (0, "Unknown")),
        (None, (0, "Unknown"), (0, "Unknown")),
    ],
)
def test_a_finding_carries_the_outcome_as_action_and_disposition(
    ocsf: CompiledMapping,
    result: str | None,
    action: tuple[int, str],
    disposition: tuple[int, str],
) -> None:
    """Detection Finding: status_id would be the finding's lifecycle, which Okta does not keep,
    so it is left out; what happened to the request (ThreatInsight: ALLOW in log mode, DENY or
    RATE_LIMIT when it enforces) is action_id and disposition_id of the security_control
    profile. Other classes keep the outcome as status_id."""
    event = dict(_feed("security-threat-detected"))
    event["outcome"] = None if result is None else {"result": result, "reason": "Password Spray"}
    document = ocsf.apply_document(event)
    assert (document["action_id"], document["action"]) == action
    assert (document["disposition_id"], document["disposition"]) == disposition
    assert "status_id" not in document and "status" not in document
    assert document["metadata"]["profiles"] == ["host", "security_control"]
    assert document.get("status_code") == result

    sign_in = dict(_feed("user-session-start-success"))
    sign_in["outcome"] = event["outcome"]
    other = ocsf.apply_document(sign_in)
    assert "action_id" not in other and "disposition_id" not in other
    assert other["metadata"]["profiles"] == ["host"]
    assert other["status_id"] in (0, 1, 2, 99)


def test_finding_enums_are_those_of_the_ocsf_schema() -> None:
    """The action_id and disposition_id values used are defined by OCSF 1.3.0's Detection
    Finding (read from the schema the ocsf-json-schema package ships), with their captions."""
    spec = importlib.util.find_spec("ocsf_json_schema")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ocsf-json-schema is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    schema = json.loads((folder / "ocsf" / f"{OCSF_VERSION}.json").read_text(encoding="utf-8"))
    attributes = schema["classes"]["detection_finding"]["attributes"]
    mapping = tomllib.loads((MAPPINGS / "ocsf.toml").read_text(encoding="utf-8"))["fields"]
    for name in ("action", "disposition"):
        enum = attributes[f"{name}_id"]["enum"]
        ids = mapping[f"{name}_id"]["values"]
        captions = mapping[name]["values"]
        assert ids.keys() == captions.keys(), name
        for result, value in ids.items():
            assert str(value) in enum, (name, result)
            assert enum[str(value)]["caption"] == captions[result], (name, result)
    assert set(attributes["status_id"]["enum"]) >= {"1", "2", "3", "4"}, "status: a lifecycle"

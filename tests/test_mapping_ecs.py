"""mappings/okta/ecs.toml: golden documents, ECS categorization values, Elastic's field set.

Inputs are the real samples and quirk events of ``tests/test_mapping_golden.py`` plus one
synthesized event per feed event type in ``tests/golden/inputs/feeds/*.json``. Expectations
live in ``tests/golden/ecs/<case>.json``; rewrite them on purpose with

    OKTADUCK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_mapping_ecs.py tests/test_mapping_ocsf.py

and review the diff.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest

from ingest.mapping import CompiledMapping, load_mapping
from ingest.mapping.classify import ECS_CATEGORIES, ECS_EXPECTED, ECS_FALLBACK, ECS_TYPES
from tests.helpers import REPO
from tests.helpers.golden import (
    CASES,
    IDS,
    check_golden,
    documents,
    stale_expectations,
)

MAPPINGS = REPO / "mappings" / "okta"


@pytest.fixture(scope="module")
def ecs() -> CompiledMapping:
    return load_mapping(MAPPINGS / "ecs.toml")


@pytest.mark.parametrize(("name", "source", "event"), CASES, ids=IDS)
def test_golden_case(ecs: CompiledMapping, name: str, source: str, event: Any) -> None:
    """Each input maps to exactly its stored ECS document (or rejection reason)."""
    check_golden(ecs, "ecs", name, source, event)


def test_every_expectation_has_an_input() -> None:
    """No stale expectation files in tests/golden/ecs."""
    assert stale_expectations("ecs") == []


def test_feed_inputs_cover_the_feed_event_types() -> None:
    """The synthesized inputs cover every event type the feeds and SOC queries rely on."""
    wanted = {
        "user.session.start",
        "user.authentication.sso",
        "user.authentication.auth_via_mfa",
        "user.authentication.verify",
        "group.user_membership.add",
        "group.user_membership.remove",
        "application.user_membership.add",
        "application.user_membership.remove",
        "application.user_membership.change_username",
        "user.account.lock",
        "security.threat.detected",
        "user.mfa.okta_verify.deny_push",
        "user.account.privilege.grant",
        "system.api_token.create",
        "policy.rule.update",
        "zone.deactivate",
        "system.idp.lifecycle.create",
        "user.session.impersonation.initiate",
        "user.mfa.factor.suspend",
        "system.api_token.revoke",
        "system.org.rate_limit.violation",
    }
    present = {event["eventType"] for name, _, event in CASES if name.startswith("feed-")}
    assert wanted <= present
    results = {
        (event["eventType"], (event.get("outcome") or {}).get("result"), event["actor"]["id"])
        for name, _, event in CASES
        if name.startswith("feed-")
    }
    sign_ins = {
        (result, actor == "unknown")
        for kind, result, actor in results
        if kind == "user.session.start"
    }
    assert {("SUCCESS", False), ("FAILURE", False), ("DENY", False), ("FAILURE", True)} <= sign_ins


def test_categorization_values_are_ecs_allowed_values(ecs: CompiledMapping) -> None:
    """event.category / event.type / event.kind / event.outcome use ECS's allowed values only."""
    for name, document in documents(ecs):
        event = document["event"]
        assert event["category"] and set(event["category"]) <= set(ECS_CATEGORIES), name
        assert event["type"] and set(event["type"]) <= set(ECS_TYPES), name
        assert event["kind"] in ("event", "alert"), name
        assert event["outcome"] in ("success", "failure", "unknown"), name


def test_lookup_table_values_are_allowed_and_expected() -> None:
    """Every entry of lookups/ecs_event_types.json is valid ECS, with expected type pairs."""
    table = json.loads((MAPPINGS / "lookups" / "ecs_event_types.json").read_text("utf-8"))
    for event_type, entry in table.items():
        assert entry["category"] and set(entry["category"]) <= set(ECS_CATEGORIES), event_type
        assert entry["type"] and set(entry["type"]) <= set(ECS_TYPES), event_type
        assert entry["kind"] in ("event", "alert"), event_type
        for kind in entry["type"]:
            assert any(kind in ECS_EXPECTED[c] for c in entry["category"]), (event_type, kind)


def test_defaults_for_unlisted_event_types_are_the_fallback() -> None:
    """An event type the catalog does not list gets the builder's fallback categorization."""
    fields = tomllib.loads((MAPPINGS / "ecs.toml").read_text("utf-8"))["fields"]
    assert fields["event.category"]["default"] == list(ECS_FALLBACK.category)
    assert fields["event.type"]["default"] == list(ECS_FALLBACK.type)
    assert fields["event.kind"]["default"] == ECS_FALLBACK.kind


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        ("SUCCESS", "success"),
        ("ALLOW", "success"),
        ("FAILURE", "failure"),
        ("DENY", "failure"),
        ("CHALLENGE", "unknown"),
        (None, "unknown"),
    ],
)
def test_outcome(ecs: CompiledMapping, result: str | None, outcome: str) -> None:
    """ALLOW counts as success and DENY as failure; anything else, or none, is unknown."""
    event = dict(CASES[0][2])
    event["outcome"] = None if result is None else {"result": result, "reason": None}
    assert ecs.apply_document(event)["event"]["outcome"] == outcome


def test_target_user_email_is_filled(ecs: CompiledMapping) -> None:
    """user.target.* comes from the User and UserGroup targets, user.target.email included."""
    event = next(e for n, _, e in CASES if n == "feed-group-user-membership-add")
    target = ecs.apply_document(event)["user"]["target"]
    user = next(t for t in event["target"] if t["type"] == "User")
    group = next(t for t in event["target"] if t["type"] == "UserGroup")
    assert target["email"] == user["alternateId"]
    assert target["id"] == user["id"] and target["full_name"] == user["displayName"]
    assert target["group"] == {"id": group["id"], "name": group["displayName"]}


def test_what_elastic_loses_is_kept(ecs: CompiledMapping) -> None:
    """okta.severity, okta.version and okta.legacy_event_type are kept."""
    event = CASES[0][2]
    okta = ecs.apply_document(event)["okta"]
    assert okta["severity"] == event["severity"]
    assert okta["version"] == str(event["version"])
    assert okta["legacy_event_type"] == event["legacyEventType"]


def test_related_lists_each_value_once(ecs: CompiledMapping) -> None:
    """related.ip and related.user hold every IP and user name of the event, each once."""
    event = next(e for n, _, e in CASES if n == "feed-group-user-membership-add")
    related = ecs.apply_document(event)["related"]
    chain = [hop["ip"] for hop in event["request"]["ipChain"]]
    assert related["ip"] == list(dict.fromkeys([event["client"]["ipAddress"], *chain]))
    user = next(t for t in event["target"] if t["type"] == "User")
    assert related["user"] == [
        event["actor"]["alternateId"],
        event["actor"]["displayName"],
        user["alternateId"],
        user["displayName"],
    ]


def _words(text: str) -> list[str]:
    return text.split()


# The fields Elastic's Okta integration fills (its ingest pipeline, packages/okta/data_stream/
# system/elasticsearch/ingest_pipeline/*.yml, and fields/fields.yml): ecs.toml declares each.
ELASTIC_FIELDS = _words(
    """
@timestamp event.id event.action event.category event.type event.outcome event.kind
event.dataset event.module message user.name user.full_name client.user.id client.user.name
client.user.full_name source.user.id source.user.name source.user.full_name user.target.id
user.target.full_name user.target.email user.target.group.id user.target.group.name client.ip
source.ip client.domain source.domain client.as.organization.name client.geo.city_name
client.geo.region_name client.geo.country_name client.geo.location.lat client.geo.location.lon
source.as.number source.as.organization.name source.geo.city_name source.geo.region_name
source.geo.country_name source.geo.location.lat source.geo.location.lon user_agent.original
user_agent.name user_agent.os.name user_agent.device.name related.ip related.user okta.uuid
okta.event_type okta.version okta.severity okta.display_message okta.actor.id okta.actor.type
okta.actor.alternate_id okta.actor.display_name okta.client.ip
okta.client.user_agent.raw_user_agent okta.client.user_agent.os okta.client.user_agent.browser
okta.client.zone okta.client.device okta.client.id okta.device.id okta.device.name
okta.device.os_platform okta.device.os_version okta.device.managed okta.device.registered
okta.device.disk_encryption_type okta.device.screen_lock_type
okta.device.secure_hardware_present okta.device.device_integrator okta.outcome.reason
okta.outcome.result okta.target okta.transaction.id okta.transaction.type
okta.transaction.detail.request_api_token_id okta.debug_context.debug_data.authn_request_id
okta.debug_context.debug_data.device_fingerprint okta.debug_context.debug_data.dt_hash
okta.debug_context.debug_data.factor okta.debug_context.debug_data.request_id
okta.debug_context.debug_data.request_uri okta.debug_context.debug_data.threat_suspected
okta.debug_context.debug_data.risk_level okta.debug_context.debug_data.risk_reasons
okta.debug_context.debug_data.url okta.debug_context.debug_data.flattened
okta.debug_context.debug_data.client_secret okta.debug_context.debug_data.requested_scopes
okta.debug_context.debug_data.granted_scopes okta.debug_context.debug_data.grant_type
okta.authentication_context.authentication_provider
okta.authentication_context.authentication_step okta.authentication_context.credential_provider
okta.authentication_context.credential_type okta.authentication_context.issuer.id
okta.authentication_context.issuer.type okta.authentication_context.external_session_id
okta.authentication_context.interface okta.security_context.as.number
okta.security_context.as.organization.name okta.security_context.isp
okta.security_context.domain okta.security_context.is_proxy okta.request.ip_chain
user.email user.id user.target.name source.geo.postal_code okta.legacy_event_type
"""
)


def test_declares_every_field_elastic_fills(ecs: CompiledMapping) -> None:
    """ecs.toml has every field of Elastic's Okta integration (and the ones it loses)."""
    declared = {column.name for column in ecs.columns}
    assert sorted(set(ELASTIC_FIELDS) - declared) == []


def test_every_field_is_filled_by_some_golden_input(ecs: CompiledMapping) -> None:
    """No declared field stays empty over all inputs (a field never filled is a bug)."""
    rare = {  # fields the inputs here do not carry (newer or rarer Okta properties)
        "okta.device.id", "okta.device.name", "okta.device.os_platform", "okta.device.os_version",
        "okta.device.managed", "okta.device.registered", "okta.device.disk_encryption_type",
        "okta.device.screen_lock_type", "okta.device.secure_hardware_present",
        "okta.device.device_integrator", "okta.transaction.detail.request_api_token_id",
        "okta.debug_context.debug_data.factor", "okta.debug_context.debug_data.client_secret",
        "okta.debug_context.debug_data.requested_scopes",
        "okta.debug_context.debug_data.granted_scopes", "okta.debug_context.debug_data.grant_type",
        "okta.authentication_context.issuer.id", "okta.authentication_context.issuer.type",
        "okta.authentication_context.interface", "okta.client.id",
    }  # fmt: skip
    filled: set[str] = set()
    for _, document in documents(ecs):
        filled |= set(_leaf_paths(document))
    missing = [c.name for c in ecs.columns if c.name not in filled and c.name not in rare]
    assert missing == []


def _leaf_paths(document: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths.append(path)
            paths.extend(_leaf_paths(value, path + "."))
        else:
            paths.append(path)
    return paths


def test_a_device_assigned_to_a_user_is_not_a_user_creation(ecs: CompiledMapping) -> None:
    """device.user.add links a device to a user; no account is made, so it is not iam + user +
    creation (Elastic's integration sets no category for it): a host event like the other
    device.* types, and device.user.remove likewise is no user deletion."""
    event = next(e for n, _, e in CASES if n == "feed-device-user-add")
    document = ecs.apply_document(event)["event"]
    assert document["category"] == ["host"] and document["type"] == ["info"]
    table = json.loads((MAPPINGS / "lookups" / "ecs_event_types.json").read_text("utf-8"))
    for event_type in ("device.user.add", "device.user.remove"):
        assert "iam" not in table[event_type]["category"], event_type
        assert not {"user", "creation", "deletion"} & set(table[event_type]["type"]), event_type
    assert table["user.lifecycle.create"]["type"] == ["user", "creation"]

"""The event generator: realistic, deterministic events with the right targets per type."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.simulate import event_types
from ingest.simulate.generator import EventGenerator, feed_types
from tests.helpers.catalog import CATALOG

START = datetime(2026, 10, 31, tzinfo=UTC)
END = START + timedelta(hours=24)
KEY_ORDER = [
    "uuid",
    "published",
    "eventType",
    "version",
    "severity",
    "legacyEventType",
    "displayMessage",
    "actor",
    "client",
    "device",
    "authenticationContext",
    "outcome",
    "securityContext",
    "debugContext",
    "request",
    "target",
    "transaction",
]
PUBLISHED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    return EventGenerator(seed=7).stream(3000, START, END)


def types_of(event: dict[str, Any]) -> list[str]:
    return [t["type"] for t in event["target"] or []]


def test_same_seed_gives_identical_events_and_other_seeds_differ() -> None:
    first = EventGenerator(seed=3).stream(300, START, END)
    again = EventGenerator(seed=3).stream(300, START, END)
    other = EventGenerator(seed=4).stream(300, START, END)
    assert orjson.dumps(first) == orjson.dumps(again)
    assert {e["uuid"] for e in first}.isdisjoint({e["uuid"] for e in other})


def test_events_have_okta_key_order_and_formats(stream: list[dict[str, Any]]) -> None:
    for event in stream[:200]:
        assert list(event) == KEY_ORDER
        assert PUBLISHED.fullmatch(event["published"])
        assert event["version"] == "0"
        assert str(uuid.UUID(event["uuid"])) == event["uuid"]


def test_uuids_are_time_based_on_the_published_time() -> None:
    event = EventGenerator().event("user.session.start", START + timedelta(milliseconds=5))
    stamp = uuid.UUID(event["uuid"]).time  # 100 ns ticks since 1582-10-15
    published = datetime(1582, 10, 15, tzinfo=UTC) + timedelta(microseconds=stamp // 10)
    assert uuid.UUID(event["uuid"]).version == 1
    assert published.replace(microsecond=published.microsecond // 1000 * 1000) == START + (
        timedelta(milliseconds=5)
    )


def test_population_looks_like_an_okta_org() -> None:
    gen = EventGenerator()
    assert len(gen.users) == 50 and len({u.id for u in gen.users}) == 50
    assert all(re.fullmatch(r"00u[A-Za-z0-9]{17}", u.id) for u in gen.users)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+@example\.com", u.login) for u in gen.users)
    assert len(gen.groups) == 10 and all(re.fullmatch(r"00g\w{17}", g.id) for g in gen.groups)
    assert len(gen.apps) == 8 and all(re.fullmatch(r"0oa\w{17}", a.id) for a in gen.apps)
    assert gen.admins and all(u.admin for u in gen.admins)


def test_stream_is_sorted_in_range_and_shares_some_milliseconds(
    stream: list[dict[str, Any]],
) -> None:
    published = [e["published"] for e in stream]
    assert len(stream) == 3000
    assert published == sorted(published)
    assert published[0] >= "2026-10-31T00:00:00.000Z" and published[-1] < "2026-11-01T00:00:00"
    shared = sum(1 for n in Counter(published).values() if n > 1)
    assert 10 < shared < 300
    assert len({e["uuid"] for e in stream}) == 3000


def test_stream_mix_is_dominated_by_sign_ins_sso_and_mfa(stream: list[dict[str, Any]]) -> None:
    counts = Counter(e["eventType"] for e in stream)
    common = ("user.session.start", "user.authentication.sso", "user.authentication.auth_via_mfa")
    assert sum(counts[t] for t in common) > 0.7 * len(stream)
    assert counts["group.user_membership.add"] and counts["application.user_membership.add"]
    assert len(counts) > 20  # rare catalog types show up too
    starts = [e for e in stream if e["eventType"] == "user.session.start"]
    results = Counter(e["outcome"]["result"] for e in starts)
    assert results["FAILURE"] and results["DENY"] and results["SUCCESS"]


def test_stream_carries_the_known_quirks(stream: list[dict[str, Any]]) -> None:
    clients = [e["client"] for e in stream]
    assert sum(c["zone"] == "null" for c in clients) > 0.7 * len(stream)
    assert any(c["ipAddress"] == "null" and c["geographicalContext"] is None for c in clients)
    assert any(e["device"] is not None for e in stream)
    assert sum(e["device"] is None for e in stream) > 0.5 * len(stream)
    assert any(e["outcome"] is None for e in stream)
    debug = [e["debugContext"]["debugData"] for e in stream]
    assert all(isinstance(d.get("threatSuspected", ""), str) for d in debug)
    embedded = [d["logOnlySecurityData"] for d in debug if "logOnlySecurityData" in d]
    assert embedded and all(isinstance(orjson.loads(text), dict) for text in embedded)
    security = [e["securityContext"] for e in stream]
    assert any(s["asNumber"] is None for s in security)
    assert any(isinstance(s["asNumber"], int) and s["isp"] for s in security)
    chains = [e["request"]["ipChain"] for e in stream]
    assert any(len(c) == 2 for c in chains) and any(c == [] for c in chains)


EXPECTED_TARGETS = {
    "user.session.start": ["AuthenticatorEnrollment", "AppInstance"],
    "user.authentication.auth_via_mfa": ["AuthenticatorEnrollment"],
    "user.authentication.verify": ["AuthenticatorEnrollment", "AppInstance"],
    "user.authentication.sso": ["AppInstance", "AppUser"],
    "group.user_membership.add": ["User", "UserGroup"],
    "group.user_membership.remove": ["User", "UserGroup"],
    "application.user_membership.add": ["AppUser", "AppInstance", "User"],
    "application.user_membership.remove": ["AppUser", "AppInstance", "User"],
    "application.user_membership.change_username": ["AppUser", "AppInstance", "User"],
    "user.account.lock": [],
    "security.threat.detected": [],
    "user.mfa.okta_verify.deny_push": ["User"],
    "user.account.privilege.grant": ["User"],
    "system.api_token.create": ["Token"],
}


def test_every_feed_type_has_an_expected_target_list() -> None:
    assert set(EXPECTED_TARGETS) == set(feed_types())


@pytest.mark.parametrize("event_type", sorted(EXPECTED_TARGETS))
def test_feed_types_get_the_right_targets(event_type: str) -> None:
    gen = EventGenerator(seed=11)
    for i in range(30):
        event = gen.event(event_type, START + timedelta(seconds=i))
        assert event["eventType"] == event_type
        assert types_of(event) == EXPECTED_TARGETS[event_type]


def test_feed_types_in_a_stream_get_the_right_targets(stream: list[dict[str, Any]]) -> None:
    checked = 0
    for event in stream:
        expected = EXPECTED_TARGETS.get(event["eventType"])
        if expected is None:
            continue
        checked += 1
        if event["eventType"] == "user.session.start" and event["actor"]["id"] == "unknown":
            assert event["target"] is None
        elif event["eventType"] == "user.session.start" and event["outcome"]["result"] == "DENY":
            assert types_of(event) == ["AppInstance"]
        else:
            assert types_of(event) == expected
    assert checked > 2500


def test_admin_changes_are_made_by_admins_on_other_users() -> None:
    gen = EventGenerator()
    admins = {u.id for u in gen.admins}
    for event_type in ("group.user_membership.add", "application.user_membership.remove"):
        event = gen.event(event_type, START)
        assert event["actor"]["id"] in admins
        user = next(t for t in event["target"] if t["type"] == "User")
        assert user["id"] not in admins


def test_app_assignment_carries_the_legacy_provisioning_type() -> None:
    event = EventGenerator().event("application.user_membership.add", START)
    assert event["legacyEventType"] == "app.generic.provision.assign_user_to_app"


def test_failed_sign_ins_of_known_users_are_invalid_credentials() -> None:
    gen = EventGenerator()
    user = gen.users[10]
    failed = gen.event("user.session.start", START, actor=user, result="FAILURE")
    denied = gen.event("user.session.start", START, actor=user, result="DENY")
    assert failed["outcome"] == {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}
    assert failed["legacyEventType"] == "core.user_auth.login_failed"
    assert failed["actor"]["id"] == user.id
    assert denied["outcome"]["result"] == "DENY"


def test_unknown_user_failure_keeps_what_was_typed() -> None:
    event = EventGenerator().event("user.session.start", START, actor="Winter2025!")
    assert event["actor"]["id"] == "unknown"
    assert event["actor"]["type"] == "User"
    assert event["actor"]["alternateId"] == "Winter2025!"
    assert event["outcome"]["result"] == "FAILURE"


def test_overrides_apply() -> None:
    gen = EventGenerator()
    target = [{"id": "x", "type": "Custom", "alternateId": None, "displayName": None}]
    event = gen.event(
        "user.authentication.sso",
        START,
        ip="203.0.113.9",
        result="FAILURE",
        reason="nope",
        target=target,
    )
    assert event["client"]["ipAddress"] == "203.0.113.9"
    assert event["outcome"] == {"result": "FAILURE", "reason": "nope"}
    assert event["target"] == target


def test_failed_login_burst_is_one_address_against_one_account() -> None:
    gen = EventGenerator()
    burst = gen.failed_login_burst(20, START, ip="198.51.100.7")
    assert len(burst) == 20
    assert {e["client"]["ipAddress"] for e in burst} == {"198.51.100.7"}
    assert len({e["actor"]["id"] for e in burst}) == 1
    assert all(e["outcome"]["result"] == "FAILURE" for e in burst)
    published = [e["published"] for e in burst]
    assert published == sorted(published) and len(set(published)) == 20
    unknown = gen.failed_login_burst(3, START, user="nobody@example.com")
    assert {e["actor"]["id"] for e in unknown} == {"unknown"}


def test_every_public_catalog_type_yields_a_plausible_event() -> None:
    gen = EventGenerator()
    kinds = event_types.event_types()
    assert len(kinds) > 1000
    for i, kind in enumerate(kinds):
        event = gen.event(kind.id, START + timedelta(milliseconds=i))
        assert event["eventType"] == kind.id
        assert event["displayMessage"]
        for target in event["target"] or []:
            assert target["id"] and target["type"]
        if kind.targets:
            assert event["target"], kind.id
    assert orjson.loads(orjson.dumps(event)) == event


def test_generic_targets_use_population_objects_for_well_known_types() -> None:
    gen = EventGenerator()
    event = gen.event("user.lifecycle.deactivate", START)
    user = next(t for t in event["target"] if t["type"] == "User")
    assert user["id"] in {u.id for u in gen.users}


def test_compact_catalog_keeps_public_types_with_their_targets(tmp_path: Path) -> None:
    source = {
        "versions": [
            {
                "eventTypes": [
                    {
                        "id": "b.type",
                        "category": "x",
                        "internal": False,
                        "schema": {"targets": ["UserSsoResourceDetails"]},
                    },
                    {"id": "a.type", "category": "y", "internal": False, "schema": None},
                    {"id": "c.hidden", "category": "z", "internal": True},
                ]
            }
        ]
    }
    path = tmp_path / "catalog.json"
    path.write_bytes(orjson.dumps(source))
    out = tmp_path / "out.json"
    assert event_types.main([str(path), str(out)]) == 0
    assert orjson.loads(out.read_bytes()) == [
        {"id": "a.type", "category": "y", "targets": []},
        {"id": "b.type", "category": "x", "targets": ["UserSsoResourceDetails"]},
    ]
    assert len(out.read_bytes().splitlines()) == 4  # one line per type plus brackets
    with pytest.raises(ValueError, match="not an event-type catalog"):
        event_types.compact({"nope": 1})


def test_catalog_cli_needs_a_path() -> None:
    assert event_types.main([]) == 2


def test_shipped_catalog_matches_the_source_catalog() -> None:
    """ingest/simulate/data is what ``compact`` makes of Okta's catalog (tests/catalog)."""
    expected = event_types.render(event_types.compact(orjson.loads(CATALOG.read_bytes())))
    assert event_types.DATA_FILE.read_bytes() == expected

"""Event feeds (one row per event): each returns exactly the events its definition names.

For every feed a plain-Python predicate over the raw events states the definition; the test runs
the feed through ``run_feed`` for the standard parameter combinations (windows, sort, limit,
source) and the feed's own filters, and compares the uuids in order and the columns row by row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import duckdb
import pytest

from ingest.feeds.run import run_feed
from tests.helpers.feeds import (
    DENY_PUSH,
    MFA,
    NOW,
    POLICY_TYPES,
    SESSION_START,
    T0,
    VERIFY,
    Dataset,
    Params,
    Stored,
    in_scope,
    is_id_or_login,
    iso,
    ordered,
    run,
    same_login,
    text,
)

Predicate = Callable[[Stored, Params], bool]
Row = dict[str, Any]


# -- the definitions, in plain Python ----------------------------------------------------------


def user_ref(s: Stored) -> dict[str, Any] | None:
    return s.target("User")


def account(s: Stored) -> dict[str, Any]:
    """The user an event is about: the User target when there is one, else the actor."""
    target = s.target("User")
    return target if target is not None and text(target.get("id")) is not None else s.actor


def by_actor(s: Stored, p: Params) -> bool:
    return p.get("actor") is None or is_id_or_login(s.actor, p["actor"], "alternateId")


def of_types(*types: str) -> Callable[[Stored], bool]:
    return lambda s: s.type in types


def memberships(kind: str) -> Predicate:
    def select(s: Stored, p: Params) -> bool:
        return (
            s.type == kind
            and (p.get("user") is None or is_id_or_login(user_ref(s), p["user"], "alternateId"))
            and (
                p.get("group") is None
                or is_id_or_login(s.target("UserGroup"), p["group"], "displayName")
            )
            and by_actor(s, p)
        )

    return select


def assignments(kind: str) -> Predicate:
    def select(s: Stored, p: Params) -> bool:
        user = p.get("user")
        return (
            s.type == kind
            and (
                user is None
                or is_id_or_login(user_ref(s), user, "alternateId")
                or same_login(s.target_field("AppUser", "alternateId"), user)
            )
            and (
                p.get("app") is None
                or is_id_or_login(s.target("AppInstance"), p["app"], "displayName")
            )
            and by_actor(s, p)
        )

    return select


def sso(s: Stored, p: Params) -> bool:
    user = p.get("user")
    return (
        s.type == "user.authentication.sso"
        and (
            user is None
            or is_id_or_login(s.actor, user, "alternateId")
            or same_login(s.target_field("AppUser", "alternateId"), user)
        )
        and (
            p.get("app") is None or is_id_or_login(s.target("AppInstance"), p["app"], "displayName")
        )
        and (p.get("ip") is None or s.ip == p["ip"])
    )


def failed_logins(s: Stored, p: Params) -> bool:
    failed = (s.type == SESSION_START and s.result in ("FAILURE", "DENY")) or (
        s.type in (MFA, VERIFY) and s.result == "FAILURE"
    )
    return (
        failed
        and (p.get("user") is None or same_login(s.login, p["user"]))
        and (p.get("ip") is None or s.ip == p["ip"])
    )


def privilege_grants(s: Stored, p: Params) -> bool:
    grantee = p.get("grantee")
    return (
        s.type
        in ("user.account.privilege.grant", "group.privilege.grant", "iam.resourceset.bindings.add")
        and by_actor(s, p)
        and (
            grantee is None
            or is_id_or_login(user_ref(s), grantee, "alternateId")
            or is_id_or_login(s.target("UserGroup"), grantee, "displayName")
        )
    )


def by_type_and_actor(*types: str) -> Predicate:
    return lambda s, p: s.type in types and by_actor(s, p)


def factor_resets(s: Stored, p: Params) -> bool:
    return (
        s.type in ("user.mfa.factor.deactivate", "user.mfa.factor.reset_all")
        and (p.get("user") is None or is_id_or_login(account(s), p["user"], "alternateId"))
        and by_actor(s, p)
    )


def factor_suspensions(s: Stored, p: Params) -> bool:
    return (
        s.type in ("user.mfa.factor.suspend", "user.mfa.factor.deactivate")
        and (p.get("user") is None or is_id_or_login(account(s), p["user"], "alternateId"))
        and by_actor(s, p)
    )


IDP_TYPES = tuple(
    f"system.idp.lifecycle.{change}"
    for change in ("create", "activate", "update", "deactivate", "delete", "read_client_secret")
)
RATE_LIMIT_TYPES = (
    "system.operation.rate_limit.violation",
    "system.org.rate_limit.warning",
    "system.org.rate_limit.violation",
    "core.concurrency.org.limit.violation",
)


def rate_limits(s: Stored, p: Params) -> bool:
    return s.type in RATE_LIMIT_TYPES and (p.get("ip") is None or s.ip == p["ip"])


def policy_changes(s: Stored, p: Params) -> bool:
    policy = p.get("policy")
    return (
        s.type in POLICY_TYPES
        and by_actor(s, p)
        and (
            policy is None
            or any(
                t.get("type") == "PolicyEntity" and is_id_or_login(t, policy, "displayName")
                for t in s.e.get("target") or []
            )
        )
    )


def threats(s: Stored, p: Params) -> bool:
    return s.type in ("security.threat.detected", "security.request.blocked") and (
        p.get("ip") is None or s.ip == p["ip"]
    )


def reported(s: Stored, p: Params) -> bool:
    user = p.get("user")
    return s.type == "user.account.report_suspicious_activity_by_enduser" and (
        user is None
        or is_id_or_login(s.actor, user, "alternateId")
        or is_id_or_login(user_ref(s), user, "alternateId")
    )


IMPERSONATION = tuple(
    f"user.session.impersonation.{a}" for a in ("grant", "initiate", "extend", "end", "revoke")
)


def impersonation(s: Stored, p: Params) -> bool:
    return (
        s.type in IMPERSONATION
        and by_actor(s, p)
        and (p.get("user") is None or is_id_or_login(user_ref(s), p["user"], "alternateId"))
    )


def lockouts(s: Stored, p: Params) -> bool:
    return s.type in ("user.account.lock", "user.account.lock.limit") and (
        p.get("user") is None or is_id_or_login(account(s), p["user"], "alternateId")
    )


def anonymous_tunnel(s: Stored) -> bool:
    raw = s.debug.get("tunnels")
    if not isinstance(raw, str):
        return False
    try:
        tunnels = json.loads(raw)
    except ValueError:
        return False
    return isinstance(tunnels, list) and any(
        isinstance(t, dict) and t.get("anonymous") is True for t in tunnels
    )


def proxy_sign_ins(s: Stored, p: Params) -> bool:
    success_only = str(p.get("success_only", "false")).lower() == "true"
    return (
        s.type == SESSION_START
        and (s.security.get("isProxy") is True or anonymous_tunnel(s))
        and (p.get("user") is None or same_login(s.login, p["user"]))
        and (not success_only or s.result == "SUCCESS")
    )


# -- the columns, in plain Python --------------------------------------------------------------


def _target_list(s: Stored) -> list[dict[str, Any]] | None:
    targets = s.e.get("target")
    if targets is None:
        return None
    return [
        {
            "id": text(t.get("id")),
            "type": text(t.get("type")),
            "alternate_id": text(t.get("alternateId")),
            "display_name": text(t.get("displayName")),
        }
        for t in targets
    ]


COLUMNS: dict[str, Callable[[Stored], Any]] = {
    "uuid": lambda s: s.uuid,
    "published": lambda s: s.published,
    "source": lambda s: s.source,
    "event_type": lambda s: s.type,
    "outcome_result": lambda s: s.result,
    "outcome_reason": lambda s: s.reason,
    "actor_id": lambda s: s.actor_id,
    "actor_type": lambda s: text(s.actor.get("type")),
    "actor_login": lambda s: s.login,
    "actor_name": lambda s: text(s.actor.get("displayName")),
    "client_ip": lambda s: s.ip,
    "geo_city": lambda s: text(s.geo.get("city")),
    "geo_country": lambda s: s.country,
    "is_proxy": lambda s: s.security.get("isProxy"),
    "display_message": lambda s: text(s.e.get("displayMessage")),
    "severity": lambda s: text(s.e.get("severity")),
    "targets": _target_list,
    "target_user_id": lambda s: s.target_field("User", "id"),
    "target_user_login": lambda s: s.target_field("User", "alternateId"),
    "target_user_name": lambda s: s.target_field("User", "displayName"),
    "target_group_id": lambda s: s.target_field("UserGroup", "id"),
    "target_group_name": lambda s: s.target_field("UserGroup", "displayName"),
    "target_app_id": lambda s: s.target_field("AppInstance", "id"),
    "target_app_name": lambda s: s.target_field("AppInstance", "displayName"),
    "target_app_user_login": lambda s: s.target_field("AppUser", "alternateId"),
    "account_id": lambda s: text(account(s).get("id")),
    "account_login": lambda s: text(account(s).get("alternateId")),
    "token_id": lambda s: s.target_field("Token", "id"),
    "token_name": lambda s: s.target_field("Token", "displayName"),
    "factor": lambda s: s.target_field("AuthenticatorEnrollment", "displayName"),
    "policy_id": lambda s: s.target_field("PolicyEntity", "id"),
    "policy_name": lambda s: s.target_field("PolicyEntity", "displayName"),
    "rule_id": lambda s: s.target_field("PolicyRule", "id"),
    "rule_name": lambda s: s.target_field("PolicyRule", "displayName"),
    "zone_id": lambda s: s.target_field("NetworkZone", "id"),
    "zone_name": lambda s: s.target_field("NetworkZone", "displayName"),
    "privilege": lambda s: text(s.debug.get("privilegeGranted")),
    "threat_detections": lambda s: text(s.debug.get("threatDetections")),
    "tunnels": lambda s: text(s.debug.get("tunnels")),
    "request_uri": lambda s: text(s.debug.get("requestUri")),
}


# -- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    feed: str
    select: Predicate
    filters: Callable[[dict[str, Any]], list[Params]]  # from the planted values; each non-empty


def _none(planted: dict[str, Any]) -> list[Params]:
    return []


CASES = [
    Case(
        "group-adds",
        memberships("group.user_membership.add"),
        lambda d: [
            {"user": d["member"].upper()},
            {"user": d["member_id"]},
            {"group": d["group"].lower()},
            {"group": d["group_id"], "actor": d["admin"]},
        ],
    ),
    Case(
        "group-removes",
        memberships("group.user_membership.remove"),
        lambda d: [{"user": d["member"], "group": d["group"].upper(), "actor": d["admin"]}],
    ),
    Case(
        "app-assignments",
        assignments("application.user_membership.add"),
        lambda d: [{"user": d["member"].upper()}, {"app": d["app"].lower()}, {"app": d["app_id"]}],
    ),
    Case(
        "app-unassignments",
        assignments("application.user_membership.remove"),
        lambda d: [{"user": d["member_id"], "app": d["app"]}],
    ),
    Case(
        "sso",
        sso,
        lambda d: [
            {"user": d["member"].upper()},
            {"app": d["app"].upper()},
            {"ip": d["sso_ip"]},
            {"user": d["member"], "app": d["app_id"], "ip": d["sso_ip"]},
        ],
    ),
    Case("logs", lambda s, p: True, _none),
    Case(
        "failed-logins",
        failed_logins,
        lambda d: [{"user": d["bf_hit"].upper()}, {"ip": d["spray_hit"]}],
    ),
    Case(
        "admin-privilege-grants",
        privilege_grants,
        lambda d: [{"actor": d["admin"]}, {"grantee": d["member"].upper()}],
    ),
    Case(
        "api-token-created",
        by_type_and_actor("system.api_token.create"),
        lambda d: [{"actor": d["token_admin"].upper()}],
    ),
    Case("mfa-factor-reset", factor_resets, lambda d: [{"user": d["factor_user"]}]),
    Case("policy-changes", policy_changes, lambda d: [{"actor": d["admin"]}]),
    Case(
        "zone-changes",
        by_type_and_actor("zone.deactivate", "zone.delete"),
        lambda d: [{"actor": d["zone_admin"]}],
    ),
    Case(
        "new-identity-provider",
        by_type_and_actor(*IDP_TYPES),
        lambda d: [{"actor": d["idp_admin"].upper()}, {"actor": d["token_admin"]}],
    ),
    Case(
        "mfa-factor-suspended",
        factor_suspensions,
        lambda d: [
            {"user": d["suspended"].upper()},
            {"user": d["factor_user"]},
            {"user": d["suspended"], "actor": d["token_admin"]},
        ],
    ),
    Case(
        "api-token-revoked",
        by_type_and_actor("system.api_token.revoke"),
        lambda d: [{"actor": d["revoke_admin"].upper()}],
    ),
    Case("rate-limit-violations", rate_limits, lambda d: [{"ip": d["rate_ip"]}]),
    Case("threat-detected", threats, lambda d: [{"ip": d["threat_ip"]}]),
    Case("user-reported-suspicious", reported, lambda d: [{"user": d["reporter"].upper()}]),
    Case(
        "impersonation",
        impersonation,
        lambda d: [
            {"user": d["impersonated"]},
            {"actor": d["impersonator"], "user": d["impersonated"]},
        ],
    ),
    Case(
        "account-lockouts",
        lockouts,
        lambda d: [{"user": d["locked"].upper()}, {"user": d["lock_limited"]}],
    ),
    Case(
        "proxy-sign-ins",
        proxy_sign_ins,
        lambda d: [{"user": d["proxied"].upper()}, {"success_only": "true"}],
    ),
]

GENERIC: list[Params] = [
    {"limit": 0},
    {},
    {"limit": 0, "sort": "descending"},
    {"limit": 3, "sort": "DESC"},
    {"limit": 0, "since": iso(T0 + timedelta(days=1)), "until": iso(T0 + timedelta(hours=66))},
    {"limit": 0, "source": "globex"},
    {"limit": 0, "source": "acme", "since": iso(T0 - timedelta(days=45))},
]


def expected(data: Dataset, case: Case, params: Params) -> list[Stored]:
    scope = in_scope(params)
    rows = [s for s in data.events if scope(s) and case.select(s, params)]
    return ordered(rows, lambda s: (s.published, s.uuid), params)


def check(con: duckdb.DuckDBPyConnection, data: Dataset, case: Case, params: Params) -> int:
    want = expected(data, case, params)
    got = run(con, case.feed, params)
    assert [r["uuid"] for r in got] == [s.uuid for s in want], (case.feed, params)
    for row, stored in zip(got, want, strict=True):
        for column, value in row.items():
            if column in COLUMNS:
                assert value == COLUMNS[column](stored), (case.feed, column, stored.uuid)
    return len(want)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.feed)
@pytest.mark.slow  # every event feed against the data set
def test_event_feed_returns_exactly_its_events(
    con: duckdb.DuckDBPyConnection, data: Dataset, case: Case
) -> None:
    assert check(con, data, case, {"limit": 0}) > 0, f"{case.feed}: nothing to compare"
    for params in GENERIC[1:]:
        check(con, data, case, params)
    # a window whose ends are exact event times: since is inclusive, until exclusive
    everything = expected(data, case, {"limit": 0, "since": iso(T0 - timedelta(45))})
    if len(everything) >= 3:
        since = everything[len(everything) // 3].published
        until = everything[2 * len(everything) // 3].published
        if since < until:
            bounded = {"limit": 0, "since": iso(since), "until": iso(until)}
            got = run(con, case.feed, bounded)
            assert got[0]["published"] == since and got[-1]["published"] < until
            check(con, data, case, bounded)
    for params in case.filters(data.planted):
        found = check(con, data, case, {"limit": 0, "since": iso(T0 - timedelta(1)), **params})
        assert found > 0, (case.feed, params)


def test_event_feeds_start_with_uuid_and_published(con: duckdb.DuckDBPyConnection) -> None:
    for case in CASES:
        columns = run_feed(con, case.feed, {"limit": 1}, NOW).columns
        assert columns[:2] == ["uuid", "published"], case.feed


def test_group_adds_keep_the_outcome_quirks(con: duckdb.DuckDBPyConnection, data: Dataset) -> None:
    rows = {r["uuid"]: r for r in run(con, "group-adds", {"limit": 0})}
    assert rows[data.planted["no_outcome"]]["outcome_result"] is None
    assert {r["outcome_result"] for r in rows.values()} >= {None, "SUCCESS", "FAILURE"}


def test_failed_logins_include_denials_and_unknown_users(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = run(con, "failed-logins", {"limit": 0})
    assert {"FAILURE", "DENY"} <= {r["outcome_result"] for r in rows}
    assert any(r["actor_id"] == "unknown" for r in rows)
    assert any(r["event_type"] == MFA for r in rows)
    assert all(r["event_type"] != DENY_PUSH for r in rows)


def test_proxy_sign_ins_catch_both_signals(con: duckdb.DuckDBPyConnection, data: Dataset) -> None:
    uuids = {r["uuid"] for r in run(con, "proxy-sign-ins", {"limit": 0})}
    assert set(data.planted["proxy"]) <= uuids
    assert data.planted["not_proxy"] not in uuids


LOGS_SEARCHES = [
    {"filter": 'eventType eq "user.session.start"'},
    {"filter": 'eventType eq "user.session.start" and outcome.result eq "FAILURE"'},
    {"filter": 'target.type eq "UserGroup" or actor.alternateId sw "admin"'},
    {"filter": "not (outcome.reason pr)", "limit": "0"},
    {"q": "Chrome"},
    {"q": "user.session.start FAILURE", "sort": "descending"},
    {"filter": 'client.zone eq "null"', "q": "Okta", "source": "acme"},
]


@pytest.mark.parametrize("params", LOGS_SEARCHES, ids=str)
def test_logs_applies_okta_filter_and_q_like_the_reference(
    con: duckdb.DuckDBPyConnection, data: Dataset, params: Params
) -> None:
    from ingest.filters.okta_filter import matches_filter, matches_q

    scope = in_scope(params)
    expected = [
        s
        for s in data.events
        if scope(s)
        and ("filter" not in params or matches_filter(s.e, params["filter"]))
        and ("q" not in params or matches_q(s.e, params["q"]))
    ]
    expected = ordered(expected, lambda s: (s.published, s.uuid), params)
    rows = run(con, "logs", params)
    assert [r["uuid"] for r in rows] == [s.uuid for s in expected]
    assert all(json.loads(r["raw"])["uuid"] == r["uuid"] for r in rows)


def test_logs_reports_a_bad_filter_with_its_position(con: duckdb.DuckDBPyConnection) -> None:
    from ingest.base.errors import FilterSyntaxError

    with pytest.raises(FilterSyntaxError, match="position"):
        run(con, "logs", {"filter": 'eventType eq "x" and'})

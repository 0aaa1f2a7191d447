"""The pieces an event is built from: type names, context records and JSON fragments."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest.simulate.population import (
    HOSTILE_NETWORKS,
    Agent,
    App,
    Enrollment,
    Group,
    Network,
    User,
    derived_id,
)

SESSION_START = "user.session.start"
MFA = "user.authentication.auth_via_mfa"
VERIFY = "user.authentication.verify"
SSO = "user.authentication.sso"
GROUP_ADD = "group.user_membership.add"
GROUP_REMOVE = "group.user_membership.remove"
APP_ADD = "application.user_membership.add"
APP_REMOVE = "application.user_membership.remove"
APP_RENAME = "application.user_membership.change_username"
LOCK = "user.account.lock"
THREAT = "security.threat.detected"
DENY_PUSH = "user.mfa.okta_verify.deny_push"
PRIVILEGE_GRANT = "user.account.privilege.grant"
TOKEN_CREATE = "system.api_token.create"  # noqa: S105

REQUEST_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_@"


@dataclass
class Request:
    """What a caller (or the stream planner) pinned down about one event."""

    actor: User | str | None = None
    subject: User | None = None
    group: Group | None = None
    app: App | None = None
    result: str | None = None
    reason: str | None = None
    ip: str | None = None
    target: list[dict[str, Any]] | None = None
    agent: Agent | None = None


@dataclass
class Context:
    """Who acted, from where and in which session."""

    actor: dict[str, Any]
    user: User | None
    ip: str
    network: Network | None
    agent: Agent
    zone: str
    session: str
    request_id: str
    device: dict[str, Any] | None


@dataclass
class Parts:
    """The type-specific pieces of one event."""

    display: str
    legacy: str | None = None
    severity: str = "INFO"
    outcome: dict[str, Any] | None = field(default_factory=lambda: outcome("SUCCESS"))
    target: list[dict[str, Any]] | None = None
    uri: str = "/api/v1/users"
    debug: dict[str, Any] = field(default_factory=dict)
    credential_type: str | None = None
    credential_provider: str | None = None
    authentication_provider: str | None = None
    security: dict[str, Any] = field(default_factory=dict)


def outcome(result: str, reason: str | None = None) -> dict[str, Any]:
    return {"result": result, "reason": reason}


def user_ref(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "type": "User",
        "alternateId": user.login,
        "displayName": user.display_name,
        "detailEntry": None,
    }


def group_ref(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "type": "UserGroup",
        "alternateId": "unknown",
        "displayName": group.name,
        "detailEntry": None,
    }


def app_ref(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "type": "AppInstance",
        "alternateId": app.label,
        "displayName": app.label,
        "detailEntry": None,
    }


def app_user_ref(app: App, user: User) -> dict[str, Any]:
    return {
        "id": derived_id("0ua", app.id, user.id),
        "type": "AppUser",
        "alternateId": user.login,
        "displayName": user.display_name,
        "detailEntry": None,
    }


def enrollment_ref(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "id": enrollment.id,
        "type": "AuthenticatorEnrollment",
        "alternateId": "unknown",
        "displayName": enrollment.name,
        "detailEntry": None,
    }


def geo_context(network: Network) -> dict[str, Any]:
    return {
        "city": network.city,
        "state": network.state,
        "country": network.country,
        "postalCode": network.postal_code,
        "geolocation": {"lat": network.lat, "lon": network.lon},
    }


def device_info(user: User, agent: Agent) -> dict[str, Any]:
    mac = agent.os == "Mac OS X"
    return {
        "id": user.device_id,
        "name": "MacBookPro18,3" if mac else "DESKTOP-" + user.id[-7:].upper(),
        "os_platform": "OSX" if mac else "WINDOWS",
        "os_version": "14.5.0" if mac else "10.0.22631",
        "managed": not mac,
        "registered": True,
        "device_integrator": None,
        "disk_encryption_type": "ALL_INTERNAL_VOLUMES",
        "screen_lock_type": "BIOMETRIC" if mac else "PASSCODE",
        "jailbreak": None,
        "secure_hardware_present": True,
    }


def risk_context(rng: random.Random, ctx: Context) -> dict[str, Any]:
    hostile = ctx.network in HOSTILE_NETWORKS
    level = "HIGH" if hostile else "LOW"
    behaviors = [
        {
            "id": derived_id("bhv", name),
            "name": name,
            "result": "POSITIVE" if hostile and name == "New Geo-Location" else "NEGATIVE",
        }
        for name in ("New Device", "New Geo-Location")
    ]
    extra: dict[str, Any] = {"risk": {"level": level}, "userBehaviors": behaviors}
    if ctx.network is not None:
        net = ctx.network
        extra["ipDetails"] = {"asNumber": net.as_number, "asOrg": net.as_org, "isp": net.isp}
    if rng.random() < 0.5:
        extra["botProtection"] = {"level": "LOW"}
    return extra


def feed_types() -> Sequence[str]:
    """The event types with hand-written builders (the ones the feeds rely on)."""
    return (
        SESSION_START,
        MFA,
        VERIFY,
        SSO,
        GROUP_ADD,
        GROUP_REMOVE,
        APP_ADD,
        APP_REMOVE,
        APP_RENAME,
        LOCK,
        THREAT,
        DENY_PUSH,
        PRIVILEGE_GRANT,
        TOKEN_CREATE,
    )

"""How catalog schema names become the target ``type`` values seen in real events."""

from __future__ import annotations

import re

# Schema names whose event targets carry a well-known Okta type.
_KNOWN = {
    "UserAuthenticationResourceDetails": "User",
    "UserIdentifierResourceDetails": "User",
    "UserProvisioningResourceDetails": "User",
    "UserAccessResourceDetails": "User",
    "AuthenticatorEnrollmentResourceDetails": "AuthenticatorEnrollment",
    "AuthenticatorEnrollmentResourceDetailsEx": "AuthenticatorEnrollment",
    "UserSsoResourceDetails": "AppInstance",
    "DirectoryResourceDetails": "AppInstance",
    "OrgGroupResourceDetails": "UserGroup",
    "PolicyResourceDetails": "PolicyEntity",
    "RuleResourceDetails": "PolicyRule",
    "ApiTokenResourceDetails": "Token",
    "AuthorizationServerResourceDetails": "AuthorizationServer",
    "DeviceTrustResourceDetails": "Device",
}

# First segment of an event type -> the target type of a generic "ResourceDetails" target.
_BY_PREFIX = {
    "user": "User",
    "group": "UserGroup",
    "app": "AppInstance",
    "application": "AppInstance",
    "policy": "PolicyEntity",
    "zone": "NetworkZone",
    "network_zone": "NetworkZone",
    "device": "Device",
    "iam": "ResourceSet",
    "directory": "AppInstance",
    "oauth2": "AuthorizationServer",
    "inline_hook": "InlineHook",
    "event_hook": "EventHook",
}

_ID_PREFIXES = {
    "User": "00u",
    "UserGroup": "00g",
    "AppInstance": "0oa",
    "AppUser": "0ua",
    "PolicyEntity": "00p",
    "PolicyRule": "0pr",
    "Token": "00T",
    "NetworkZone": "nzo",
    "AuthorizationServer": "aus",
    "Device": "guo",
    "ResourceSet": "iam",
    "InlineHook": "cal",
    "EventHook": "who",
}

_SUFFIXES = ("ResourceDetailsEx", "ResourceDetails", "Details", "Resource")


def prefix_type(event_type: str) -> str | None:
    """The target type suggested by the first segment of ``event_type``, if any."""
    return _BY_PREFIX.get(event_type.split(".")[0])


def target_type(schema_name: str, event_type: str) -> str:
    """The target ``type`` for a catalog schema name on ``event_type``."""
    if schema_name in _KNOWN:
        return _KNOWN[schema_name]
    stem = schema_name
    for suffix in _SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem or prefix_type(event_type) or "Resource"


def id_prefix(kind: str) -> str:
    """The three-character id prefix Okta uses for objects of this type (a guess if unknown)."""
    return _ID_PREFIXES.get(kind) or (kind.lower() + "xxx")[:3]


def words(kind: str) -> str:
    """``"NetworkZone"`` -> ``"Network zone"``; acronyms such as ``OAuth2`` stay as they are."""
    parts = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", kind).split()
    return " ".join(
        p if i == 0 or sum(c.isupper() for c in p) > 1 else p.lower() for i, p in enumerate(parts)
    )


def display_message(event_type: str) -> str:
    """A plausible ``displayMessage`` for a type without a hand-written builder."""
    segments = event_type.replace("_", " ").split(".")
    action = segments[-1]
    subject = " ".join(segments[:-1])
    text = f"{action} {subject}".strip()
    return text[:1].upper() + text[1:]

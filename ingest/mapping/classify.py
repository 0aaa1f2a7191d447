"""Rules that classify an Okta event type for ECS and for OCSF, from its id and catalog entry.

Okta's event-type ids are dotted: a domain (``user.session``, ``group.user_membership``,
``policy.rule``, ...) followed by a verb (``start``, ``add``, ``update``, ...), sometimes with
more detail after it (``app.oauth2.as.token.grant.access_token``). The rules read them that way:

- the *verb* is the last word of the id that names an action (``create``, ``deactivate``,
  ``update_password`` -> ``update``, ...); it decides ECS ``event.type`` and the OCSF activity
  of generic classes;
- the *domain* decides ECS ``event.category`` and the OCSF class, through ordered regular
  expressions over the id (first match wins), with exact ids for the exceptions.

Each result says which rule decided it, so coverage can tell a specific classification from the
fallback. ``ingest.mapping.taxonomy`` turns these results into the lookup tables.

ECS values come from the ECS categorization field reference (event.kind, event.category,
event.type and their "expected event types"); OCSF ids from the OCSF 1.3.0 schema
(https://schema.ocsf.io/1.3.0/): classes 2004, 3001, 3002, 3004, 3005, 3006 and 6003.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# --- verbs -----------------------------------------------------------------------------------

_VERB_WORDS: dict[str, str] = {
    "create": (
        "create created add added register generate issue new clone bootstrap upload provision jit"
    ),
    "delete": "delete deleted remove removed unregister deprovision clear",
    "update": (
        "update updated change changed modify rotate renew overwrite rename promote sync "
        "upsert apply classify reauthorize extend rollback stage invalidate rollover "
        "preference realtimesync mapping reset make_blacklist remove_blacklist "
        "add_request_blacklist_policy remove_request_blacklist_policy add_country_blacklist "
        "remove_country_blacklist temporarily_disable_blacklisting"
    ),
    "move": "move reassign",
    "enroll": "enroll enrollment createEnrollment",
    "enable": "enable enabled",
    "disable": "disable disabled",
    "activate": "activate activated reactivate",
    "deactivate": "deactivate deactivated",
    "suspend": "suspend",
    "resume": "unsuspend resume",
    "lock": "lock",
    "unlock": "unlock",
    "grant": "grant assign approve bindings",
    "revoke": "revoke unassign",
    "start": "start started initiate login begin launch open connect",
    "end": (
        "end ended expire expired logout slo close complete completed finish disconnect "
        "cancel canceled cancelled"
    ),
    "read": "read view download reveal export query search show discover checkout",
    "deny": "deny denied block blocked reject violation exceeded",
    "error": "error errors fail failed failure timeout thrown formaterror",
    "detect": "detect detected",
}
VERBS: dict[str, str] = {w: verb for verb, words in _VERB_WORDS.items() for w in words.split()}
# Compound words whose first part looks like a verb but is not one.
_NOT_VERBS = frozenset(
    {"access_token", "id_token", "refresh_token", "account_locked", "read_only", "new_device"}
)


def verb(event_type: str) -> str | None:
    """The action an event type id names, or None (``user.account.update_password`` -> update)."""
    for word in reversed(event_type.split(".")):
        if word in VERBS:
            return VERBS[word]
        if word in _NOT_VERBS:
            continue
        head = word.split("_", 1)[0].split("-", 1)[0]
        if head in VERBS and head != word:
            return VERBS[head]
    return None


# --- ECS -------------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ECS_CATEGORIES = _words(
    "api authentication configuration database driver file host iam intrusion_detection "
    "library malware network package process registry session threat vulnerability web"
)
ECS_TYPES = _words(
    "access admin allowed change connection creation deletion denied end error group indicator "
    "info installation protocol start user"
)
# ECS's "expected event types" per category: a type is kept only where its category expects it.
_EXPECTED = {
    "api": "access admin allowed change creation deletion denied end info start user",
    "authentication": "start end info",
    "configuration": "access change creation deletion info",
    "host": "access change end info start",
    "iam": "admin change creation deletion group info user",
    "intrusion_detection": "allowed denied info",
    "network": "access allowed connection denied end info protocol start",
    "process": "access change end info start",
    "session": "start end info",
    "threat": "indicator",
    "web": "access error info",
}
ECS_EXPECTED: dict[str, frozenset[str]] = {
    category: frozenset(types.split()) for category, types in _EXPECTED.items()
}
_ECS_VERB_TYPE = {
    "create": "creation",
    "delete": "deletion",
    "update": "change",
    "move": "change",
    "enroll": "change",
    "enable": "change",
    "disable": "change",
    "activate": "change",
    "deactivate": "change",
    "suspend": "change",
    "resume": "change",
    "lock": "change",
    "unlock": "change",
    "grant": "change",
    "revoke": "change",
    "start": "start",
    "end": "end",
    "read": "access",
    "deny": "denied",
    "error": "error",
}


@dataclass(frozen=True)
class EcsClass:
    """ECS categorization of one event type; ``rule`` names the rule that decided it."""

    category: tuple[str, ...]
    type: tuple[str, ...]
    kind: str
    rule: str

    @property
    def specific(self) -> bool:
        """Chosen by a rule for its domain, not by the fallback or the bare catch-all."""
        return self.rule not in ("fallback", "configuration-other")


@dataclass(frozen=True)
class _EcsRule:
    name: str
    pattern: re.Pattern[str]
    category: tuple[str, ...]
    nouns: tuple[str, ...] = ()  # ECS types naming what changed: user, group, admin
    kind: str = "event"
    types: tuple[str, ...] | None = None  # fixed types instead of the verb's


def _ecs(
    name: str,
    pattern: str,
    category: tuple[str, ...],
    nouns: tuple[str, ...] = (),
    kind: str = "event",
    types: tuple[str, ...] | None = None,
) -> _EcsRule:
    return _EcsRule(name, re.compile(pattern), category, nouns, kind, types)


_AUTH = ("authentication",)
_CONF = ("configuration",)
_IAM = ("iam",)
_IDS = ("intrusion_detection",)
ECS_RULES: tuple[_EcsRule, ...] = (
    # threats and detections
    _ecs(
        "detection",
        r"^security\.(threat|password_spray|breached_credential|internal\.threat"
        r"|internal\.valid_password_sprayed)\..*detected$",
        _IDS,
        kind="alert",
    ),
    _ecs("attack", r"^security\.attack\.(start|end)$", _IDS, kind="alert"),
    _ecs("blocked-request", r"^security\.request\.blocked$", (*_IDS, "network"), types=("denied",)),
    _ecs(
        "risk-detection",
        r"^user\.(internal\.)?risk\.detect$|^security\.internal\.dco_|"
        r"^security\.session\.detect_client_roaming$",
        _IDS,
        kind="alert",
    ),
    _ecs("risk", r"^user\.(internal\.)?risk\.|^user\.account\.report_suspicious_activity", _IDS),
    # sign-in and sessions
    _ecs(
        "session",
        r"^user\.session\.(start|end|expire|clear|context\.change|access_admin_app"
        r"|impersonation\.(initiate|end))$|^user\.device_session\.",
        (*_AUTH, "session"),
    ),
    _ecs("impersonation-grant", r"^user\.session\.impersonation\.", _IAM, ("admin",)),
    _ecs("mfa-verify", r"^user\.mfa\.(okta_verify|attempt_bypass)", _AUTH),
    _ecs(
        "authentication",
        r"^user\.authentication\.|^user\.identity_verification|"
        r"^policy\.evaluate_sign_on$|^policy\.(auth_reevaluate|continuous_access|entity_risk)\."
        r"|^app\.inbound_del_auth\.|^app\.kerberos_rich_client\.user_authentication|"
        r"^app\.generic\.unauth_app_access_attempt$|^app\.ad\.credential\.verify$|"
        r"^system\.iwa_agentless\.(auth|redirect|user)|^application\.policy\.sign_on\."
        r"deny_access$|^device\.(platform_sso|password_sync)\.authentication$|^core\.user_auth\.|^system\.ldapi\.(bind|unbind)$|"
        r"^pam\.server\.ssh_login$|^pam\.(auth_token|user_creds|gateway_creds)\.issue$|"
        r"^security\.internal\.authentication$|^app\.oauth2\.(as\.)?(authorize|token\.grant|"
        r"token\.revoke|signon|interact|token\.oauth_sts|token\.detect_reuse|"
        r"invalid_client_credentials)|^app\.oauth2\.as\.evaluate\.claim$|"
        r"^system\.(push|sms|voice|email)\.send_(factor_verify|okta_push_verify|mfa_challenge"
        r"|phone_verification)|^system\.email\.challenge_factor_redeemed$",
        _AUTH,
    ),
    # rate and concurrency limits
    _ecs(
        "rate-limit",
        r"rate_limit\.(violation|warning|notification|burst|expiration)|"
        r"concurrency(_rate)?_limit\.|^core\.concurrency\.|step_execution_limit\.|"
        r"rate_limit_exceeded$|admin_limit_exceeded$|rate_limit_warning$|"
        r"^system\.api_token\.request_outside_allowed_range$|"
        r"^system\.oauth2\.token\.request_outside_allowed_range$",
        ("api",),
    ),
    # identity and access management
    _ecs(
        "privilege",
        r"privilege\.(grant|revoke)$|^iam\.(role|resourceset|policy)\.|"
        r"^integration\.api_service\.lifecycle\.",
        _IAM,
        ("admin",),
    ),
    _ecs(
        "group-membership",
        r"^group\.user_membership\.|group\.user\.(assign|revoke)$|"
        r"^directory\.external\.group\.membership\.|^group\.application_assignment\.|"
        r"^pam\.(member|group)\.|group_membership\.",
        _IAM,
        ("group",),
    ),
    _ecs(
        "group",
        r"^group\.|^system\.identity_sources\.(bulk_)?group|^system\.import\.group"
        r"|^application\.provision\.group",
        _IAM,
        ("group",),
    ),
    _ecs(
        "app-membership",
        r"^(master_)?application\.user_membership\.|"
        r"^app\.access_request\.|^application\.account\.",
        _IAM,
        ("user",),
    ),
    _ecs(
        "user",
        r"^user\.|^credential\.|^system\.identity_sources\.|^system\.import\.|"
        r"^system\.csv\.import_user$|^directory\.(app_user_profile|user_profile\.bootstrap)|"
        r"^device\.local_account\.|^pam\.(user|service_account|server_account"
        r"|password|team_user_attribute|team_invitation)\.|^app\.(realtimesync|user_management"
        r"|ad\.api\.user_import)|^app\.ldap\.password|^system\.agent\.(ad|ldap)\."
        r"(import_user|update_user|reset_user_password|unlock_user_account|change_user_password"
        r"|create_user_JIT|update_user_password)|^system\.internal\.(classify\.user|migrate)|"
        r"^account\.user\.|^scheduled_action\.user_suspension\.|^personal\.user\.|"
        r"^system\.(sms|voice|email)\.(send_)?(account_unlock|password_reset)",
        _IAM,
        ("user",),
    ),
    _ecs(
        "provisioning",
        r"^application\.provision\.|^app\.office365\.|^app\.ad\.|"
        r"^directory\.|^app\.app_instance\.provision_sync_job",
        _IAM,
    ),
    _ecs(
        "governance",
        r"^access\.(request|review)\.|^certification\.|^resource\.|"
        r"^governance\.|^entitlement\.migration\.|^app\.oauth2\.(as\.|admin\.)?consent\.|"
        r"^workload_principal\.|^system\.api_token\.",
        _IAM,
        ("admin",),
    ),
    # messages
    _ecs("email", r"^system\.email\.(?!template|domain)", _IAM, ("user",)),
    _ecs("message", r"^system\.(sms|voice|push)\.|^device\.custom_push\.", _AUTH),
    # web
    _ecs("web", r"^org\.not_configured_origin\.|^app\.rum\.", ("web",)),
    # devices (device.user.add/remove assign a device to a user: no user account is made or
    # removed, so not iam/user creation; Elastic's integration sets no category for them)
    _ecs("device", r"^device\.|^mim\.", ("host",)),
    # configuration of the org, its apps, policies, zones, hooks and integrations
    _ecs(
        "configuration",
        r"^policy\.|^application\.|^app\.|^zone\.|^network_zone\.|"
        r"^security\.|^system\.|^event_hook\.|^inline_hook\.|^oauth2\.|^pki\.|^pam\.|"
        r"^workflows\.|^task\.|^resource_servers\.|^account\.|^self_service\.|^support\.|"
        r"^analytics\.|^personal\.|^plugin\.|^core\.el\.|^org\.|^mim\.",
        _CONF,
    ),
)
ECS_FALLBACK = EcsClass(("iam",), ("info",), "event", "fallback")


def classify_ecs(event_type: str) -> EcsClass:
    """ECS event.category, event.type and event.kind for an event type id."""
    for rule in ECS_RULES:
        if rule.pattern.search(event_type):
            name = rule.name
            if name == "configuration" and _ECS_VERB_TYPE.get(verb(event_type) or "") not in (
                "creation",
                "deletion",
                "change",
                "access",
            ):
                name = "configuration-other"  # an org object, but no change or read named
            return EcsClass(rule.category, _ecs_types(rule, event_type), rule.kind, name)
    return ECS_FALLBACK


def _ecs_types(rule: _EcsRule, event_type: str) -> tuple[str, ...]:
    if rule.types is not None:
        return rule.types
    action = verb(event_type)
    if rule.name == "group-membership" and action in ("create", "delete", "grant", "revoke"):
        action = "update"  # a membership change changes the group (ECS: group + change)
    if rule.name == "app-membership" and action in ("create", "delete", "grant", "revoke"):
        action = "update"
    wanted = [*rule.nouns, _ECS_VERB_TYPE.get(action or "", "info")]
    types = [t for t in wanted if any(t in ECS_EXPECTED[c] for c in rule.category)]
    if not any(t not in ("user", "group", "admin") for t in types):
        types.append("info")
    return tuple(dict.fromkeys(types))


# --- OCSF ------------------------------------------------------------------------------------

OCSF_VERSION = "1.3.0"
OCSF_CLASSES: dict[int, str] = {
    2004: "Detection Finding",
    3001: "Account Change",
    3002: "Authentication",
    3004: "Entity Management",
    3005: "User Access Management",
    3006: "Group Management",
    6003: "API Activity",
}
OCSF_CATEGORIES: dict[int, str] = {
    2: "Findings",
    3: "Identity & Access Management",
    6: "Application Activity",
}
# Activity captions per class (OCSF 1.3.0; 0 Unknown and 99 Other exist in every class).
OCSF_ACTIVITIES: dict[int, dict[int, str]] = {
    2004: {1: "Create", 2: "Update", 3: "Close"},
    3001: {
        1: "Create",
        2: "Enable",
        3: "Password Change",
        4: "Password Reset",
        5: "Disable",
        6: "Delete",
        7: "Attach Policy",
        8: "Detach Policy",
        9: "Lock",
        10: "MFA Factor Enable",
        11: "MFA Factor Disable",
    },
    3002: {
        1: "Logon",
        2: "Logoff",
        3: "Authentication Ticket",
        4: "Service Ticket Request",
        5: "Service Ticket Renew",
        6: "Preauth",
    },
    3004: {
        1: "Create",
        2: "Read",
        3: "Update",
        4: "Delete",
        5: "Move",
        6: "Enroll",
        7: "Unenroll",
        8: "Enable",
        9: "Disable",
        10: "Activate",
        11: "Deactivate",
        12: "Suspend",
        13: "Resume",
    },
    3005: {1: "Assign Privileges", 2: "Revoke Privileges"},
    3006: {
        1: "Assign Privileges",
        2: "Revoke Privileges",
        3: "Add User",
        4: "Remove User",
        5: "Delete",
        6: "Create",
    },
    6003: {1: "Create", 2: "Read", 3: "Update", 4: "Delete"},
}
for _activities in OCSF_ACTIVITIES.values():
    _activities.update({0: "Unknown", 99: "Other"})

_ENTITY_VERBS = {
    "create": 1,
    "read": 2,
    "update": 3,
    "delete": 4,
    "move": 5,
    "enroll": 6,
    "enable": 8,
    "disable": 9,
    "activate": 10,
    "deactivate": 11,
    "suspend": 12,
    "resume": 13,
}
_API_VERBS = {"create": 1, "read": 2, "update": 3, "delete": 4}


@dataclass(frozen=True)
class OcsfClass:
    """OCSF class and activity of one event type; ``rule`` names the rule that decided it."""

    class_uid: int
    activity_id: int
    rule: str
    is_mfa: bool | None = None

    @property
    def specific(self) -> bool:
        return self.class_uid != 6003

    @property
    def category_uid(self) -> int:
        return self.class_uid // 1000

    @property
    def type_uid(self) -> int:
        return self.class_uid * 100 + self.activity_id

    def entry(self) -> dict[str, Any]:
        """The lookup-table entry: every id and caption precomputed."""
        out: dict[str, Any] = {
            "class_uid": self.class_uid,
            "class_name": OCSF_CLASSES[self.class_uid],
            "category_uid": self.category_uid,
            "category_name": OCSF_CATEGORIES[self.category_uid],
            "activity_id": self.activity_id,
            "activity_name": OCSF_ACTIVITIES[self.class_uid][self.activity_id],
            "type_uid": self.type_uid,
            "type_name": (
                f"{OCSF_CLASSES[self.class_uid]}: "
                f"{OCSF_ACTIVITIES[self.class_uid][self.activity_id]}"
            ),
        }
        if self.is_mfa is not None:
            out["is_mfa"] = self.is_mfa
        return out


# Exact ids: (class_uid, activity_id).
OCSF_EXACT: dict[str, tuple[int, int]] = {
    # Detection Finding
    "security.threat.detected": (2004, 1),
    "security.internal.threat.detected": (2004, 1),
    "security.password_spray.detected": (2004, 1),
    "security.internal.valid_password_sprayed.detected": (2004, 1),
    "security.breached_credential.detected": (2004, 1),
    "security.request.blocked": (2004, 1),
    "security.attack.start": (2004, 1),
    "security.attack.end": (2004, 3),
    "security.session.detect_client_roaming": (2004, 1),
    "security.internal.dco_malicious_ip_report": (2004, 1),
    "security.internal.dco_user_risk_report": (2004, 1),
    "user.risk.detect": (2004, 1),
    "user.internal.risk.detect": (2004, 1),
    "user.risk.change": (2004, 2),
    "user.internal.risk.change": (2004, 2),
    "user.account.report_suspicious_activity_by_enduser": (2004, 1),
    "app.oauth2.token.detect_reuse": (2004, 1),
    "app.oauth2.as.token.detect_reuse": (2004, 1),
    "resource.user_entitlements.drift.detect": (2004, 1),
    # Authentication
    "user.session.start": (3002, 1),
    "user.session.access_admin_app": (3002, 1),
    "user.session.impersonation.initiate": (3002, 1),
    "user.session.end": (3002, 2),
    "user.session.expire": (3002, 2),
    "user.session.clear": (3002, 2),
    "user.session.impersonation.end": (3002, 2),
    "user.session.context.change": (3002, 99),
    "user.device_session.start": (3002, 1),
    "user.device_session.end": (3002, 2),
    "user.authentication.slo": (3002, 2),
    "user.authentication.universal_logout": (3002, 2),
    "user.authentication.universal_logout.scheduled": (3002, 2),
    "policy.evaluate_sign_on": (3002, 99),
    "system.ldapi.bind": (3002, 1),
    "system.ldapi.unbind": (3002, 2),
    "pam.server.ssh_login": (3002, 1),
    "pam.auth_token.issue": (3002, 3),
    "pam.user_creds.issue": (3002, 4),
    "pam.gateway_creds.issue": (3002, 4),
    "device.desktop_mfa.device_logout.completed": (3002, 2),
    # Account Change
    "user.lifecycle.create": (3001, 1),
    "user.lifecycle.activate": (3001, 2),
    "user.lifecycle.reactivate": (3001, 2),
    "user.lifecycle.unsuspend": (3001, 2),
    "user.account.update_password": (3001, 3),
    "system.agent.ldap.change_user_password": (3001, 3),
    "system.agent.ldap.update_user_password": (3001, 3),
    "app.ldap.password.change.failed": (3001, 3),
    "pam.password.change": (3001, 3),
    "user.account.reset_password": (3001, 4),
    "user.account.expire_password": (3001, 4),
    "user.lifecycle.password_mass_expiry": (3001, 4),
    "system.agent.ad.reset_user_password": (3001, 4),
    "system.agent.ldap.reset_user_password": (3001, 4),
    "pam.password.reset": (3001, 4),
    "user.lifecycle.deactivate": (3001, 5),
    "user.lifecycle.suspend": (3001, 5),
    "scheduled_action.user_suspension.completed": (3001, 5),
    "user.lifecycle.delete.initiated": (3001, 6),
    "user.lifecycle.delete.completed": (3001, 6),
    "user.account.lock": (3001, 9),
    "user.account.lock.limit": (3001, 9),
    "user.mfa.factor.activate": (3001, 10),
    "user.mfa.factor.unsuspend": (3001, 10),
    "credential.register": (3001, 10),
    "user.credential.enroll": (3001, 10),
    "user.mfa.factor.deactivate": (3001, 11),
    "user.mfa.factor.reset_all": (3001, 11),
    "user.mfa.factor.suspend": (3001, 11),
    "credential.revoke": (3001, 11),
    "system.identity_sources.user.create": (3001, 1),
    "system.identity_sources.user.delete": (3001, 6),
    "system.import.user.create": (3001, 1),
    "system.import.user.delete": (3001, 6),
    "system.import.user.suspend": (3001, 5),
    "system.import.user.unsuspend": (3001, 2),
    "system.agent.ldap.create_user_JIT": (3001, 1),
    "device.local_account.create": (3001, 1),
    "pam.user.create": (3001, 1),
    "pam.user.remove": (3001, 6),
    "pam.service_account.create": (3001, 1),
    "pam.service_account.delete": (3001, 6),
    # Group Management
    "group.user_membership.add": (3006, 3),
    "group.user_membership.remove": (3006, 4),
    "system.identity_sources.group.user.assign": (3006, 3),
    "system.identity_sources.group.user.revoke": (3006, 4),
    "directory.external.group.membership.add": (3006, 3),
    "directory.external.group.membership.remove": (3006, 4),
    "application.provision.group_membership.add": (3006, 3),
    "application.provision.group_membership.remove": (3006, 4),
    "pam.member.add": (3006, 3),
    "pam.member.remove": (3006, 4),
    "group.lifecycle.create": (3006, 6),
    "group.lifecycle.delete": (3006, 5),
    "system.identity_sources.group.create": (3006, 6),
    "system.identity_sources.group.delete": (3006, 5),
    "system.import.group.create": (3006, 6),
    "system.import.group.delete": (3006, 5),
    "pam.group.create": (3006, 6),
    "pam.group.delete": (3006, 5),
    "group.privilege.grant": (3006, 1),
    "group.privilege.revoke": (3006, 2),
    "group.application_assignment.add": (3006, 1),
    "group.application_assignment.remove": (3006, 2),
    # User Access Management
    "application.user_membership.add": (3005, 1),
    "application.user_membership.provision": (3005, 1),
    "application.user_membership.approve": (3005, 1),
    "application.user_membership.restore": (3005, 1),
    "master_application.user_membership.add": (3005, 1),
    "application.user_membership.remove": (3005, 2),
    "application.user_membership.deprovision": (3005, 2),
    "application.user_membership.revoke": (3005, 2),
    "user.account.privilege.grant": (3005, 1),
    "user.account.privilege.revoke": (3005, 2),
    "user.privileged_account.privilege.grant": (3005, 1),
    "user.privileged_account.privilege.revoke": (3005, 2),
    "user.session.impersonation.grant": (3005, 1),
    "user.session.impersonation.extend": (3005, 1),
    "user.session.impersonation.revoke": (3005, 2),
    "iam.resourceset.bindings.add": (3005, 1),
    "iam.resourceset.bindings.delete": (3005, 2),
    "app.access_request.grant": (3005, 1),
    "app.oauth2.client.privilege.grant": (3005, 1),
    "app.oauth2.client.privilege.revoke": (3005, 2),
    # exceptions to the verb rules
    "application.policy.sign_on.deny_access": (3002, 1),
    "app.oauth2.invalid_client_credentials": (3002, 1),
    "system.iwa_agentless.user.not_found": (3002, 1),
    "system.api_token.revoke": (3004, 4),
    "pam.workload_connection.api_key.revoke": (3004, 4),
}

_OCSF_PATTERNS: tuple[tuple[str, re.Pattern[str], int, int | None], ...] = (
    # (rule, pattern, class_uid, activity_id or None for "from the verb")
    (
        "sign-in",
        re.compile(
            r"^user\.authentication\.|^user\.mfa\.(okta_verify|attempt_bypass)|"
            r"^app\.inbound_del_auth\.login_success$|^app\.kerberos_rich_client\.user_authentication|"
            r"^app\.generic\.unauth_app_access_attempt$|^app\.ad\.credential\.verify$|"
            r"^system\.iwa_agentless\.auth|^device\.(platform_sso|password_sync)\.authentication$|"
            r"^security\.internal\.authentication$|^app\.oauth2\.(as\.)?authorize|"
            r"^app\.oauth2\.signon$|^app\.oauth2\.as\.interact|^app\.oauth2\.interact"
        ),
        3002,
        1,
    ),
    ("token", re.compile(r"^app\.oauth2\.(as\.)?token\.(grant|oauth_sts)"), 3002, 4),
    ("token-revoke", re.compile(r"^app\.oauth2\.(as\.)?token\.revoke"), 3002, 99),
    (
        "mfa-challenge",
        re.compile(
            r"^system\.(push|sms|voice|email)\.send_(factor_verify|"
            r"okta_push_verify|mfa_challenge)|^system\.email\.challenge_factor_redeemed$|"
            r"^user\.identity_verification"
        ),
        3002,
        99,
    ),
    (
        "user-change",
        re.compile(
            r"^user\.(account|lifecycle|mfa\.factor|mfa\.promote|"
            r"privileged_account|realm|behavior|import)\.|^system\.identity_sources\.user\.|"
            r"^system\.import\.user\.|^pam\.(user|service_account)\.|"
            r"^scheduled_action\.user_suspension\.|^system\.agent\.(ad|ldap)\.(update_user|"
            r"unlock_user_account)$"
        ),
        3001,
        99,
    ),
    (
        "group-change",
        re.compile(
            r"^group\.|^system\.identity_sources\.group\.|"
            r"^system\.import\.group\.|^pam\.group\."
        ),
        3006,
        99,
    ),
    (
        "app-access",
        re.compile(
            r"^application\.user_membership\.|^user\.session\.impersonation"
            r"\.|^iam\.resourceset\.bindings\."
        ),
        3005,
        99,
    ),
)
# Domains of configuration objects: Entity Management when the verb names an entity activity.
_ENTITY_DOMAINS = re.compile(
    r"^(application|app|policy|zone|network_zone|security|system|event_hook|inline_hook|oauth2|"
    r"pki|pam|workflows|task|resource_servers|account|self_service|device|mim|iam|resource|"
    r"access|certification|governance|directory|workload_principal|integration|analytics|"
    r"personal|plugin|credential|group|user|entitlement|support|org|core)\."
)
_NOT_MFA = frozenset({"user.authentication.slo", "user.authentication.universal_logout"})


def classify_ocsf(event_type: str) -> OcsfClass:
    """OCSF class and activity for an event type id (6003 API Activity when nothing fits)."""
    exact = OCSF_EXACT.get(event_type)
    if exact is not None:
        return _with_mfa(OcsfClass(exact[0], exact[1], "exact"), event_type)
    action = verb(event_type)
    for name, pattern, class_uid, activity in _OCSF_PATTERNS:
        if pattern.search(event_type):
            if activity is None or (activity == 99 and class_uid in (3006,)):
                activity = {"create": 6, "delete": 5}.get(action or "", 99)
            return _with_mfa(OcsfClass(class_uid, activity, name), event_type)
    if action in _ENTITY_VERBS and _ENTITY_DOMAINS.search(event_type):
        return OcsfClass(3004, _ENTITY_VERBS[action], "entity")
    return OcsfClass(6003, _API_VERBS.get(action or "", 99), "fallback")


def _with_mfa(result: OcsfClass, event_type: str) -> OcsfClass:
    if result.class_uid != 3002 or event_type in _NOT_MFA:
        return result
    mfa = (
        "mfa" in event_type
        or ".okta_verify" in event_type
        or event_type.endswith(".verify")
        or "factor_verify" in event_type
        or "mfa_challenge" in event_type
        or "okta_push_verify" in event_type
        or event_type == "system.email.challenge_factor_redeemed"
    )
    return OcsfClass(result.class_uid, result.activity_id, result.rule, True if mfa else None)


def describe(entry: Mapping[str, Any]) -> tuple[EcsClass, OcsfClass]:
    """Both classifications of one catalog entry (``{"id": ..., ...}``)."""
    event_type = str(entry["id"])
    return classify_ecs(event_type), classify_ocsf(event_type)

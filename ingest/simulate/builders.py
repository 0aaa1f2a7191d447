"""Type-specific parts of events: outcome, targets and debug data for each feed type.

Types without a hand-written builder get a generic event whose targets come from the catalog's
schema target names.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import Any

import orjson

from ingest.simulate import event_types, targets
from ingest.simulate.parts import (
    APP_ADD,
    APP_REMOVE,
    APP_RENAME,
    DENY_PUSH,
    GROUP_ADD,
    GROUP_REMOVE,
    LOCK,
    MFA,
    PRIVILEGE_GRANT,
    REQUEST_ID_CHARS,
    SESSION_START,
    SSO,
    THREAT,
    TOKEN_CREATE,
    VERIFY,
    Context,
    Parts,
    Request,
    app_ref,
    app_user_ref,
    enrollment_ref,
    group_ref,
    outcome,
    risk_context,
    user_ref,
)
from ingest.simulate.population import (
    HOSTILE_NETWORKS,
    App,
    Enrollment,
    Group,
    Population,
    User,
    derived_id,
    okta_id,
    token,
)

_ROLES = (
    "Super administrator",
    "Application administrator (all)",
    "Group administrator",
    "Help Desk administrator",
    "Read-only administrator",
)
_THREATS = ("Password Spray", "Brute Force", "Credential Stuffing")


class Builders:
    """Builds the type-specific :class:`Parts` of an event, sharing the generator's random state."""

    def __init__(
        self,
        rng: random.Random,
        population: Population,
        seed: int,
        domain: str,
        new_session: Callable[[User], str],
    ) -> None:
        self._rng = rng
        self.population = population
        self.seed = seed
        self.domain = domain
        self._new_session = new_session
        self._by_type: dict[str, Callable[[str, Context, Request], Parts]] = {
            SESSION_START: self._session_start,
            MFA: self._mfa,
            VERIFY: self._verify,
            SSO: self._sso,
            GROUP_ADD: self._group_membership,
            GROUP_REMOVE: self._group_membership,
            APP_ADD: self._app_membership,
            APP_REMOVE: self._app_membership,
            APP_RENAME: self._app_membership,
            LOCK: self._lock,
            THREAT: self._threat,
            DENY_PUSH: self._deny_push,
            PRIVILEGE_GRANT: self._privilege_grant,
            TOKEN_CREATE: self._token_create,
        }

    @property
    def users(self) -> tuple[User, ...]:
        return self.population.users

    @property
    def admins(self) -> tuple[User, ...]:
        return self.population.admins

    @property
    def groups(self) -> tuple[Group, ...]:
        return self.population.groups

    @property
    def apps(self) -> tuple[App, ...]:
        return self.population.apps

    def build(self, event_type: str, ctx: Context, req: Request) -> Parts:
        """The parts of one ``event_type`` event (generic for types without a builder)."""
        return self._by_type.get(event_type, self._generic)(event_type, ctx, req)

    def _auth_debug(self, ctx: Context) -> dict[str, Any]:
        rng = self._rng
        behaviors = {
            name: "NEGATIVE"
            for name in (
                "New Geo-Location",
                "New Device",
                "New IP",
                "New State",
                "New Country",
                "Velocity",
            )
        }
        if ctx.network in HOSTILE_NETWORKS:
            behaviors.update({"New Geo-Location": "POSITIVE", "New IP": "POSITIVE"})
        level = "HIGH" if ctx.network in HOSTILE_NETWORKS else rng.choice(("LOW", "LOW", "MEDIUM"))
        debug: dict[str, Any] = {
            "authnRequestId": token(rng, 27, REQUEST_ID_CHARS),
            "deviceFingerprint": f"{rng.getrandbits(128):032x}",
            "dtHash": f"{rng.getrandbits(256):064x}",
            "origin": f"https://{self.domain}",
            "behaviors": "{" + ", ".join(f"{k}={v}" for k, v in behaviors.items()) + "}",
        }
        if rng.random() < 0.6:
            security = {"risk": {"level": level}, "behaviors": behaviors}
            debug["logOnlySecurityData"] = orjson.dumps(security).decode()
        return debug

    def _session_start(self, event_type: str, ctx: Context, req: Request) -> Parts:
        rng = self._rng
        result = req.result or "SUCCESS"
        user = ctx.user
        parts = Parts(
            "User login to Okta",
            "core.user_auth.login_success",
            uri="/idp/idx/identify",
            debug=self._auth_debug(ctx),
        )
        if user is None:
            parts.legacy, parts.severity = "core.user_auth.login_failed", "WARN"
            parts.outcome = outcome("FAILURE", req.reason or "VERIFICATION_ERROR")
            parts.uri = "/api/v1/authn"
            return parts
        app = req.app or (
            self.population.admin_console
            if user.admin and rng.random() < 0.3
            else self.population.dashboard
        )
        enrollment = user.password if rng.random() < 0.7 or not user.factors else user.factors[0]
        parts.target = [enrollment_ref(enrollment), app_ref(app)]
        if result == "SUCCESS":
            ctx.session = self._new_session(user)
            if rng.random() < 0.1:
                parts.security = risk_context(rng, ctx)
        elif result == "DENY":
            parts.legacy, parts.severity = "core.user_auth.login_denied", "WARN"
            parts.target = [app_ref(app)]
        else:
            parts.legacy, parts.severity = "core.user_auth.login_failed", "WARN"
            parts.uri = "/idp/idx/challenge/answer"
        default_reason = {
            "FAILURE": "INVALID_CREDENTIALS",
            "DENY": "Sign-on policy evaluation resulted in DENY",
        }
        parts.outcome = outcome(result, req.reason or default_reason.get(result))
        return parts

    def _factor(self, user: User | None) -> Enrollment:
        if user is None or not user.factors:
            return Enrollment(
                okta_id(self._rng, "pfd"), "Okta Verify", "OTP", "OKTA_CREDENTIAL_PROVIDER"
            )
        return self._rng.choice(user.factors)

    def _mfa(self, event_type: str, ctx: Context, req: Request) -> Parts:
        factor = self._factor(ctx.user)
        result = req.result or "SUCCESS"
        ok = result == "SUCCESS"
        reason = req.reason or (None if ok else "INVALID_CREDENTIALS")
        return Parts(
            "Authentication of user via MFA",
            "core.user.factor.attempt_success" if ok else "core.user.factor.attempt_fail",
            severity="INFO" if ok else "WARN",
            outcome=outcome(result, reason),
            target=[enrollment_ref(factor)],
            uri="/idp/idx/challenge/answer",
            debug=self._auth_debug(ctx),
            credential_type=factor.credential_type,
            credential_provider=factor.credential_provider,
            authentication_provider="FACTOR_PROVIDER",
        )

    def _verify(self, event_type: str, ctx: Context, req: Request) -> Parts:
        rng = self._rng
        result = req.result or ("SUCCESS" if rng.random() < 0.95 else "FAILURE")
        user = ctx.user
        enrollment = self._factor(user) if user is None or rng.random() < 0.5 else user.password
        app = req.app or self.population.dashboard
        return Parts(
            "Verify user identity",
            severity="INFO" if result == "SUCCESS" else "WARN",
            outcome=outcome(
                result, req.reason or (None if result == "SUCCESS" else "INVALID_CREDENTIALS")
            ),
            target=[enrollment_ref(enrollment), app_ref(app)],
            uri="/idp/idx/challenge/answer",
            debug=self._auth_debug(ctx),
            credential_type=enrollment.credential_type,
            authentication_provider="OKTA_AUTHENTICATION_PROVIDER",
        )

    def _subject(self, req: Request) -> User:
        return req.subject or self._rng.choice(self.users[len(self.admins) :])

    def _group_membership(self, event_type: str, ctx: Context, req: Request) -> Parts:
        user = self._subject(req)
        group = req.group or self._rng.choice(self.groups[1:])
        add = event_type == GROUP_ADD
        return Parts(
            "Add user to group membership" if add else "Remove user from group membership",
            "core.user_group_member.user_add" if add else "core.user_group_member.user_remove",
            outcome=outcome(req.result or "SUCCESS", req.reason),
            target=[user_ref(user), group_ref(group)],
            uri=f"/api/v1/groups/{group.id}/users/{user.id}",
        )

    def _app_membership(self, event_type: str, ctx: Context, req: Request) -> Parts:
        user = self._subject(req)
        app = req.app or self._rng.choice(self.apps)
        display, legacy = {
            APP_ADD: (
                "Add user to application membership",
                "app.generic.provision.assign_user_to_app",
            ),
            APP_REMOVE: (
                "Remove user from application membership",
                "app.generic.unprovision.deactivate_user_from_app",
            ),
            APP_RENAME: ("Change user's application username", None),
        }[event_type]
        return Parts(
            display,
            legacy,
            outcome=outcome(req.result or "SUCCESS", req.reason),
            target=[app_user_ref(app, user), app_ref(app), user_ref(user)],
            uri=f"/api/v1/apps/{app.id}/users/{user.id}",
        )

    def _sso(self, event_type: str, ctx: Context, req: Request) -> Parts:
        rng = self._rng
        user = ctx.user or self._subject(req)
        app = req.app or rng.choice(self.apps)
        instance = app_ref(app)
        instance["detailEntry"] = {"signOnModeType": app.sign_on_mode}
        app_key = derived_id("exk", self.seed, app.id)
        return Parts(
            "User single sign on to app",
            "app.auth.sso",
            outcome=outcome(req.result or "SUCCESS", req.reason),
            target=[instance, app_user_ref(app, user)],
            uri=f"/app/{app.name}/{app_key}/sso/saml",
            debug={
                "authnRequestId": token(rng, 27, REQUEST_ID_CHARS),
                "initiationType": rng.choice(("SP_INITIATED", "IDP_INITIATED")),
                "signOnMode": app.sign_on_label,
            },
        )

    def _lock(self, event_type: str, ctx: Context, req: Request) -> Parts:
        return Parts(
            "Max sign in attempts exceeded",
            "core.user_auth.account_locked",
            severity="WARN",
            outcome=outcome(req.result or "FAILURE", req.reason or "LOCKED_OUT"),
            uri="/idp/idx/challenge/answer",
        )

    def _threat(self, event_type: str, ctx: Context, req: Request) -> Parts:
        kind = self._rng.choice(_THREATS)
        detections = orjson.dumps({kind: f'["{ctx.ip}"]'}).decode()
        return Parts(
            "Request from suspicious actor",
            "security.threat.detected",
            severity="WARN",
            outcome=outcome(req.result or "DENY", req.reason or kind),
            uri="/api/v1/authn",
            debug={"threatSuspected": "true", "threatDetections": detections},
        )

    def _deny_push(self, event_type: str, ctx: Context, req: Request) -> Parts:
        user = ctx.user or self._subject(req)
        return Parts(
            "User rejected Okta push verify",
            "core.user.factor.attempt_fail",
            severity="WARN",
            outcome=outcome(req.result or "FAILURE", req.reason),
            target=[user_ref(user)],
            uri="/idp/idx/authenticators/poll",
            debug=self._auth_debug(ctx),
            credential_type="OTP",
            credential_provider="OKTA_CREDENTIAL_PROVIDER",
        )

    def _privilege_grant(self, event_type: str, ctx: Context, req: Request) -> Parts:
        user = self._subject(req)
        return Parts(
            "Grant user privilege",
            "core.user.admin_privilege.granted",
            outcome=outcome(req.result or "SUCCESS", req.reason),
            target=[user_ref(user)],
            uri=f"/api/v1/users/{user.id}/roles",
            debug={"privilegeGranted": self._rng.choice(_ROLES)},
        )

    def _token_create(self, event_type: str, ctx: Context, req: Request) -> Parts:
        rng = self._rng
        name = rng.choice(("siem-export", "terraform", "scim-bridge", "okta-backup"))
        ref = {
            "id": okta_id(rng, "00T"),
            "type": "Token",
            "alternateId": "unknown",
            "displayName": name,
            "detailEntry": None,
        }
        return Parts(
            "Create API token",
            "api.token.create",
            outcome=outcome(req.result or "SUCCESS", req.reason),
            target=[ref],
            uri="/api/internal/tokens",
        )

    def _generic(self, event_type: str, ctx: Context, req: Request) -> Parts:
        rng = self._rng
        known = event_types.by_id().get(event_type)
        schema = known.targets if known is not None else ()
        kinds = [targets.target_type(name, event_type) for name in schema]
        if not kinds:
            inferred = targets.prefix_type(event_type)
            kinds = [inferred] if inferred else []
        refs = [self._generic_ref(kind, ctx, req) for kind in dict.fromkeys(kinds)]
        crc = zlib.crc32(event_type.encode())
        result = None if crc % 11 == 0 else outcome(req.result or "SUCCESS", req.reason)
        words = ("violation", "threat", "suspicious", "lock", "deny", "blocked", "fail")
        severity = "WARN" if any(w in event_type for w in words) else "INFO"
        if rng.random() < 0.002:
            severity = "ERROR"
        first = event_type.split(".")[0]
        return Parts(
            targets.display_message(event_type),
            severity=severity,
            outcome=result,
            target=refs or None,
            uri=f"/api/v1/{first}s" + (f"/{refs[0]['id']}" if refs else ""),
        )

    def _generic_ref(self, kind: str, ctx: Context, req: Request) -> dict[str, Any]:
        rng = self._rng
        if kind == "User":
            return user_ref(req.subject or ctx.user or rng.choice(self.users))
        if kind == "UserGroup":
            return group_ref(req.group or rng.choice(self.groups))
        if kind == "AppInstance":
            return app_ref(req.app or rng.choice(self.apps))
        if kind == "AuthenticatorEnrollment":
            return enrollment_ref(self._factor(ctx.user))
        number = rng.randint(1, 40)
        return {
            "id": derived_id(targets.id_prefix(kind), self.seed, kind, number),
            "type": kind,
            "alternateId": "unknown",
            "displayName": f"{targets.words(kind)} {number}",
            "detailEntry": None,
        }

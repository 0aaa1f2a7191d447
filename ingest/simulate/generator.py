"""Realistic Okta LogEvent dicts, deterministic for a seed.

Events carry the quirks real collectors meet: ``client.zone`` as the string ``"null"``, an
``ipAddress`` that is sometimes the string ``"null"``, ``device`` mostly null, ``outcome`` null
for some types, string-typed ``debugData`` values and a JSON document inside a string
(``logOnlySecurityData``).
"""

from __future__ import annotations

import random
import uuid
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.base.clock import rfc3339_ms, utc
from ingest.simulate import event_types
from ingest.simulate.builders import Builders
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
    device_info,
    feed_types,
    geo_context,
    user_ref,
)
from ingest.simulate.population import (
    AGENTS,
    HOSTILE_NETWORKS,
    OFFICE,
    TOOL_AGENTS,
    App,
    Group,
    Network,
    User,
    build_population,
    token,
)

__all__ = ["LOCK", "Event", "EventGenerator", "feed_types"]

Event = dict[str, Any]


_GREGORIAN = datetime(1582, 10, 15, tzinfo=UTC)
_USER_PREFIXES = (
    "user.authentication.",
    "user.session.",
    "user.mfa.",
    "user.account.",
    "user.credential.",
    "user.factor.",
    "app.oauth2.",
    "policy.evaluate_sign_on",
    "security.",
    "device.",
)
_SYSTEM_ACTOR = {
    "id": "0oa1sys7em0pr1nc1pa",
    "type": "SystemPrincipal",
    "alternateId": "system@okta.com",
    "displayName": "Okta System",
    "detailEntry": None,
}


def _millis(dt: datetime) -> datetime:
    dt = utc(dt)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


class EventGenerator:
    """Builds Okta System Log events over a fixed, seeded population.

    The same seed and the same sequence of calls give byte-identical events.
    """

    def __init__(self, seed: int = 0, domain: str = "example.okta.com") -> None:
        self.seed = seed
        self.domain = domain
        self.population = build_population(seed)
        self._rng = random.Random(f"events:{seed}")
        self._by_login = {u.login.lower(): u for u in self.population.users}
        self._networks: dict[str, Network] = {u.ip: u.home for u in self.population.users}
        self._sessions: dict[str, str] = {}
        self._nodes = [self._rng.getrandbits(48) | (1 << 40) for _ in range(4)]
        self._builders = Builders(
            self._rng,
            self.population,
            seed,
            domain,
            lambda user: self._session(user, fresh=True),
        )

    # -- population -------------------------------------------------------------------------

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

    def user(self, login: str) -> User | None:
        """The population user with this login, if any."""
        return self._by_login.get(login.lower())

    # -- single events ----------------------------------------------------------------------

    def event(
        self,
        event_type: str,
        published: datetime,
        *,
        actor: User | str | None = None,
        subject: User | None = None,
        group: Group | None = None,
        app: App | None = None,
        result: str | None = None,
        reason: str | None = None,
        ip: str | None = None,
        target: list[dict[str, Any]] | None = None,
    ) -> Event:
        """One event of ``event_type`` published at ``published`` (truncated to the ms).

        ``actor`` is a population user or a typed login (an unknown login gives an ``unknown``
        actor); ``subject`` is the user an admin acts on; ``result``/``reason`` set the outcome;
        ``ip`` the client address; ``target`` replaces the generated targets.
        """
        request = Request(actor, subject, group, app, result, reason, ip, target)
        return self._build(event_type, _millis(published), request)

    def _build(self, event_type: str, published: datetime, request: Request) -> Event:
        ctx = self._context(event_type, request)
        parts = self._builders.build(event_type, ctx, request)
        if request.target is not None:
            parts.target = request.target
        return self._assemble(event_type, published, ctx, parts)

    # -- streams ----------------------------------------------------------------------------

    def stream(self, count: int, start: datetime, end: datetime) -> list[Event]:
        """``count`` events of a realistic mix, published in ``[start, end)``, sorted.

        Sign-in flows (session start, MFA, SSO in one session) dominate; admin changes, failures
        and rare catalog types are sprinkled in; about 2% share a published millisecond.
        """
        start, end = _millis(start), _millis(end)
        if end <= start:
            raise ValueError("stream needs start < end")
        span_ms = int((end - start) / timedelta(milliseconds=1))
        rng = self._rng
        plan: list[tuple[datetime, str, Request]] = []
        while len(plan) < count:
            base = start + timedelta(milliseconds=rng.randrange(span_ms))
            for offset, event_type, request in self._scenario():
                at = min(base + timedelta(milliseconds=offset), end - timedelta(milliseconds=1))
                plan.append((at, event_type, request))
        plan = plan[:count]
        plan.sort(key=lambda item: item[0])
        for i in range(1, len(plan)):
            if rng.random() < 0.02:
                plan[i] = (plan[i - 1][0], plan[i][1], plan[i][2])
        return [self._build(event_type, at, request) for at, event_type, request in plan]

    def failed_login_burst(
        self,
        count: int,
        published_start: datetime,
        user: User | str | None = None,
        ip: str | None = None,
    ) -> list[Event]:
        """A brute-force run: ``count`` failed sign-ins against one account from one address."""
        rng = self._rng
        target_user = user if user is not None else rng.choice(self.users)
        address = ip or rng.choice(HOSTILE_NETWORKS).address(rng)
        agent = rng.choice(TOOL_AGENTS)
        at = _millis(published_start)
        events = []
        for _ in range(count):
            request = Request(actor=target_user, result="FAILURE", ip=address, agent=agent)
            events.append(self._build(SESSION_START, at, request))
            at += timedelta(milliseconds=rng.randint(300, 3000))
        return events

    def _scenario(self) -> list[tuple[int, str, Request]]:
        """One burst of related activity as (offset ms, event type, request) triples."""
        rng = self._rng
        roll = rng.random()
        user = rng.choice(self.users)
        here = Request(actor=user, ip=self._pick_ip(user))
        if roll < 0.42:
            steps: list[tuple[int, str, Request]] = [(0, SESSION_START, here)]
            offset = rng.randint(2000, 20000)
            if user.factors and rng.random() < 0.8:
                mfa_ok = rng.random() < 0.95
                steps.append((offset, MFA, replace(here, result=None if mfa_ok else "FAILURE")))
                if not mfa_ok:
                    return steps
            for _ in range(rng.randint(0, 3)):
                offset += rng.randint(5_000, 900_000)
                steps.append((offset, SSO, here))
            return steps
        if roll < 0.62:
            return [(0, SSO, here)]
        if roll < 0.72:
            return [(0, VERIFY, here)]
        if roll < 0.78:
            return [(0, SESSION_START, replace(here, result="FAILURE"))]
        if roll < 0.80:
            typed = rng.choice((f"{token(rng, 6).lower()}@example.com", "admin", "Summer2024!"))
            return [(0, SESSION_START, replace(here, actor=typed, ip=None))]
        if roll < 0.81:
            return [(0, SESSION_START, replace(here, result="DENY"))]
        if roll < 0.83:
            return [(0, rng.choice((DENY_PUSH, MFA)), replace(here, result="FAILURE"))]
        if roll < 0.89:
            kind = rng.choice(
                (GROUP_ADD, GROUP_ADD, GROUP_REMOVE, APP_ADD, APP_ADD, APP_REMOVE, APP_RENAME)
            )
            return [(0, kind, Request(subject=user))]
        if roll < 0.95:
            common = (
                "user.session.end",
                "policy.evaluate_sign_on",
                "user.session.access_admin_app",
                "app.oauth2.as.token.grant.access_token",
                "user.account.update_password",
            )
            return [(0, rng.choice(common), here)]
        if roll < 0.97:
            rare = (
                LOCK,
                THREAT,
                PRIVILEGE_GRANT,
                TOKEN_CREATE,
                "user.account.lock.limit",
                "security.request.blocked",
                "user.mfa.factor.deactivate",
            )
            return [(0, rng.choice(rare), Request(subject=user))]
        return [(0, rng.choice(event_types.event_types()).id, Request())]

    # -- context ----------------------------------------------------------------------------

    def _role(self, event_type: str) -> str:
        if event_type in (THREAT,):
            return "threat"
        if event_type in (
            GROUP_ADD,
            GROUP_REMOVE,
            APP_ADD,
            APP_REMOVE,
            APP_RENAME,
            PRIVILEGE_GRANT,
            TOKEN_CREATE,
        ):
            return "admin"
        if event_type.startswith(_USER_PREFIXES):
            return "user"
        if event_type.startswith("system.") and zlib.crc32(event_type.encode()) % 3 == 0:
            return "system"
        return "admin"

    def _pick_ip(self, user: User) -> str:
        rng = self._rng
        roll = rng.random()
        if roll < 0.7:
            return user.ip
        network = OFFICE if roll < 0.9 else rng.choice((HOSTILE_NETWORKS[0], user.home))
        address = network.address(rng)
        self._networks[address] = network
        return address

    def _network(self, address: str) -> Network | None:
        if address == "null":
            return None
        known = self._networks.get(address)
        if known is not None:
            return known
        return HOSTILE_NETWORKS[zlib.crc32(address.encode()) % len(HOSTILE_NETWORKS)]

    def _context(self, event_type: str, request: Request) -> Context:
        rng = self._rng
        role = self._role(event_type)
        user: User | None = None
        typed: str | None = None
        if isinstance(request.actor, User):
            user = request.actor
        elif isinstance(request.actor, str):
            user = self.user(request.actor)
            typed = None if user is not None else request.actor
        elif role == "admin":
            user = rng.choice(self.admins)
        elif role == "user":
            user = request.subject or rng.choice(self.users)
        elif role == "threat":
            typed = "unknown"
        if request.ip is not None:
            address = request.ip
        elif user is not None:
            address = self._pick_ip(user)
        elif role == "system":
            address = "null"
        else:
            hostile = rng.choice(HOSTILE_NETWORKS)
            address = hostile.address(rng)
            self._networks[address] = hostile
        if address != "null" and rng.random() < 0.005:
            address = "null"
        network = self._network(address)
        if request.agent is not None:
            agent = request.agent
        elif user is not None and rng.random() < 0.85:
            agent = user.agent
        elif user is None and rng.random() < 0.6:
            agent = rng.choice(TOOL_AGENTS)
        else:
            agent = rng.choice(AGENTS)
        if user is not None:
            actor = user_ref(user)
            session = self._session(user, api=role == "admin" and rng.random() < 0.3)
        elif typed is not None:
            actor = {
                "id": "unknown",
                "type": "User",
                "alternateId": typed,
                "displayName": "unknown",
                "detailEntry": None,
            }
            session = "unknown"
        else:
            actor = dict(_SYSTEM_ACTOR)
            session = "unknown"
        zone = "null"
        if network is not None and rng.random() < 0.15:
            zone = "LegacyIpZone" if network is OFFICE else "BlockedIpZone"
        device = None
        if user is not None and user.device_id and rng.random() < 0.3:
            device = device_info(user, agent)
        return Context(
            actor,
            user,
            address,
            network,
            agent,
            zone,
            session,
            token(rng, 27, REQUEST_ID_CHARS),
            device,
        )

    def _session(self, user: User, *, api: bool = False, fresh: bool = False) -> str:
        if api:
            return "trs" + token(self._rng, 22)
        current = self._sessions.get(user.id)
        if current is None or fresh:
            current = "idx" + token(self._rng, 22)
            self._sessions[user.id] = current
        return current

    # -- assembly ---------------------------------------------------------------------------

    def _uuid(self, published: datetime) -> str:
        """A time-based (version 1) UUID for ``published``, like Okta's."""
        rng = self._rng
        delta = published - _GREGORIAN
        ticks = (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
        ticks += rng.randrange(10_000)
        clock_seq = rng.getrandbits(14)
        return str(
            uuid.UUID(
                fields=(
                    ticks & 0xFFFFFFFF,
                    (ticks >> 32) & 0xFFFF,
                    ((ticks >> 48) & 0x0FFF) | 0x1000,
                    (clock_seq >> 8) | 0x80,
                    clock_seq & 0xFF,
                    rng.choice(self._nodes),
                )
            )
        )

    def _assemble(self, event_type: str, published: datetime, ctx: Context, parts: Parts) -> Event:
        rng = self._rng
        geo = geo_context(ctx.network) if ctx.network is not None else None
        chain: list[dict[str, Any]] = []
        if ctx.ip != "null":
            chain.append(
                {"ip": ctx.ip, "geographicalContext": geo, "version": "V4", "source": None}
            )
            if ctx.network is not None and ctx.network.is_proxy:
                hop = OFFICE.address(rng)
                chain.append(
                    {
                        "ip": hop,
                        "geographicalContext": geo_context(OFFICE),
                        "version": "V4",
                        "source": None,
                    }
                )
        security: dict[str, Any] = {
            "asNumber": None,
            "asOrg": None,
            "isp": None,
            "domain": None,
            "isProxy": None,
        }
        if ctx.network is not None and rng.random() < 0.75:
            net = ctx.network
            security = {
                "asNumber": net.as_number,
                "asOrg": net.as_org,
                "isp": net.isp,
                "domain": net.domain,
                "isProxy": net.is_proxy,
            }
        security.update(parts.security)
        debug: dict[str, Any] = {
            "requestId": ctx.request_id,
            "requestUri": parts.uri.split("?")[0],
            "url": parts.uri if "?" in parts.uri else parts.uri + "?",
        }
        if rng.random() < 0.97:
            debug["threatSuspected"] = "true" if ctx.network in HOSTILE_NETWORKS else "false"
        debug.update(parts.debug)
        root = ctx.session if ctx.session.startswith("idx") else None
        authn: dict[str, Any] = {
            "authenticationProvider": parts.authentication_provider,
            "credentialProvider": parts.credential_provider,
            "credentialType": parts.credential_type,
            "issuer": None,
            "interface": None,
            "authenticationStep": 0,
            "externalSessionId": ctx.session,
        }
        if root is not None:
            authn["rootSessionId"] = root
        system = ctx.actor.get("type") == "SystemPrincipal"
        return {
            "uuid": self._uuid(published),
            "published": rfc3339_ms(published),
            "eventType": event_type,
            "version": "0",
            "severity": parts.severity,
            "legacyEventType": parts.legacy,
            "displayMessage": parts.display,
            "actor": ctx.actor,
            "client": {
                "userAgent": {
                    "rawUserAgent": ctx.agent.raw,
                    "os": ctx.agent.os,
                    "browser": ctx.agent.browser,
                },
                "zone": ctx.zone,
                "device": ctx.agent.device,
                "id": None,
                "ipAddress": ctx.ip,
                "geographicalContext": geo,
            },
            "device": ctx.device,
            "authenticationContext": authn,
            "outcome": parts.outcome,
            "securityContext": security,
            "debugContext": {"debugData": debug},
            "request": {"ipChain": chain},
            "target": parts.target,
            "transaction": {
                "type": "JOB" if system else "WEB",
                "id": ctx.request_id,
                "detail": {},
            },
        }

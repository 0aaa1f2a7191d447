"""The data set the feed tests share, and plain-Python readers of its raw events.

Two sources of simulated Okta events (a realistic background stream each) plus planted
scenarios for every detection, stored through the real mapping and store into a DuckDB file.
The expected answers of the feed tests are computed from ``Dataset.events`` -- the raw event
dicts exactly as they were committed -- never from SQL.

tests/test_feeds_dataset.py checks that the planted scenarios and the quirks really are in the
file; the ``data`` and ``con`` fixtures (tests/conftest.py) build it once per worker.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest.config import normalized_mapping_path
from ingest.mapping import CompiledMapping, load_mapping
from ingest.simulate.generator import EventGenerator
from ingest.simulate.parts import geo_context
from ingest.simulate.population import HOME_NETWORKS, HOSTILE_NETWORKS, User
from ingest.store.db import PageRows, Store, lock_configuration
from ingest.store.lake import LakeConfig, connect_lake
from ingest.store.query import open_read_only

Event = dict[str, Any]

T0 = datetime(2026, 11, 2, tzinfo=UTC)
NOW = T0 + timedelta(days=3)  # the feeds' default since (7d) is T0 - 4d
# what policy-changes reads: the lifecycle of policies and their rules
POLICY_TYPES = (
    "policy.lifecycle.create",
    "policy.lifecycle.update",
    "policy.lifecycle.overwrite",
    "policy.lifecycle.delete",
    "policy.lifecycle.activate",
    "policy.lifecycle.deactivate",
    "policy.rule.add",
    "policy.rule.update",
    "policy.rule.delete",
    "policy.rule.activate",
    "policy.rule.deactivate",
)
ORG = {"acme": "https://acme.okta.com", "globex": "https://globex.okta.com"}

SESSION_START = "user.session.start"
MFA = "user.authentication.auth_via_mfa"
VERIFY = "user.authentication.verify"
DENY_PUSH = "user.mfa.okta_verify.deny_push"


# -- reading raw events -------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """A string field as the normalized mapping stores it ("null" and "" become NULL)."""
    if value is None or value in ("null", ""):
        return None
    return str(value)


@dataclass(frozen=True)
class Stored:
    """One committed event: its source and the raw dict."""

    source: str
    e: Event

    @cached_property
    def uuid(self) -> str:
        return str(self.e["uuid"])

    @cached_property
    def published(self) -> datetime:
        return datetime.fromisoformat(str(self.e["published"]))

    @cached_property
    def type(self) -> str:
        return str(self.e["eventType"])

    @cached_property
    def result(self) -> str | None:
        return text((self.e.get("outcome") or {}).get("result"))

    @cached_property
    def reason(self) -> str | None:
        return text((self.e.get("outcome") or {}).get("reason"))

    @cached_property
    def actor(self) -> dict[str, Any]:
        return dict(self.e.get("actor") or {})

    @cached_property
    def actor_id(self) -> str | None:
        return text(self.actor.get("id"))

    @cached_property
    def login(self) -> str | None:
        return text(self.actor.get("alternateId"))

    @cached_property
    def ip(self) -> str | None:
        value = text((self.e.get("client") or {}).get("ipAddress"))
        return None if value is None else str(ipaddress.ip_address(value))

    @cached_property
    def geo(self) -> dict[str, Any]:
        return dict((self.e.get("client") or {}).get("geographicalContext") or {})

    @cached_property
    def country(self) -> str | None:
        return text(self.geo.get("country"))

    @cached_property
    def security(self) -> dict[str, Any]:
        return dict(self.e.get("securityContext") or {})

    @cached_property
    def debug(self) -> dict[str, Any]:
        return dict((self.e.get("debugContext") or {}).get("debugData") or {})

    def target(self, kind: str) -> dict[str, Any] | None:
        """The first target of this type (targets are chosen by type, never by position)."""
        for item in self.e.get("target") or []:
            if isinstance(item, dict) and item.get("type") == kind:
                return item
        return None

    def target_field(self, kind: str, key: str) -> str | None:
        found = self.target(kind)
        return None if found is None else text(found.get(key))


def same_login(value: str | None, wanted: str) -> bool:
    return value is not None and value.lower() == wanted.lower()


def is_id_or_login(ref: dict[str, Any] | None, wanted: str, name_key: str) -> bool:
    """``ref`` (a target or the actor) has id ``wanted`` or ``name_key`` equal ignoring case."""
    if ref is None:
        return False
    return text(ref.get("id")) == wanted or same_login(text(ref.get(name_key)), wanted)


# -- sliding-window findings, the definition the detection feeds document -------------------------


def sliding_findings(
    items: Iterable[Stored],
    key: Callable[[Stored], tuple[str, str]],
    measure: Callable[[list[Stored]], int],
    minimum: int,
    window: timedelta,
) -> list[tuple[tuple[str, str], list[Stored]]]:
    """Group ``items`` by ``key``; an item at t is dense when ``measure`` of the same key's items
    in [t - window, t] reaches ``minimum``; the intervals [t - window, t] of dense items that
    overlap or touch merge; each merged interval is one finding holding every item inside it."""
    groups: dict[tuple[str, str], list[Stored]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    found: list[tuple[tuple[str, str], list[Stored]]] = []
    for k, group in groups.items():
        ends = sorted(
            {
                s.published
                for s in group
                if measure([x for x in group if s.published - window <= x.published <= s.published])
                >= minimum
            }
        )
        spans: list[list[datetime]] = []
        for end in ends:
            if spans and end - window <= spans[-1][1]:
                spans[-1][1] = end
            else:
                spans.append([end - window, end])
        for low, high in spans:
            found.append((k, [x for x in group if low <= x.published <= high]))
    return found


def distinct(values: Iterable[Any]) -> list[Any]:
    """Sorted distinct non-null values, as ``list_sort(list_distinct(list(x)))``."""
    return sorted({v for v in values if v is not None})


# -- the data set -------------------------------------------------------------------------------


@dataclass
class Dataset:
    path: Path
    events: list[Stored]
    planted: dict[str, Any] = field(default_factory=dict)
    lake: LakeConfig | None = None  # the same events in a lake instead of the file

    def by_uuid(self) -> dict[str, Stored]:
        return {s.uuid: s for s in self.events}


class Planter:
    """Builds planted events on one generator and remembers them."""

    def __init__(self, gen: EventGenerator) -> None:
        self.gen = gen
        self.events: list[Event] = []

    def add(self, event: Event) -> Event:
        self.events.append(event)
        return event

    def sign_in(
        self, at: datetime, actor: User | str, result: str = "SUCCESS", ip: str | None = None
    ) -> Event:
        return self.add(self.gen.event(SESSION_START, at, actor=actor, result=result, ip=ip))

    def failures(
        self,
        actors: Sequence[User | str],
        start: datetime,
        step: timedelta,
        ip: str,
        deny_every: int = 0,
    ) -> list[Event]:
        """One failed sign-in per actor, ``step`` apart; every ``deny_every``-th one a DENY."""
        made = []
        for i, actor in enumerate(actors):
            result = "DENY" if deny_every and i % deny_every == deny_every - 1 else "FAILURE"
            made.append(self.sign_in(start + i * step, actor, result, ip))
        return made


def _relocate(event: Event, network_index: int, hostile: bool = True) -> Event:
    """Place a sign-in in another country (the generator picks geography from the address)."""
    network = (HOSTILE_NETWORKS if hostile else HOME_NETWORKS)[network_index]
    event["client"]["geographicalContext"] = geo_context(network)
    return event


def plant_acme(p: Planter) -> dict[str, Any]:
    gen = p.gen
    users = gen.users
    admins = gen.admins
    h = timedelta(hours=1)
    s = timedelta(seconds=1)
    planted: dict[str, Any] = {}

    # brute force: above, below, slow (only with a wider window), twice, exact window edges
    bf_hit = users[10]
    p.events.extend(gen.failed_login_burst(14, T0 + 10 * h, user=bf_hit, ip="167.99.10.10"))
    p.events.extend(gen.failed_login_burst(9, T0 + 20 * h, user=users[11], ip="167.99.10.11"))
    p.failures([users[12]] * 12, T0 + 30 * h, 150 * s, "167.99.10.12")
    p.failures([users[13]] * 11, T0 + 40 * h, 20 * s, "167.99.10.13", deny_every=3)
    p.failures([users[13]] * 10, T0 + 42 * h, 20 * s, "167.99.10.13")
    edge = [users[15]] * 10
    p.failures(edge, T0 + 44 * h, timedelta(seconds=600) / 9, "167.99.10.15")  # exactly 10m
    p.failures([users[16]] * 10, T0 + 45 * h, timedelta(milliseconds=66_667), "167.99.10.16")
    # two dense windows that touch at one failure: one finding, the shared failure once
    touch_at = T0 + 47 * h
    p.failures([users[14]] * 9, touch_at, timedelta(0), "167.99.10.14")
    p.sign_in(touch_at + 600 * s, users[14], "FAILURE", "167.99.10.14")
    p.failures([users[14]] * 9, touch_at + 600 * s + 600 * s / 9, 600 * s / 9, "167.99.10.14")
    planted["bf_touch"] = users[14].login
    # an unknown login typed in several spellings: one finding for "admin"
    typed: list[User | str] = ["admin", "ADMIN", "Admin"] * 4
    p.failures(typed, T0 + 46 * h, 3 * s, "51.68.20.20")
    planted["bf_hit"] = bf_hit.login
    planted["bf_slow"] = users[12].login
    planted["bf_twice"] = users[13].login
    planted["bf_edge_in"] = users[15].login
    planted["bf_edge_out"] = users[16].login

    # password spray: one address, many users (some unknown); below the bar; too slow
    spray: list[User | str] = [*users[20:26], "svc-backup", "root", users[20]]
    p.failures(spray, T0 + 50 * h, 60 * s, "185.220.101.50", deny_every=4)
    p.sign_in(T0 + 50 * h + 30 * s, users[20], "FAILURE", "null")  # no address: not a spray
    p.failures(list(users[20:24]), T0 + 51 * h, 60 * s, "185.220.101.51")
    p.failures(list(users[20:26]), T0 + 52 * h, 600 * s, "185.220.101.52")
    planted["spray_hit"] = "185.220.101.50"
    planted["spray_slow"] = "185.220.101.52"

    # MFA fatigue: Classic deny_push, mixed with push verifications, Identity Engine style,
    # failures of a non-push factor (ignored), and too few
    fatigue_at = T0 + 55 * h
    for i in range(6):
        p.add(gen.event(DENY_PUSH, fatigue_at + i * 40 * s, actor=users[30]))
    for i in range(3):
        p.add(gen.event(DENY_PUSH, fatigue_at + i * 60 * s, actor=users[31]))
        failed = p.add(
            gen.event(MFA, fatigue_at + (i * 60 + 30) * s, actor=users[31], result="FAILURE")
        )
        failed["debugContext"]["debugData"]["factor"] = "OKTA_VERIFY_PUSH"
        approved = p.add(gen.event(MFA, fatigue_at + (i * 60 + 40) * s, actor=users[31]))
        approved["debugContext"]["debugData"]["factor"] = "OKTA_VERIFY_PUSH"
    for i in range(5):
        verify = p.add(
            gen.event(VERIFY, fatigue_at + i * 90 * s, actor=users[32], result="FAILURE")
        )
        verify["target"] = [
            {
                "id": f"pfd{i}enrollment000000",
                "type": "AuthenticatorEnrollment",
                "alternateId": "unknown",
                "displayName": "Okta Verify",
                "detailEntry": {"methodTypeUsed": "Get a push notification"},
            }
        ]
    for i in range(7):
        p.add(gen.event(MFA, fatigue_at + i * 30 * s, actor=users[33], result="FAILURE"))
    for i in range(4):
        p.add(gen.event(DENY_PUSH, fatigue_at + i * 30 * s, actor=users[34]))
    planted["fatigue"] = [users[30].login, users[31].login, users[32].login]
    planted["fatigue_not_push"] = users[33].login

    # new country: history at home, then abroad; a new hire's first sign-in is no finding;
    # a country last seen before the lookback is new again
    traveller = users[40]
    p.sign_in(T0 - 20 * timedelta(days=1), traveller, ip=traveller.ip)
    p.sign_in(T0 - 5 * timedelta(days=1), traveller, ip=traveller.ip)
    # Romania and France: the background never signs anybody in successfully from there
    planted["new_country"] = _relocate(p.sign_in(T0 + 60 * h, traveller), 3)["uuid"]
    hire = replace(users[41], id="00unewhire0000000001", login="new.hire@example.com")
    planted["first_sign_in"] = _relocate(p.sign_in(T0 + 61 * h, hire), 6, hostile=False)["uuid"]
    planted["hire_abroad"] = _relocate(p.sign_in(T0 + 62 * h, hire), 3)["uuid"]
    returning = users[42]
    _relocate(p.sign_in(T0 - 31 * timedelta(days=1), returning), 1)
    p.sign_in(T0 - 2 * timedelta(days=1), returning, ip=returning.ip)
    planted["returning"] = _relocate(p.sign_in(T0 + 26 * h, returning), 1)["uuid"]

    # proxies and anonymizers
    proxied = users[43]
    a = p.sign_in(T0 + 63 * h, proxied)
    a["securityContext"]["isProxy"] = True
    b = p.sign_in(T0 + 63 * h + 5 * s, proxied)
    b["securityContext"]["isProxy"] = False
    b["debugContext"]["debugData"]["tunnels"] = (
        '[{"anonymous":true,"operator":"EXAMPLE_VPN","type":"VPN"}]'
    )
    c = p.sign_in(T0 + 63 * h + 9 * s, proxied)
    c["securityContext"]["isProxy"] = None
    c["debugContext"]["debugData"]["tunnels"] = '[{"anonymous":false,"type":"VPN"}]'
    d = p.sign_in(T0 + 63 * h + 20 * s, proxied, result="FAILURE")
    d["securityContext"]["isProxy"] = True
    planted["proxy"] = [a["uuid"], b["uuid"], d["uuid"]]
    planted["not_proxy"] = c["uuid"]

    # admin activity and other detections, one or more of each type (and near misses)
    at = T0 + 65 * h
    kinds = [
        ("user.account.privilege.grant", admins[0], users[5]),
        ("user.account.privilege.grant", admins[1], users[6]),
        ("group.privilege.grant", admins[0], None),
        ("iam.resourceset.bindings.add", admins[2], None),
        ("system.api_token.create", admins[1], None),
        ("system.api_token.create", admins[3], None),
        ("user.mfa.factor.reset_all", admins[0], users[7]),
        ("user.mfa.factor.deactivate", users[8], None),
        ("system.idp.lifecycle.create", admins[2], None),
        ("system.idp.lifecycle.activate", admins[2], None),
        ("system.idp.lifecycle.update", admins[2], None),
        ("zone.deactivate", admins[1], None),
        ("zone.delete", admins[1], None),
        ("zone.update", admins[1], None),
        ("security.threat.detected", None, None),
        ("security.request.blocked", None, None),
        ("user.account.report_suspicious_activity_by_enduser", users[9], None),
        ("user.account.report_suspicious_activity_by_enduser", users[19], None),
        ("user.session.impersonation.grant", admins[0], users[3]),
        ("user.session.impersonation.initiate", admins[3], users[3]),
        ("user.session.impersonation.extend", admins[3], users[3]),
        ("user.session.impersonation.end", admins[3], users[3]),
        ("user.session.impersonation.revoke", admins[0], users[3]),
        ("user.account.lock", users[17], None),
        ("user.account.lock.limit", users[18], users[18]),
    ]
    policy_types = [*POLICY_TYPES, "policy.rule.invalidate", "policy.evaluate_sign_on"]  # +2 misses
    kinds += [(t, admins[i % 3], None) for i, t in enumerate(policy_types)]
    kinds += [
        ("system.idp.lifecycle.deactivate", admins[2], None),
        ("system.idp.lifecycle.delete", admins[1], None),
        ("system.idp.lifecycle.read_client_secret", admins[2], None),
        ("user.mfa.factor.suspend", admins[1], users[10]),
        ("user.mfa.factor.suspend", users[11], None),
        ("user.mfa.factor.unsuspend", admins[1], users[10]),
        ("user.mfa.factor.activate", users[11], None),
        ("system.api_token.revoke", admins[3], None),
        ("system.api_token.revoke", admins[1], None),
        ("system.api_token.update", admins[3], None),
        ("system.operation.rate_limit.violation", users[12], None),
        ("system.org.rate_limit.warning", None, None),
        ("system.org.rate_limit.violation", None, None),
        ("core.concurrency.org.limit.violation", users[12], None),
        ("system.operation.rate_limit.warning", users[12], None),
        ("system.client.rate_limit.violation", users[12], None),
    ]
    for i, (kind, actor, subject) in enumerate(kinds):
        ip = "51.68.99.99" if kind.startswith("security.") else None
        ip = "198.51.100.77" if "limit" in kind else ip
        p.add(gen.event(kind, at + i * 7 * s, actor=actor, subject=subject, ip=ip))
    # an administrator removing a factor: targets the user and the enrollment
    enrollment = users[8].factors[0]
    p.add(
        gen.event(
            "user.mfa.factor.deactivate",
            at + 400 * s,
            actor=admins[1],
            target=[
                {
                    "id": users[8].id,
                    "type": "User",
                    "alternateId": users[8].login,
                    "displayName": users[8].display_name,
                    "detailEntry": None,
                },
                {
                    "id": enrollment.id,
                    "type": "AuthenticatorEnrollment",
                    "alternateId": "unknown",
                    "displayName": enrollment.name,
                    "detailEntry": None,
                },
            ],
        )
    )
    planted["factor_user"] = users[8].login

    # memberships with known people for the filters, and the outcome quirks
    finance = next(g for g in gen.groups if g.name == "Finance")
    p.add(
        gen.event("group.user_membership.add", at, actor=admins[0], subject=users[5], group=finance)
    )
    p.add(
        gen.event(
            "group.user_membership.remove", at + h, actor=admins[0], subject=users[5], group=finance
        )
    )
    no_outcome = p.add(gen.event("group.user_membership.add", at + 2 * h, subject=users[6]))
    no_outcome["outcome"] = None
    p.add(gen.event("group.user_membership.add", at + 3 * h, subject=users[7], result="FAILURE"))
    app = gen.apps[0]
    p.add(
        gen.event("application.user_membership.add", at, actor=admins[1], subject=users[5], app=app)
    )
    p.add(
        gen.event(
            "application.user_membership.remove", at + h, actor=admins[1], subject=users[5], app=app
        )
    )
    p.add(
        gen.event("user.authentication.sso", at + 5 * s, actor=users[5], app=app, ip="73.158.1.1")
    )
    planted.update(
        member=users[5].login,
        member_id=users[5].id,
        group=finance.name,
        group_id=finance.id,
        admin=admins[0].login,
        app=app.label,
        app_id=app.id,
        sso_ip="73.158.1.1",
        no_outcome=no_outcome["uuid"],
        token_admin=admins[1].login,
        zone_admin=admins[1].login,
        idp_admin=admins[2].login,
        revoke_admin=admins[3].login,
        suspended=users[10].login,
        rate_ip="198.51.100.77",
        threat_ip="51.68.99.99",
        reporter=users[9].login,
        locked=users[17].login,
        lock_limited=users[18].login,
        impersonated=users[3].login,
        impersonator=admins[3].login,
        proxied=proxied.login,
    )
    return planted


def plant_globex(p: Planter) -> dict[str, Any]:
    gen = p.gen
    victim = gen.users[12]
    p.events.extend(
        gen.failed_login_burst(12, T0 + 15 * timedelta(hours=1), user=victim, ip="3.236.9.9")
    )
    p.failures(
        list(gen.users[20:27]), T0 + 16 * timedelta(hours=1), timedelta(seconds=30), "3.236.9.10"
    )
    return {"globex_bf": victim.login}


def _commit(store: Store, mapping: CompiledMapping, source: str, events: list[Event]) -> None:
    events = sorted(events, key=lambda e: str(e["published"]))
    for start in range(0, len(events), 500):
        page = events[start : start + 500]
        raw = [orjson.dumps(e).decode() for e in page]
        batch = mapping.apply_batch(page)
        assert not batch.rejected, batch.rejected
        rows = PageRows(
            source,
            ORG[source],
            f"{ORG[source]}/api/v1/logs?after={start}",
            batch,
            raw,
            [str(e["uuid"]) for e in page],
        )
        store.commit_page(rows, NOW)


def build_dataset(directory: Path, lake: LakeConfig | None = None) -> Dataset:
    """The shared DuckDB file (or ``lake``): background noise and planted scenarios in two
    sources."""
    mapping = load_mapping(normalized_mapping_path())
    acme = EventGenerator(seed=11, domain="acme.okta.com")
    globex = EventGenerator(seed=12, domain="globex.okta.com")
    acme_plants = Planter(acme)
    planted = plant_acme(acme_plants)
    globex_plants = Planter(globex)
    planted.update(plant_globex(globex_plants))
    streams = {
        "acme": [
            *acme.stream(1000, T0 - timedelta(days=40), T0),
            *acme.stream(3000, T0, NOW),
            *acme_plants.events,
        ],
        "globex": [*globex.stream(800, T0 - timedelta(days=10), NOW), *globex_plants.events],
    }
    path = directory / "feeds.duckdb"
    stored: list[Stored] = []
    with Store(lake or path, mapping) as store:
        for source, events in streams.items():
            # serialized and parsed back: the evaluation reads what was committed
            events = [orjson.loads(orjson.dumps(e)) for e in events]
            _commit(store, mapping, source, events)
            stored.extend(Stored(source, e) for e in events)
    return Dataset(path, stored, planted, lake)


def connect(data: Dataset) -> duckdb.DuckDBPyConnection:
    """A reader's connection: the file read-only, or the lake attached read-only, locked."""
    if data.lake is None:
        return open_read_only(data.path)
    con = connect_lake(data.lake, read_only=True)
    lock_configuration(con)
    return con


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


# -- what the standard parameters mean, in plain Python ------------------------------------------

Params = dict[str, Any]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: str) -> timedelta:
    """``"10m"`` -> 10 minutes (the forms the tests pass)."""
    return timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])


def in_scope(params: Params) -> Callable[[Stored], bool]:
    """The since/until/source part of ``params`` (defaults: the last 7 days before NOW)."""
    since = datetime.fromisoformat(params["since"]) if "since" in params else NOW - timedelta(7)
    until = datetime.fromisoformat(params["until"]) if "until" in params else NOW
    source = params.get("source")
    return lambda s: since <= s.published < until and source in (None, s.source)


def ordered(rows: list[Any], key: Callable[[Any], Any], params: Params) -> list[Any]:
    """Sort by ``key`` in the requested direction and apply the limit (default 100)."""
    descending = str(params.get("sort", "ascending")).lower().startswith("desc")
    rows = sorted(rows, key=key, reverse=descending)
    limit = int(params.get("limit", 100))
    return rows[:limit] if limit else rows


# -- the data set itself ------------------------------------------------------------------------


_BUILT: dict[str, Dataset] = {}


def shared_dataset(factory: pytest.TempPathFactory, store: str = "file") -> Dataset:
    """Build the data set once per test session (it is only ever opened read-only after):
    in a DuckDB file, or (``store="lake"``) in a lake with a DuckDB-file catalog."""
    if store not in _BUILT:
        folder = factory.mktemp(f"feeds-{store}")
        lake = None
        if store == "lake":
            lake = LakeConfig(
                catalog=f"duckdb:{folder / 'catalog.duckdb'}", data=str(folder / "data")
            )
        _BUILT[store] = build_dataset(folder, lake)
    return _BUILT[store]


def run(con: duckdb.DuckDBPyConnection, name: str, params: Params) -> list[dict[str, Any]]:
    """A feed's rows as dicts."""
    from ingest.feeds.run import run_feed

    result = run_feed(con, name, params, NOW)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

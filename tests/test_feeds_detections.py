"""Aggregating detections (one row per finding): each finds exactly what its description says.

The expected findings come from plain Python over the raw events, following the window
definition written in each feed's description (see ``sliding_findings``), and are compared
whole -- keys, counts, first/last seen and the sorted uuids -- for several parameter sets.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import pytest

from tests.helpers.feeds import (
    DENY_PUSH,
    MFA,
    SESSION_START,
    T0,
    VERIFY,
    Dataset,
    Params,
    Stored,
    distinct,
    duration,
    in_scope,
    is_id_or_login,
    iso,
    ordered,
    run,
    same_login,
    sliding_findings,
    text,
)

Row = dict[str, Any]
H = timedelta(hours=1)


def as_org(s: Stored) -> str | None:
    return text(s.security.get("asOrg")) or text((s.security.get("ipDetails") or {}).get("asOrg"))


def span(group: list[Stored]) -> Row:
    return {
        "first_seen": min(s.published for s in group),
        "last_seen": max(s.published for s in group),
        "events": len(group),
        "uuids": sorted(s.uuid for s in group),
    }


# -- brute force -------------------------------------------------------------------------------


def is_sign_in_failure(s: Stored) -> bool:
    return s.type == SESSION_START and s.result in ("FAILURE", "DENY")


def expected_brute_force(data: Dataset, params: Params) -> list[Row]:
    scope = in_scope(params)
    user = params.get("user")
    failures = [
        s
        for s in data.events
        if scope(s)
        and is_sign_in_failure(s)
        and s.login is not None
        and (user is None or same_login(s.login, user))
    ]
    found = sliding_findings(
        failures,
        lambda s: (s.source, str(s.login).lower()),
        len,
        int(params.get("threshold", 10)),
        duration(params.get("window", "10m")),
    )
    rows = [
        {
            **span(group),
            "source": source,
            "actor_login": login,
            "denied": sum(s.result == "DENY" for s in group),
            "actor_ids": distinct(s.actor_id for s in group),
            "client_ips": distinct(s.ip for s in group),
            "countries": distinct(s.country for s in group),
        }
        for (source, login), group in found
    ]
    return ordered(rows, lambda r: (r["first_seen"], r["source"], r["actor_login"]), params)


def logins(rows: list[Row]) -> list[str]:
    return [r["actor_login"] for r in rows]


BRUTE_FORCE_PARAMS: list[Params] = [
    {},
    {"limit": 0},
    {"limit": 0, "window": "30m"},
    {"limit": 0, "threshold": "12"},
    {"limit": 0, "threshold": "5", "window": "1h"},
    {"limit": 0, "source": "globex"},
    {"limit": 2, "sort": "descending"},
    {"limit": 0, "since": iso(T0 + 10 * H + timedelta(seconds=10))},
    {"limit": 0, "until": iso(T0 + 41 * H), "since": iso(T0 - timedelta(days=45))},
]


@pytest.mark.parametrize("params", BRUTE_FORCE_PARAMS, ids=str)
def test_brute_force(con: duckdb.DuckDBPyConnection, data: Dataset, params: Params) -> None:
    assert run(con, "brute-force", params) == expected_brute_force(data, params)


def test_brute_force_finds_the_planted_bursts(
    con: duckdb.DuckDBPyConnection, data: Dataset
) -> None:
    planted = data.planted
    found = logins(run(con, "brute-force", {"limit": 0}))
    assert found.count(planted["bf_twice"]) == 2
    for login in (planted["bf_hit"], planted["bf_edge_in"], "admin", planted["globex_bf"]):
        assert login in found
    for login in (planted["bf_slow"], planted["bf_edge_out"]):
        assert login not in found
    assert planted["bf_slow"] in logins(run(con, "brute-force", {"limit": 0, "window": "30m"}))
    touching = run(con, "brute-force", {"user": planted["bf_touch"]})
    assert [(r["events"], r["last_seen"] - r["first_seen"]) for r in touching] == [
        (19, timedelta(minutes=20))
    ]
    one = run(con, "brute-force", {"user": planted["bf_hit"].upper()})
    assert len(one) == 1 and one[0]["events"] == 14 and one[0]["client_ips"] == ["167.99.10.10"]
    typed = next(r for r in run(con, "brute-force", {"user": "Admin"}))
    assert typed["events"] == 12 and typed["actor_ids"] == ["unknown"]


# -- password spray ----------------------------------------------------------------------------


def expected_spray(data: Dataset, params: Params) -> list[Row]:
    scope = in_scope(params)
    ip = params.get("ip")
    failures = [
        s
        for s in data.events
        if scope(s)
        and is_sign_in_failure(s)
        and s.ip is not None
        and s.login is not None
        and (ip is None or s.ip == ip)
    ]
    found = sliding_findings(
        failures,
        lambda s: (s.source, str(s.ip)),
        lambda group: len({str(s.login).lower() for s in group}),
        int(params.get("min_users", 5)),
        duration(params.get("window", "30m")),
    )
    rows = [
        {
            **span(group),
            "source": source,
            "client_ip": address,
            "users": len({str(s.login).lower() for s in group}),
            "logins": distinct(str(s.login).lower() for s in group),
            "countries": distinct(s.country for s in group),
            "as_orgs": distinct(as_org(s) for s in group),
        }
        for (source, address), group in found
    ]
    return ordered(rows, lambda r: (r["first_seen"], r["source"], r["client_ip"]), params)


SPRAY_PARAMS: list[Params] = [
    {},
    {"limit": 0, "window": "1h"},
    {"limit": 0, "min_users": "3", "window": "10m"},
    {"limit": 0, "min_users": "9"},
    {"limit": 0, "ip": "185.220.101.50"},
    {"limit": 0, "source": "globex"},
    {"limit": 1, "sort": "DESC"},
    {"limit": 0, "since": iso(T0 + 50 * H + timedelta(minutes=4))},
]


@pytest.mark.parametrize("params", SPRAY_PARAMS, ids=str)
def test_password_spray(con: duckdb.DuckDBPyConnection, data: Dataset, params: Params) -> None:
    assert run(con, "password-spray", params) == expected_spray(data, params)


def test_password_spray_finds_the_planted_spray(
    con: duckdb.DuckDBPyConnection, data: Dataset
) -> None:
    hit, slow = data.planted["spray_hit"], data.planted["spray_slow"]
    found = {r["client_ip"]: r for r in run(con, "password-spray", {"limit": 0})}
    assert hit in found and slow not in found and "185.220.101.51" not in found
    # the generator drops an address now and then ("null"), so count loosely here; the
    # parametrized test above compares the exact rows
    assert found[hit]["users"] >= 7 and found[hit]["events"] >= 8
    assert {"root", "svc-backup"} & set(found[hit]["logins"])
    assert slow in {r["client_ip"] for r in run(con, "password-spray", {"window": "1h"})}


# -- MFA fatigue -------------------------------------------------------------------------------


def is_push_failure(s: Stored) -> bool:
    if s.type == DENY_PUSH:
        return True
    if s.type not in (MFA, VERIFY) or s.result != "FAILURE":
        return False
    factor = s.debug.get("factor")
    if isinstance(factor, str) and "push" in factor.lower():
        return True
    for target in s.e.get("target") or []:
        method = ((target or {}).get("detailEntry") or {}).get("methodTypeUsed")
        if isinstance(method, str) and "push" in method.lower():
            return True
    return False


def expected_fatigue(data: Dataset, params: Params) -> list[Row]:
    scope = in_scope(params)
    user = params.get("user")
    pushes = [
        s
        for s in data.events
        if scope(s)
        and s.login is not None
        and (user is None or same_login(s.login, user))
        and is_push_failure(s)
    ]
    found = sliding_findings(
        pushes,
        lambda s: (s.source, str(s.login).lower()),
        len,
        int(params.get("threshold", 5)),
        duration(params.get("window", "15m")),
    )
    rows = [
        {
            **span(group),
            "source": source,
            "actor_login": login,
            "denied_pushes": sum(s.type == DENY_PUSH for s in group),
            "failed_verifications": sum(s.type != DENY_PUSH for s in group),
            "actor_ids": distinct(s.actor_id for s in group),
            "client_ips": distinct(s.ip for s in group),
        }
        for (source, login), group in found
    ]
    return ordered(rows, lambda r: (r["first_seen"], r["source"], r["actor_login"]), params)


FATIGUE_PARAMS: list[Params] = [
    {},
    {"limit": 0, "threshold": "3", "window": "1h"},
    {"limit": 0, "threshold": "7"},
    {"limit": 0, "window": "2m"},
    {"limit": 0, "source": "acme", "sort": "desc"},
    {"limit": 0, "since": iso(T0 + 55 * H + timedelta(seconds=90))},
]


@pytest.mark.parametrize("params", FATIGUE_PARAMS, ids=str)
def test_mfa_fatigue(con: duckdb.DuckDBPyConnection, data: Dataset, params: Params) -> None:
    assert run(con, "mfa-fatigue", params) == expected_fatigue(data, params)


def test_mfa_fatigue_finds_the_planted_push_storms(
    con: duckdb.DuckDBPyConnection, data: Dataset
) -> None:
    found = {r["actor_login"]: r for r in run(con, "mfa-fatigue", {"limit": 0})}
    for login in data.planted["fatigue"]:
        assert login in found
    assert data.planted["fatigue_not_push"] not in found
    mixed = found[data.planted["fatigue"][1]]
    assert (mixed["denied_pushes"], mixed["failed_verifications"]) == (3, 3)
    user = data.planted["fatigue"][0].upper()
    assert len(run(con, "mfa-fatigue", {"user": user})) == 1
    check_user = {"limit": 0, "user": user}
    assert run(con, "mfa-fatigue", check_user) == expected_fatigue(data, check_user)


# -- new country -------------------------------------------------------------------------------


def expected_new_country(data: Dataset, params: Params) -> list[Row]:
    scope = in_scope(params)
    lookback = duration(params.get("lookback", "30d"))
    user = params.get("user")
    successes: dict[tuple[str, str], list[Stored]] = {}
    for s in data.events:
        if (
            s.type == SESSION_START
            and s.result == "SUCCESS"
            and s.actor_id is not None
            and s.country is not None
        ):
            successes.setdefault((s.source, s.actor_id), []).append(s)
    groups: dict[tuple[Any, ...], list[tuple[Stored, list[Stored]]]] = {}
    for (source, actor_id), sign_ins in successes.items():
        for c in sign_ins:
            if not scope(c) or (
                user is not None and not is_id_or_login(c.actor, user, "alternateId")
            ):
                continue
            history = [h for h in sign_ins if c.published - lookback <= h.published < c.published]
            if history and c.country not in {h.country for h in history}:
                key = (source, actor_id, c.country, c.published)
                groups.setdefault(key, []).append((c, history))
    rows = []
    for (source, actor_id, country, published), found in groups.items():
        history = found[0][1]
        rows.append(
            {
                "first_seen": published,
                "last_seen": published,
                "source": source,
                "actor_id": actor_id,
                "actor_login": min(str(c.login) for c, _ in found),
                "geo_country": country,
                "cities": distinct(text(c.geo.get("city")) for c, _ in found),
                "client_ips": distinct(c.ip for c, _ in found),
                "prior_countries": distinct(h.country for h in history),
                "prior_sign_ins": len(history),
                "events": len(found),
                "uuids": sorted(c.uuid for c, _ in found),
            }
        )
    return ordered(
        rows, lambda r: (r["first_seen"], r["source"], r["actor_id"], r["geo_country"]), params
    )


NEW_COUNTRY_PARAMS: list[Params] = [
    {},
    {"limit": 0},
    {"limit": 0, "lookback": "40d"},
    {"limit": 0, "lookback": "1d"},
    {"limit": 0, "source": "globex", "sort": "descending"},
    {"limit": 0, "since": iso(T0 + 26 * H), "until": iso(T0 + 62 * H)},
    {"limit": 5, "sort": "desc"},
]


@pytest.mark.parametrize("params", NEW_COUNTRY_PARAMS, ids=str)
def test_new_country_sign_in(con: duckdb.DuckDBPyConnection, data: Dataset, params: Params) -> None:
    assert run(con, "new-country-sign-in", params) == expected_new_country(data, params)


def test_new_country_sign_in_finds_the_planted_ones(
    con: duckdb.DuckDBPyConnection, data: Dataset
) -> None:
    def uuids(params: Params) -> set[str]:
        return {u for r in run(con, "new-country-sign-in", params) for u in r["uuids"]}

    planted = data.planted
    found = uuids({"limit": 0})
    assert {planted["new_country"], planted["hire_abroad"], planted["returning"]} <= found
    assert planted["first_sign_in"] not in found
    assert planted["returning"] not in uuids({"limit": 0, "lookback": "40d"})
    hire = run(con, "new-country-sign-in", {"user": "NEW.HIRE@example.com"})
    assert [(r["geo_country"], r["prior_countries"]) for r in hire] == [("Romania", ["Germany"])]
    params = {"limit": 0, "user": "new.hire@example.com"}
    assert run(con, "new-country-sign-in", params) == expected_new_country(data, params)

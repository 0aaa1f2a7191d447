"""Every shipped feed: a well-formed header, parameters that are declared and used, event types
that exist, the columns its kind promises, and a clean run on an empty store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingest.base.errors import ConfigError
from ingest.config import normalized_mapping_path
from ingest.feeds.feedfile import (
    STANDARD,
    WINDOW,
    Feed,
    _nested,
    bind,
    load_feeds,
    load_fragments,
    parse_feed,
)
from ingest.feeds.run import run_feed
from ingest.mapping import load_mapping
from ingest.simulate import event_types as catalog
from ingest.store.db import Store
from ingest.store.query import open_read_only

FEEDS = load_feeds()
NOW = datetime(2026, 11, 5, tzinfo=UTC)

EVENT_FEEDS = {
    "failed-logins",
    "group-adds",
    "group-removes",
    "app-assignments",
    "app-unassignments",
    "sso",
    "logs",
    "admin-privilege-grants",
    "api-token-created",
    "mfa-factor-reset",
    "policy-changes",
    "zone-changes",
    "new-identity-provider",
    "mfa-factor-suspended",
    "api-token-revoked",
    "rate-limit-violations",
    "threat-detected",
    "user-reported-suspicious",
    "impersonation",
    "account-lockouts",
    "proxy-sign-ins",
}
FINDING_FEEDS = {"brute-force", "password-spray", "mfa-fatigue", "new-country-sign-in"}

# Cortex XSOAR's context output of okta-get-failed-logins, -group-assignments,
# -application-assignments, -application-authentication and -logs, and our column for each.
XSOAR_FIELDS = {
    "actor.alternateId": "actor_login",
    "actor.displayName": "actor_name",
    "actor.id": "actor_id",
    "client.userAgent.rawUserAgent": "user_agent",
    "client.userAgent.os": "ua_os",
    "client.userAgent.browser": "ua_browser",
    "client.device": "client_device",
    "client.id": "client_id",
    "client.ipAddress": "client_ip",
    "client.geographicalContext.city": "geo_city",
    "client.geographicalContext.state": "geo_state",
    "client.geographicalContext.country": "geo_country",
    "displayMessage": "display_message",
    "eventType": "event_type",
    "outcome.result": "outcome_result",
    "outcome.reason": "outcome_reason",
    "published": "published",
    "severity": "severity",
    "securityContext.asNumber": "as_number",
    "securityContext.asOrg": "as_org",
    "securityContext.isp": "isp",
    "securityContext.domain": "ip_domain",
    "securityContext.isProxy": "is_proxy",
    "request.ipChain.IP": "ip_chain",
    "target.id": "targets",
    "target.type": "targets",
    "target.alternateId": "targets",
    "target.displayName": "targets",
}
XSOAR_FEEDS = {
    "failed-logins": "okta-get-failed-logins",
    "group-adds": "okta-get-group-assignments",
    "app-assignments": "okta-get-application-assignments",
    "sso": "okta-get-application-authentication",
    "logs": "okta-get-logs",
}

_PARAM_USE = re.compile(r"\$(\w+)")
_EVENT_TYPE = re.compile(r"'([a-z][a-z0-9_]*(?:\.[a-z0-9_]+){2,})'")


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    path: Path = tmp_path_factory.mktemp("empty") / "empty.duckdb"
    Store(path, load_mapping(normalized_mapping_path())).close()
    con = open_read_only(path)
    yield con
    con.close()


def test_the_expected_feeds_are_shipped() -> None:
    assert set(FEEDS) >= EVENT_FEEDS | FINDING_FEEDS


@pytest.mark.parametrize("feed", FEEDS.values(), ids=lambda f: f.name)
def test_feed_header_is_complete(feed: Feed) -> None:
    assert feed.title.strip()
    assert len(feed.description) > 60, "describe what the feed returns"
    assert feed.body.lstrip().upper().startswith(("SELECT", "WITH"))
    assert not re.search(r"\$\d|\?", feed.body), "named parameters only"
    names = [p.name for p in feed.params]
    assert len(names) == len(set(names))
    assert not {p.name for p in STANDARD} & set(names), "standard parameters are automatic"


@pytest.mark.parametrize("feed", FEEDS.values(), ids=lambda f: f.name)
def test_every_parameter_is_declared_and_used(feed: Feed) -> None:
    used = set(_PARAM_USE.findall(feed.body))
    declared = {p.name for p in feed.all_params}
    assert used <= declared, f"undeclared: {used - declared}"
    searched = {"filter", "q"}  # applied by the runner, not the body
    assert {p.name for p in feed.params} - searched <= used, "a declared parameter is never used"
    assert {"since", "until", "source"} <= used, "every feed honours since, until and source"


@pytest.mark.parametrize("feed", FEEDS.values(), ids=lambda f: f.name)
def test_defaults_bind(feed: Feed) -> None:
    bound = bind(feed, {}, NOW)
    for param in feed.params:
        if param.type in ("int", "duration", "float"):
            assert param.default is not None, f"{param.name}: thresholds need a default"
            assert bound.params[param.name] is not None


@pytest.mark.parametrize("feed", FEEDS.values(), ids=lambda f: f.name)
def test_event_types_exist_in_the_catalog(feed: Feed) -> None:
    known = catalog.by_id()
    for event_type in _EVENT_TYPE.findall(feed.body):
        assert event_type in known, f"{feed.name}: {event_type} is not an Okta event type"


@pytest.mark.parametrize("feed", FEEDS.values(), ids=lambda f: f.name)
def test_feed_runs_on_an_empty_store(empty: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    result = run_feed(empty, feed.name, {}, NOW)
    assert list(result.rows) == []
    columns = result.columns
    assert len(columns) == len(set(columns)), "duplicate column names"
    assert {c.strip() for c in feed.order.split(",")} <= set(columns)
    if feed.name in EVENT_FEEDS:
        assert columns[:2] == ["uuid", "published"]
        assert feed.order.replace(" ", "") == "published,uuid"
    if feed.name in FINDING_FEEDS:
        assert {"first_seen", "last_seen", "events", "uuids"} <= set(columns)
        assert feed.order.split(",")[0].strip() in ("first_seen", "last_seen")


@pytest.mark.parametrize("name", sorted(XSOAR_FEEDS), ids=str)
def test_xsoar_feeds_have_the_context_fields(empty: duckdb.DuckDBPyConnection, name: str) -> None:
    columns = set(run_feed(empty, name, {}, NOW).columns)
    missing = {path for path, column in XSOAR_FIELDS.items() if column not in columns}
    assert not missing, f"{name} ({XSOAR_FEEDS[name]}) lacks {sorted(missing)}"
    assert FEEDS[name].description.count("okta-get-") >= 1


def test_group_and_app_feeds_name_user_and_target(empty: duckdb.DuckDBPyConnection) -> None:
    wanted = {
        "group-adds": {"target_user_login", "target_group_id", "target_group_name"},
        "group-removes": {"target_user_login", "target_group_id", "target_group_name"},
        "app-assignments": {"target_app_id", "target_app_name", "target_app_user_login"},
        "app-unassignments": {"target_app_id", "target_app_name", "target_app_user_login"},
        "sso": {"target_app_id", "target_app_name", "target_app_user_login", "actor_login"},
    }
    for name, columns in wanted.items():
        assert columns <= set(run_feed(empty, name, {}, NOW).columns), name


def test_sso_says_it_fires_before_the_app_answers() -> None:
    assert "even when" in FEEDS["sso"].description


def test_window_definitions_are_stated() -> None:
    for name in ("brute-force", "password-spray", "mfa-fatigue"):
        text = FEEDS[name].description.lower()
        assert "sliding window" in text and "[t - window, t]" in text, name
    assert "lookback" in FEEDS["new-country-sign-in"].description


# -- fragments: what the feeds share, written once -------------------------------------------


def test_fragments_are_composed_into_the_feeds_and_are_not_feeds() -> None:
    fragments = load_fragments()
    assert {"in_window", "client_columns", "sliding_window"} <= set(fragments)
    assert not {f"_{name}" for name in fragments} & set(FEEDS)
    assert all("{{" not in feed.body for feed in FEEDS.values())
    users: dict[str, list[str]] = {}
    for name, text in fragments.items():
        if "{{" in text:
            continue  # composed with arguments: checked below
        users[name] = [f for f, feed in FEEDS.items() if text in feed.body]
        assert users[name], f"fragment {name} is used by no feed"
    assert fragments["client_columns"] in fragments["event_columns"], "written out in it"
    assert len(users["event_columns"]) >= 12
    for name, fragment, arg in (
        ("mfa-factor-reset", "mfa_factor_changes", "'user.mfa.factor.reset_all'"),
        ("mfa-factor-suspended", "mfa_factor_changes", "'user.mfa.factor.suspend'"),
        ("api-token-created", "api_token_changes", "= 'system.api_token.create'"),
        ("api-token-revoked", "api_token_changes", "= 'system.api_token.revoke'"),
    ):
        head, tail = fragments[fragment].split("{{", 1)
        assert FEEDS[name].body.startswith(head) and arg in FEEDS[name].body, name
        assert FEEDS[name].body.endswith(tail.split("}}", 1)[1]), name
    for name in ("brute-force", "mfa-fatigue", "password-spray"):
        body = FEEDS[name].body
        assert "RANGE BETWEEN" in body and "spans AS (" in body, name
        assert body.count("RANGE BETWEEN") == 1, f"{name}: one window count, from the fragment"


def test_a_fragment_builds_on_fragments_that_take_no_arguments() -> None:
    fragments = _nested(
        {
            "cols": "a, {{ more }}",
            "more": "b, {{ tail }}",
            "tail": "c",
            "query": "SELECT {{ cols }}, {{ last }} FROM events WHERE kind = {{ kind }}",
        }
    )
    assert fragments["cols"] == "a, b, c"
    assert fragments["query"] == "SELECT a, b, c, {{ last }} FROM events WHERE kind = {{ kind }}"
    text = "-- title: T\n-- description: d\n{{ more }} {{ query kind=1 last=z }}\n"
    assert (
        parse_feed("t", text, fragments).body == "b, c SELECT a, b, c, z FROM events WHERE kind = 1"
    )


def test_a_fragment_is_filled_with_its_arguments() -> None:
    fragments = {"window": "x BETWEEN {{ low }} AND {{high}}", "flag": "y IS TRUE"}
    text = (
        "-- title: T\n-- description: a feed that uses two fragments\n"
        "SELECT ingest_seq AS _seq FROM events\n"
        'WHERE {{ window low=$since high="$until + INTERVAL 1 DAY" }} AND {{flag}}\n'
    )
    feed = parse_feed("t", text, fragments)
    assert feed.body.endswith("WHERE x BETWEEN $since AND $until + INTERVAL 1 DAY AND y IS TRUE")


@pytest.mark.parametrize(
    ("use", "says"),
    [
        ("{{ nowhere }}", "line 3: no fragment 'nowhere' (known: flag, window)"),
        ("{{ window low=1 }}", "line 3: fragment window takes the arguments high, low"),
        ("{{ window low=1 high=2 wide=3 }}", "line 3: fragment window takes the arguments"),
        ("{{ flag x=1 }}", "line 3: fragment flag takes the arguments none"),
        ("{{ window low=1 high=2", "line 3: a malformed {{ fragment }} use"),
        ("{{ window low = 1 high=2 }}", "line 3: a malformed {{ fragment }} use"),
    ],
)
def test_a_wrong_fragment_use_names_the_feed_and_the_line(use: str, says: str) -> None:
    fragments = {"window": "x BETWEEN {{ low }} AND {{high}}", "flag": "y IS TRUE"}
    text = f"-- title: T\n-- description: a feed\nSELECT 1 WHERE {use}\n"
    with pytest.raises(ConfigError) as caught:
        parse_feed("t", text, fragments)
    assert str(caught.value).startswith("feed t ")
    assert says in str(caught.value)


def test_late_columns_need_the_window_which_their_join_repeats() -> None:
    """The late join reads events again; it repeats the window so that a lake, whose events
    view cannot prune by ingest_seq, reads only the window's files."""
    header = "-- title: T\n-- description: d\n-- late: e.raw AS raw\n"
    with pytest.raises(ConfigError, match="late columns need the body's rows in"):
        parse_feed("t", header + "SELECT ingest_seq AS _seq FROM events\n", {})
    feed = parse_feed(
        "t",
        header + "SELECT ingest_seq AS _seq FROM events WHERE {{ in_window }}\n",
        {"in_window": WINDOW},
    )
    assert feed.body.endswith(WINDOW)

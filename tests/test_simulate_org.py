"""The simulated org's /api/v1/logs semantics, exercised over HTTP on 127.0.0.1."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.base.clock import FakeClock, rfc3339_ms
from ingest.simulate import OrgConfig, SimulatedOrg, SimulatorServer
from ingest.simulate.query import (
    Limits,
    LogQuery,
    QueryError,
    parse_query,
    parse_rfc3339,
    with_after,
)

TOKEN = "test-token"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class Sim:
    clock: FakeClock
    org: SimulatedOrg
    server: SimulatorServer
    client: httpx.Client

    def url(self, **params: Any) -> str:
        query = urlencode(params)
        return f"{self.server.url}/api/v1/logs" + (f"?{query}" if query else "")

    def get(self, url: str) -> httpx.Response:
        return self.client.get(url)

    def logs(self, **params: Any) -> httpx.Response:
        return self.get(self.url(**params))

    def event(self, event_type: str, published: datetime, **kw: Any) -> dict[str, Any]:
        return self.org.generator.event(event_type, published, **kw)


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    started: list[Sim] = []

    def make(**config: Any) -> Sim:
        clock = FakeClock(NOW)
        config.setdefault("tokens", frozenset({TOKEN}))
        config.setdefault("limit", 0)
        org = SimulatedOrg(OrgConfig(now=clock.now, **config))
        server = SimulatorServer(org)
        client = httpx.Client(headers={"Authorization": f"SSWS {TOKEN}"}, timeout=5)
        sim = Sim(clock, org, server, client)
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.client.close()
        sim.server.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


def links(response: httpx.Response) -> dict[str, str]:
    return {str(rel): link["url"] for rel, link in response.links.items()}


def poll_to_end(sim: Sim, url: str) -> tuple[list[list[dict[str, Any]]], str]:
    """Follow next links until a page's next equals its self; return pages and last next."""
    pages = []
    for _ in range(100):
        response = sim.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        following = links(response)["next"]
        if following == url:
            return pages, following
        url = following
    raise AssertionError("never caught up")


def test_polling_follows_next_to_the_end_and_returns_everything_once(sim: Sim) -> None:
    events = sim.org.generator.stream(250, NOW - timedelta(hours=2), NOW)
    sim.org.add(events, delay=timedelta(0))
    pages, _ = poll_to_end(sim, sim.url(since=rfc3339_ms(NOW - timedelta(days=1)), limit=100))
    assert [len(p) for p in pages] == [100, 100, 50, 0]
    got = [e["uuid"] for page in pages for e in page]
    assert got == [e["uuid"] for e in events]  # delay 0: persisted order == published order
    assert set(got) == sim.org.visible_uuids() == sim.org.served_uuids()
    assert sim.org.request_urls()[0] == sim.url(
        since=rfc3339_ms(NOW - timedelta(days=1)), limit=100
    )
    assert len(sim.org.request_urls()) == 4


def test_caught_up_page_is_empty_and_next_is_byte_identical_to_self(sim: Sim) -> None:
    sim.org.add([sim.event("user.session.start", NOW - timedelta(minutes=5))])
    first = sim.logs(limit=10)
    cursor = links(first)["next"]
    assert cursor != links(first)["self"] and "after=" in cursor
    empty = sim.get(cursor)
    assert empty.json() == []
    self_line, next_line = empty.headers.get_list("link")
    assert self_line == f'<{cursor}>; rel="self"'
    assert next_line == f'<{cursor}>; rel="next"'


def test_empty_org_still_links_next_in_polling_mode(sim: Sim) -> None:
    url = sim.url(since=rfc3339_ms(NOW - timedelta(hours=1)))
    response = sim.get(url)
    assert response.json() == []
    assert links(response) == {"self": url, "next": url}


def test_polling_orders_by_persistence_time_not_published(sim: Sim) -> None:
    early = sim.event("user.authentication.sso", NOW - timedelta(minutes=30))
    later = sim.event("user.authentication.sso", NOW - timedelta(minutes=20))
    sim.org.add([later], persisted_at=NOW - timedelta(minutes=19))
    sim.org.add_late([early], persisted_at=NOW - timedelta(minutes=1))
    body = sim.logs(since=rfc3339_ms(NOW - timedelta(hours=1))).json()
    assert [e["uuid"] for e in body] == [later["uuid"], early["uuid"]]


def test_late_event_appears_in_a_later_poll_after_the_cursor(sim: Sim) -> None:
    sim.org.add([sim.event("user.session.start", NOW - timedelta(minutes=10))])
    pages, cursor = poll_to_end(sim, sim.url(limit=1000))
    assert sum(map(len, pages)) == 1
    late = sim.event("group.user_membership.add", NOW - timedelta(hours=1))
    sim.org.add_late([late], persisted_at=NOW + timedelta(seconds=30))
    assert sim.get(cursor).json() == []  # persisted in the future: not visible yet
    assert late["uuid"] not in sim.org.visible_uuids()
    sim.clock.advance(31)
    response = sim.get(cursor)
    assert [e["uuid"] for e in response.json()] == [late["uuid"]]
    assert links(response)["next"] != cursor


def test_since_is_inclusive_on_persistence_time(sim: Sim) -> None:
    at = NOW - timedelta(minutes=3)
    event = sim.event("user.session.start", at - timedelta(seconds=1))
    sim.org.add([event], persisted_at=at)
    assert [e["uuid"] for e in sim.logs(since=rfc3339_ms(at)).json()] == [event["uuid"]]
    assert sim.logs(since=rfc3339_ms(at + timedelta(milliseconds=1))).json() == []


def test_default_since_is_seven_days_back(sim: Sim) -> None:
    old = sim.event("user.session.start", NOW - timedelta(days=8))
    recent = sim.event("user.session.start", NOW - timedelta(days=6))
    sim.org.add([old, recent], delay=0)
    assert [e["uuid"] for e in sim.logs().json()] == [recent["uuid"]]
    wide = sim.logs(since=rfc3339_ms(NOW - timedelta(days=10))).json()
    assert [e["uuid"] for e in wide] == [old["uuid"], recent["uuid"]]


def test_events_older_than_90_days_are_never_returned(sim: Sim) -> None:
    ancient = sim.event("user.session.start", NOW - timedelta(days=100))
    late_ancient = sim.event("user.session.start", NOW - timedelta(days=95))
    kept = sim.event("user.session.start", NOW - timedelta(days=80))
    sim.org.add([ancient, kept], delay=0)
    sim.org.add_late([late_ancient], persisted_at=NOW - timedelta(minutes=1))
    since = rfc3339_ms(NOW - timedelta(days=170))
    assert [e["uuid"] for e in sim.logs(since=since).json()] == [kept["uuid"]]
    bounded = sim.logs(since=since, until=rfc3339_ms(NOW)).json()
    assert [e["uuid"] for e in bounded] == [kept["uuid"]]
    assert sim.org.visible_uuids() == {kept["uuid"]}


def test_limit_defaults_to_100_and_zero_gives_an_empty_page(sim: Sim) -> None:
    sim.org.add(sim.org.generator.stream(150, NOW - timedelta(hours=1), NOW), delay=0)
    assert len(sim.logs().json()) == 100
    response = sim.logs(limit=0)
    assert response.json() == []
    assert links(response)["next"] == links(response)["self"]


def test_bounded_query_pages_by_published_and_has_no_next_on_the_last_page(sim: Sim) -> None:
    base = NOW - timedelta(hours=3)
    inside = [sim.event("user.authentication.sso", base + timedelta(minutes=i)) for i in range(25)]
    outside = sim.event("user.authentication.sso", base + timedelta(minutes=60))
    sim.org.add([*inside[1:], outside], delay=0)
    sim.org.add_late([inside[0]], persisted_at=NOW - timedelta(seconds=1))
    url = sim.url(since=rfc3339_ms(base), until=rfc3339_ms(base + timedelta(minutes=60)), limit=10)
    sizes, seen = [], []
    while True:
        response = sim.get(url)
        sizes.append(len(response.json()))
        seen += [e["uuid"] for e in response.json()]
        if "next" not in links(response):
            break
        url = links(response)["next"]
    assert sizes == [10, 10, 5]
    assert seen == [e["uuid"] for e in inside]  # published order, late one first, until excluded


def test_descending_query_is_bounded_and_newest_first(sim: Sim) -> None:
    events = [sim.event("user.session.start", NOW - timedelta(minutes=m)) for m in (30, 20, 10)]
    sim.org.add(events, delay=0)
    first = sim.logs(sortOrder="DESCENDING", limit=2)
    assert [e["uuid"] for e in first.json()] == [events[2]["uuid"], events[1]["uuid"]]
    last = sim.get(links(first)["next"])
    assert [e["uuid"] for e in last.json()] == [events[0]["uuid"]]
    assert "next" not in links(last)


INVALID = [
    ({"since": "2026-10-01"}, "E0000001"),
    ({"since": "yesterday"}, "E0000001"),
    ({"since": "2026-02-30T00:00:00Z"}, "E0000001"),
    ({"since": "2026-10-01T00:00:00"}, "E0000001"),
    ({"until": "2026-10-01 00:00:00Z"}, "E0000001"),
    ({"limit": "1001"}, "E0000001"),
    ({"limit": "-1"}, "E0000001"),
    ({"limit": "ten"}, "E0000001"),
    ({"limit": "2.5"}, "E0000001"),
    ({"q": "x" * 41}, "E0000001"),
    ({"q": " ".join(["k"] * 11)}, "E0000001"),
    ({"sortOrder": "UP"}, "E0000001"),
    ({"after": "not-a-cursor"}, "E0000001"),
    ({"filter": 'eventType eq "x" and'}, "E0000053"),
    ({"filter": 'eventType equals "x"'}, "E0000053"),
    ({"filter": 'published gt "2026-01-01T00:00:00Z"'}, "E0000053"),
]


@pytest.mark.parametrize(("params", "code"), INVALID)
def test_invalid_parameters_are_400s(sim: Sim, params: dict[str, str], code: str) -> None:
    response = sim.logs(**params)
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == code
    assert set(body) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
    assert body["errorId"].startswith("oae")


def test_since_over_180_days_back_is_e0000053(sim: Sim) -> None:
    response = sim.logs(since=rfc3339_ms(NOW - timedelta(days=181)))
    assert response.status_code == 400
    assert response.json()["errorCode"] == "E0000053"
    summary = "The since parameter is over 180 days prior to the current day"
    assert response.json()["errorSummary"] == summary
    assert sim.logs(since=rfc3339_ms(NOW - timedelta(days=179))).status_code == 200


def test_boundary_values_are_accepted(sim: Sim) -> None:
    q = " ".join(["a" * 40] * 10)
    assert sim.logs(limit=1000, q=q, since="2026-10-31T12:00:00+02:00").status_code == 200


def test_filter_and_keywords_select_events(sim: Sim) -> None:
    gen = sim.org.generator
    user = gen.users[7]
    add = sim.event("group.user_membership.add", NOW - timedelta(minutes=9), subject=user)
    fail = sim.event("user.session.start", NOW - timedelta(minutes=8), actor=user, result="DENY")
    ok = sim.event("user.session.start", NOW - timedelta(minutes=7), actor=user)
    sim.org.add([add, fail, ok], delay=0)
    starts = 'eventType eq "user.session.start"'
    assert [e["uuid"] for e in sim.logs(filter=starts).json()] == [fail["uuid"], ok["uuid"]]
    denied = f'{starts} and (outcome.result eq "FAILURE" or outcome.result eq "DENY")'
    assert [e["uuid"] for e in sim.logs(filter=denied).json()] == [fail["uuid"]]
    by_target = f'target.id eq "{user.id}"'
    assert [e["uuid"] for e in sim.logs(filter=by_target).json()] == [add["uuid"]]
    found = sim.logs(q=f"{user.login.upper()} membership").json()
    assert [e["uuid"] for e in found] == [add["uuid"]]


@pytest.mark.parametrize("header", [None, "SSWS wrong", f"Bearer {TOKEN}", "SSWS"])
def test_bad_or_missing_token_is_401(sim: Sim, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    with httpx.Client(headers=headers) as client:
        response = client.get(sim.url())
    assert response.status_code == 401
    assert response.json()["errorCode"] == "E0000011"
    assert response.json()["errorSummary"] == "Invalid token provided"
    assert response.headers["X-Okta-Request-Id"]


def test_rate_limit_window_429_and_reset(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(limit=3, window_seconds=10)
    reset = str(int((NOW + timedelta(seconds=10)).timestamp()))
    remaining = []
    for _ in range(3):
        response = sim.logs()
        assert response.status_code == 200
        assert response.headers["X-Rate-Limit-Limit"] == "3"
        assert response.headers["X-Rate-Limit-Reset"] == reset
        remaining.append(response.headers["X-Rate-Limit-Remaining"])
    assert remaining == ["2", "1", "0"]
    limited = sim.logs()
    assert limited.status_code == 429
    body = limited.json()
    assert {k: body[k] for k in ("errorCode", "errorSummary", "errorLink", "errorCauses")} == {
        "errorCode": "E0000047",
        "errorSummary": "API call exceeded rate limit due to too many requests.",
        "errorLink": "E0000047",
        "errorCauses": [],
    }
    assert body["errorId"].startswith("oae")
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    assert limited.headers["X-Rate-Limit-Reset"] == reset
    sim.clock.advance(10)
    again = sim.logs()
    assert again.status_code == 200
    assert again.headers["X-Rate-Limit-Remaining"] == "2"
    assert again.headers["X-Rate-Limit-Reset"] == str(int(reset) + 10)
    assert sim.org.status_counts() == {200: 4, 429: 1}


def test_concurrency_limit_429_has_zero_limit_and_remaining(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(concurrency_probability=1.0)
    response = sim.logs()
    assert response.status_code == 429
    assert response.json()["errorCode"] == "E0000047"
    assert response.headers["X-Rate-Limit-Limit"] == "0"
    assert response.headers["X-Rate-Limit-Remaining"] == "0"


def test_events_come_back_exactly_as_added_even_when_malformed(sim: Sim) -> None:
    odd: list[dict[str, Any]] = [
        {"uuid": "odd-1", "published": "redacted", "eventType": "user.session.start"},
        {"uuid": "odd-2", "published": "2026-09-31T10:00:00.000Z", "version": 0},
        {"published": "Sun, 01 Nov 2026 11:00:00 GMT", "eventType": "x"},
    ]
    normal = sim.event("user.session.start", NOW - timedelta(minutes=1))
    sim.org.add([*odd, normal], persisted_at=NOW)
    body = sim.logs(since=rfc3339_ms(NOW - timedelta(minutes=5))).json()
    assert body == [*odd, normal]
    assert "persisted_at" not in sim.logs().text


def test_event_published_in_the_future_waits_for_the_clock(sim: Sim) -> None:
    future = sim.event("user.session.start", NOW + timedelta(seconds=60))
    sim.org.add([future], persisted_at=NOW)  # never persisted before its published time
    assert sim.logs().json() == []
    sim.clock.advance(60)
    assert [e["uuid"] for e in sim.logs().json()] == [future["uuid"]]


def test_org_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        OrgConfig(concurrency_probability=2)
    with pytest.raises(ValueError, match="rate limit"):
        OrgConfig(limit=-1)
    with pytest.raises(ValueError, match="unknown fault"):
        SimulatedOrg().inject("meteor")


def test_logs_can_be_called_without_http() -> None:
    clock = FakeClock(NOW)
    org = SimulatedOrg(OrgConfig(now=clock.now))
    org.add([org.generator.event("user.session.start", NOW - timedelta(minutes=1))], delay=0)
    url = "https://example.okta.com/api/v1/logs?limit=5"
    response = org.logs({"limit": "5"}, "SSWS sim-demo-token", url)
    assert response.status == 200 and len(response.json()) == 1
    assert response.header_values("link")[0] == f'<{url}>; rel="self"'
    assert response.header("content-type") == "application/json"


# -- query helpers ---------------------------------------------------------------------------


def test_rfc3339_round_trips_okta_timestamps() -> None:
    rng = random.Random(1)
    for _ in range(500):
        moment = datetime(1970, 1, 2, tzinfo=UTC) + timedelta(milliseconds=rng.randrange(2**42))
        assert parse_rfc3339(rfc3339_ms(moment)) == moment


def test_rfc3339_offsets_are_normalized_to_utc() -> None:
    assert parse_rfc3339("2026-11-01T02:00:00.5+02:00") == datetime(
        2026, 11, 1, 0, 0, 0, 500000, tzinfo=UTC
    )
    assert parse_rfc3339("2026-11-01") is None


def test_with_after_keeps_every_other_parameter_byte_identical() -> None:
    rng = random.Random(2)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789%:+-="
    for _ in range(300):
        pairs = [
            (
                "".join(rng.choices("abcdefgh%2B", k=rng.randint(1, 6))),
                "".join(rng.choices(alphabet, k=rng.randint(0, 10))),
            )
            for _ in range(rng.randint(0, 5))
        ]
        query = "&".join(f"{k}={v}" for k, v in pairs if k != "after")
        url = "http://h/api/v1/logs" + (f"?{query}" if query else "")
        after = f"{rng.randrange(10**13)}_{rng.randrange(10**6)}"
        result = with_after(url, after)
        assert result == url + ("&" if query else "?") + f"after={after}"
        assert with_after(with_after(url, "1_1"), after) == result


def compile_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """The simulator's filter, as ``parse_query`` builds it from the ``filter`` parameter."""
    predicate = parse_query({"filter": text}, NOW, Limits()).predicate
    assert predicate is not None
    return predicate


def test_filter_compiler_fails_only_with_filter_error() -> None:
    rng = random.Random(3)
    pieces = [
        "eventType",
        "eq",
        "ne",
        "pr",
        "and",
        "or",
        "not",
        "(",
        ")",
        '"x"',
        '"a\\"b"',
        "5",
        "true",
        "null",
        "target.id",
        "published",
        "gt",
        "!",
        '"',
        " ",
    ]
    compiled = 0
    for _ in range(3000):
        text = " ".join(rng.choices(pieces, k=rng.randint(0, 7)))
        try:
            predicate = compile_filter(text)
        except QueryError:
            continue
        compiled += 1
        assert predicate({"eventType": "x", "target": [{"id": "1"}]}) in (True, False)
    assert compiled  # some random token soups are valid filters and evaluate cleanly


PARAM_NAMES = st.sampled_from(["since", "until", "after", "limit", "q", "filter", "sortOrder", "x"])


@given(st.dictionaries(PARAM_NAMES, st.text(max_size=50), max_size=7))
def test_any_parameters_give_a_query_or_a_documented_400(params: dict[str, str]) -> None:
    try:
        query = parse_query(params, NOW, Limits())
    except QueryError as err:
        assert err.code in ("E0000001", "E0000053")
        return
    assert isinstance(query, LogQuery) and 0 <= query.limit <= 1000


@given(st.text(max_size=60))
def test_arbitrary_filters_fail_only_with_filter_error(text: str) -> None:
    try:
        predicate = compile_filter(text)
    except QueryError as err:
        assert err.code in ("E0000053", "E0000031")
        return
    assert predicate({"eventType": "x", "target": [{"id": "1"}]}) in (True, False)


def test_filter_operators() -> None:
    event = orjson.loads(
        b'{"eventType":"user.session.start","severity":"WARN","n":5,'
        b'"outcome":{"result":"FAILURE"},"target":[{"type":"User"}]}'
    )
    holds = [
        'eventType sw "user.session"',
        'eventType ew "start"',
        'eventType co "session"',
        'severity ne "INFO"',
        "n gt 4",
        "n le 5",
        "outcome.result pr",
        "not (n lt 5)",
        'target.type eq "User"',
        'eventType eq "x" or severity eq "WARN"',
    ]
    for text in holds:
        assert compile_filter(text)(event), text
    # string comparisons are case-sensitive, as on Okta ("the attribute and operator values
    # must be identical"); only operators and keywords ignore case
    for text in ['eventType ew "START"', 'severity eq "warn"', 'eventType co "Session"']:
        assert not compile_filter(text)(event), text
    assert compile_filter('eventType SW "user" AND severity Eq "WARN"')(event)
    assert not compile_filter("missing pr")(event)
    assert not compile_filter('n eq "5"')(event)


def test_the_simulated_org_filters_as_okta_does_case_and_refusals(sim: Sim) -> None:
    user = sim.org.generator.users[3]
    event = sim.event("user.session.start", NOW - timedelta(minutes=5), actor=user)
    sim.org.add([event], delay=0)
    exact = sim.logs(filter='eventType eq "user.session.start"').json()
    assert event["uuid"] in [e["uuid"] for e in exact]
    assert sim.logs(filter='eventType eq "USER.SESSION.START"').json() == []
    refused = sim.logs(filter='debugContext.debugData.url co "/api"')
    assert refused.status_code == 400 and refused.json()["errorCode"] == "E0000031"

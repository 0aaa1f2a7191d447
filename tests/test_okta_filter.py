"""Okta ``filter`` and ``q`` over stored events: the parser, its errors, and SQL == reference."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from ingest.base.errors import FilterSyntaxError, OktaduckError
from ingest.filters.okta_filter import (
    filter_to_sql,
    matches_filter,
    matches_q,
    parse_filter,
    parse_q,
    q_to_sql,
    render_filter,
)
from ingest.filters.scim import And, Compare, Not, Or, Present
from tests.helpers.okta_filter import HOSTILE, build_db, load_events, sql_uuids


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return load_events()


@pytest.fixture(scope="module")
def db(
    tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]]
) -> Iterator[duckdb.DuckDBPyConnection]:
    con = build_db(tmp_path_factory.mktemp("okta_filter") / "events.duckdb", events)
    yield con
    con.close()


@pytest.fixture(scope="module")
def edge_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The samples and edge events alone: where hostile literals can match."""
    return events[2000:]


@pytest.fixture(scope="module")
def edge_db(
    tmp_path_factory: pytest.TempPathFactory, edge_events: list[dict[str, Any]]
) -> Iterator[duckdb.DuckDBPyConnection]:
    con = build_db(tmp_path_factory.mktemp("okta_filter") / "edge.duckdb", edge_events)
    yield con
    con.close()


def agree(
    con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]], text: str, *, q: bool = False
) -> set[str]:
    """The uuids both ways; fails unless SQL and the reference evaluation agree."""
    if q:
        condition = q_to_sql(text)
        expected = {e["uuid"] for e in events if matches_q(e, text)}
    else:
        node = parse_filter(text)
        condition = filter_to_sql(node)
        expected = {e["uuid"] for e in events if matches_filter(e, node)}
    assert sql_uuids(con, condition) == expected, text
    return expected


# -- the parser ------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_every_comparison_operator_parses_in_any_case(op: str) -> None:
    """Operators are case-insensitive; the attribute path is split on dots."""
    assert parse_filter(f'actor.alternateId {op.upper()} "x"') == Compare(
        ("actor", "alternateId"), op, "x"
    )


def test_pr_takes_no_value() -> None:
    """``pr`` stands alone; a value after it is an error."""
    assert parse_filter("outcome.reason pr") == Present(("outcome", "reason"))
    with pytest.raises(FilterSyntaxError, match="position 18"):
        parse_filter('outcome.reason pr "x"')


def test_and_binds_tighter_than_or() -> None:
    """``a or b and c`` is ``a or (b and c)``; chains associate to the left."""
    a, b, c = (Present((name,)) for name in "abc")
    assert parse_filter("a pr or b pr and c pr") == Or(a, And(b, c))
    assert parse_filter("a pr and b pr or c pr") == Or(And(a, b), c)
    assert parse_filter("a pr and b pr and c pr") == And(And(a, b), c)
    assert parse_filter("(a pr or b pr) and c pr") == And(Or(a, b), c)


def test_not_needs_parentheses_and_keywords_ignore_case() -> None:
    """RFC 7644: ``not`` applies to a parenthesized filter; AND/Or/NOT are keywords in any case."""
    a, b = Present(("a",)), Present(("b",))
    assert parse_filter("NOT (a pr) AnD not ((b pr))") == And(Not(a), Not(b))
    with pytest.raises(FilterSyntaxError, match=r'position 4: expected "\(" after "not"'):
        parse_filter("not a pr")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"plain"', "plain"),
        (r'"q\"b\\s\/n\nt\tu\u00e9"', 'q"b\\s/n\nt\tué'),
        (r'"\ud83d\ude00 astral"', "😀 astral"),
        ('"İSTANBUL 😀"', "İSTANBUL 😀"),
        ('""', ""),
        ("0", 0),
        ("-12", -12),
        ("3.25", 3.25),
        ("-1.5E3", -1500.0),
        ("true", True),
        ("FALSE", False),
        ("null", None),
    ],
)
def test_literals_are_json(literal: str, value: object) -> None:
    """Strings with JSON escapes, numbers, booleans and null; literal words in any case."""
    node = parse_filter(f"a eq {literal}")
    assert isinstance(node, Compare)
    assert node.value == value
    assert type(node.value) is type(value)
    assert parse_filter(render_filter(node)) == node


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "the filter is empty"),
        ("actor.alternateId", 17, 'expected an operator after "actor.alternateId"'),
        ('eventType eq "x" and actor.alternateId', 38, 'operator after "actor.alternateId"'),
        ('display_message eqq "Create okta user"', 16, 'unrecognized attribute operator "eqq"'),
        ('actor.id eq "unterminated', 12, "unterminated string"),
        (r'actor.id eq "bad \q escape"', 17, r'invalid escape "\q"'),
        ('actor.id eq "tab\there"', 16, "control character U+0009"),
        (r'actor.id eq "\ud800"', 13, "high surrogate"),
        ("actor.id eq", 11, 'expected a value after "eq"'),
        ("actor.id eq admin", 12, 'expected a value after "eq"'),
        ('actor.id eq "x" and', 19, 'after "and", got the end of the filter'),
        ('actor.id eq "x" or', 18, 'after "or", got the end of the filter'),
        ('(actor.id eq "x"', 16, 'expected ")" to close the "(" at position 0'),
        ('actor.id eq "x")', 15, 'unbalanced ")"'),
        ("()", 1, 'after "(", got ")"'),
        ('published gt "2024-01-01T00:00:00Z"', 0, "published cannot be used"),
        ('eventType eq "x" or published.x pr', 20, "published cannot be used"),
        ('actor.id eq "x" actor.id eq "y"', 16, 'expected "and" or "or"'),
        ("actor.id eq 5x", 12, 'invalid number "5x"'),
        ("actor.id eq 007", 12, 'invalid number "007"'),
        ("actor.id eq 1e999", 12, "out of range"),
        ("actor.id co 5", 12, '"co" needs a string value'),
        ("actor.id gt null", 12, '"gt" needs a string or a number'),
        ('emails[type eq "work"]', 6, '"[ ]" are not supported'),
        ("actor..id pr", 0, 'invalid attribute path "actor..id"'),
        ('actor.id eq "x" && b pr', 16, 'unexpected character "&"'),
        ('and eq "x"', 0, 'got "and"'),
        ("(" * 33 + "a pr" + ")" * 33, 32, "deeper than 32 levels"),
        (" and ".join(["a pr"] * 101), 900, "more than 100 comparisons"),
        ('actor.id eq "x" é', 16, 'unexpected character "é"'),
    ],
)
def test_errors_point_at_the_problem(text: str, position: int, fragment: str) -> None:
    """Each malformed filter fails with Okta's E0000053 and the position of the problem."""
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    err = caught.value
    assert err.position == position
    assert err.code == "E0000053"
    assert str(err).startswith(f"Invalid filter at position {position}: ")
    assert fragment in str(err)
    assert isinstance(err, OktaduckError)
    assert err.exit_code == 2


@pytest.mark.parametrize("field", ["url", "requestUri"])
def test_contains_on_request_urls_is_refused_like_okta(field: str) -> None:
    """Okta answers E0000031 for ``co`` on these two fields; ``sw``/``ew`` stay allowed."""
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(f'debugContext.debugData.{field} co "/oauth/"')
    assert caught.value.code == "E0000031"
    assert caught.value.position == len(f"debugContext.debugData.{field} ")
    assert f"Operator: co, Field: debugContext.debugData.{field}" in str(caught.value)
    parse_filter(f'debugContext.debugData.{field} ew "/login"')


def test_render_round_trips_nesting() -> None:
    """Rendering adds exactly the parentheses the parse needs to give the same tree back."""
    a, b, c, d = (Present((name,)) for name in "abcd")
    for node in (
        And(a, Or(b, c)),
        And(a, And(b, c)),
        Or(a, Or(b, c)),
        Or(And(a, b), And(c, d)),
        Not(Or(a, Not(And(b, c)))),
        And(Or(a, b), Compare(("x", "y"), "ge", -0.5)),
    ):
        assert parse_filter(render_filter(node)) == node


# -- Okta's examples, SQL against the reference ----------------------------------------------

DOC_EXAMPLES = [
    # (filter, how many of the test events it selects: "none", "some" or "all")
    ('eventType eq "user.session.start"', "some"),
    ('eventType eq "user.session.start" and outcome.result eq "FAILURE"', "some"),
    ('target.id eq "00uz9fj5aT69fHVro1d6"', "none"),
    ('target.id eq "0oaz9fj21WKqTeaqs1d6"', "some"),
    ('actor.id ne "00uxc78lMKUMVIHLTAXY"', "all"),
    ('target.id eq "123" and target.type eq "UserGroup"', "some"),
    ('eventType eq "app.auth.sso" and target.id eq "00uxc78lMKUMVIHLTAXY"', "none"),
    ('client.ipAddress eq "127.0.0.1"', "some"),
    ('actor.alternateId sw "admin"', "some"),
    ('client.geographicalContext.country eq "United States"', "some"),
    ('debugContext.debugData.requestUri ew "/authn"', "some"),
    ('debugContext.debugData.requestUri ew "/login"', "none"),
    ("securityContext.isProxy eq true", "some"),
    ("securityContext.isProxy eq false", "some"),
    ("outcome.reason pr", "some"),
    ('eventType sw "group."', "some"),
    ('eventType co "session"', "some"),
    ('eventType ew "violation"', "some"),
    ('transaction.detail.requestApiTokenId eq "00T94e3cn9kSEO3c51s5"', "none"),
    ('(client.userAgent.os lt "iOS" or client.userAgent.os gt "iOS")', "some"),
    ('securityContext.risk.reasons eq "Anomalous Device"', "some"),
    ("securityContext.asNumber ge 394089", "some"),
    ("client.geographicalContext.geolocation.lon lt -100", "some"),
    ('not (outcome.result eq "SUCCESS") and outcome pr', "some"),
    ('request.ipChain.geographicalContext.city eq "Toronto"', "some"),
]


def how_many(found: set[str], events: list[dict[str, Any]]) -> str:
    return "none" if not found else "all" if len(found) == len(events) else "some"


@pytest.mark.parametrize(("text", "selects"), DOC_EXAMPLES)
def test_documented_filters_agree_with_the_reference(
    db: duckdb.DuckDBPyConnection, events: list[dict[str, Any]], text: str, selects: str
) -> None:
    """Okta's documented filter shapes select the same events in SQL and in Python."""
    assert how_many(agree(db, events, text), events) == selects


def test_any_target_may_satisfy_each_comparison(
    db: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]
) -> None:
    """Okta's "target user and application": two comparisons, each met by a different target."""
    both = 'target.id eq "lae42mkdc9i9cbw3U1d6" and target.id eq "0oaz9fj21WKqTeaqs1d6"'
    assert agree(db, events, both) == {"f1d0b993-cc19-11ed-a688-db22c99ef6c4"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('actor.alternateId eq "test@demisto.com"', set()),
        ('actor.alternateId eq "Test@demisto.com"', "some"),
        ('target.id eq "nested"', set()),
        ('target.id eq "flat"', {"edge-shapes"}),
        ('debugContext.debugData.list eq "a"', {"edge-shapes"}),
        ('debugContext.debugData.list eq "b"', set()),
        ("debugContext.debugData.list.c eq 1", {"edge-shapes"}),
        ("debugContext.debugData.dot.key pr", set()),
        ('debugContext.debugData.dash-key eq "dashed"', {"edge-shapes"}),
        ('debugContext.debugData.threatSuspected eq "false"', "some"),
        ("debugContext.debugData.threatSuspected eq false", set()),
        ("debugContext.debugData.asNumber eq 394089", set()),
        ("securityContext.asNumber eq 18446744073709551615", {"edge-shapes"}),
        ("debugContext.debugData.big gt 1e21", {"edge-shapes"}),
        ("debugContext.debugData.tiny eq 0", {"edge-shapes"}),
        ("device.b pr", set()),
        ("device.a pr", {"edge-empty"}),
        ("actor.detailEntry pr", set()),
        ("actor.id eq null", {"edge-empty"}),
        ('client.zone eq "null" and client.zone pr', "some"),
        ('eventType eq "5"', set()),
        ("eventType eq 5", {"edge-shapes"}),
        ('target.id ne "flat" and actor.id eq "00ushapes"', set()),
        ('request.ipChain.source eq null and request.ipChain.ip eq "10.0.0.2"', {"edge-empty"}),
    ],
)
def test_semantics_on_edge_cases(
    db: duckdb.DuckDBPyConnection,
    events: list[dict[str, Any]],
    text: str,
    expected: set[str] | str,
) -> None:
    """Case-sensitive strings, strict types, one-level arrays, present/null, ne as negation."""
    found = agree(db, events, text)
    if expected == "some":
        assert found
    else:
        assert found == expected


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("op", ["eq", "co", "sw", "ew", "gt"])
def test_hostile_literals_stay_parameters(
    edge_db: duckdb.DuckDBPyConnection, edge_events: list[dict[str, Any]], hostile: str, op: str
) -> None:
    """Quotes, backslashes, SQL, NUL, unicode, ``%`` and ``_`` are data, never SQL or LIKE."""
    text = f"debugContext.debugData.note {op} {json.dumps(hostile)} or actor.alternateId {op} " + (
        json.dumps(hostile)
    )
    condition = filter_to_sql(text)
    assert condition.sql == filter_to_sql(text.replace(json.dumps(hostile), '"x"')).sql
    assert hostile in condition.params.values()
    found = agree(edge_db, edge_events, text)
    if op == "eq" and hostile in (HOSTILE[2], HOSTILE[6]):
        assert found == {"edge-hostile"}
    assert edge_db.execute("SELECT count(*) FROM events").fetchall() == [(len(edge_events),)]


def test_percent_and_underscore_match_only_themselves(
    db: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]
) -> None:
    """``co "%"`` finds the one value with a percent sign; ``eq "_"`` only an underscore."""
    assert agree(db, events, 'actor.alternateId co "%_"') == {"edge-hostile"}
    assert agree(db, events, 'target.id eq "_"') == {"edge-hostile"}
    assert agree(db, events, r'target.alternateId sw "a\\%"') == {"edge-hostile"}


def test_parameters_are_named_with_the_prefix(
    db: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]
) -> None:
    """Two conditions with different prefixes combine in one query without clashing."""
    f = filter_to_sql('eventType eq "user.session.start" and actor.alternateId co "@"', "flt")
    q = q_to_sql("chrome", "kw")
    assert f.params and all(name.startswith("flt") for name in f.params)
    assert all(f"${name}" in f.sql for name in f.params)
    rows = db.execute(f"SELECT uuid FROM events WHERE {f.sql} AND {q.sql}", f.params | q.params)
    expected = {
        e["uuid"]
        for e in events
        if matches_filter(e, 'eventType eq "user.session.start" and actor.alternateId co "@"')
        and matches_q(e, "chrome")
    }
    assert {r[0] for r in rows.fetchall()} == expected
    assert expected
    with pytest.raises(ValueError, match="prefix"):
        filter_to_sql("a pr", "x; DROP")


def test_matches_filter_takes_a_parsed_tree() -> None:
    """The reference evaluation accepts the text or the tree."""
    node = parse_filter('outcome.result eq "FAILURE"')
    event = {"outcome": {"result": "FAILURE"}}
    assert matches_filter(event, node)
    assert not matches_filter({"outcome": None}, node)


# -- q ---------------------------------------------------------------------------------------

Q_EXAMPLES = [
    # (q, how many of the test events it selects)
    ("San Francisco", "some"),
    ("san FRANCISCO", "some"),
    ("Toronto", "some"),
    ("okta.trainer@okta.com", "some"),
    ("XOxBw", "some"),
    ("2JIRnCFd0gG0GjHAAABjY", "some"),
    ("XOxBw-2JIRnCFd0gG0GjHAAABjY", "some"),
    ("xoxbw-2jirncfd0gg0gjhaaabjy", "some"),
    ("XOxBw-2JIRnCFd0gG0GjHAAAB", "none"),
    ("User login to Okta", "some"),
    ("logout", "none"),
    ("Toront", "none"),
    ("istanbul οδοσ CAFÉ 😀", "some"),
    ("İSTANBUL", "some"),
    ("οδος", "none"),
    ("'); DROP", "some"),
    ('"the"', "some"),
    ("100%_real@example.com", "some"),
    ("%", "some"),
    ("%_", "none"),
    ("$f0 ?", "some"),
    ("394089", "some"),
    ("false", "some"),
]


@pytest.mark.parametrize(("text", "selects"), Q_EXAMPLES)
def test_q_keywords_agree_with_the_reference(
    db: duckdb.DuckDBPyConnection, events: list[dict[str, Any]], text: str, selects: str
) -> None:
    """Whole-word, case-insensitive keywords, hyphen parts too, all must match."""
    assert how_many(agree(db, events, text, q=True), events) == selects


def test_q_only_searches_string_values(
    db: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]
) -> None:
    """Numbers and keys are not keywords: ``394089`` matches the string, not ``asNumber``."""
    assert agree(db, events, "394089", q=True) == {"edge-shapes"}
    assert agree(db, events, "alternateId", q=True) == set()


def test_empty_q_matches_everything(
    db: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]
) -> None:
    """Okta sends ``q=`` in its own links; an empty ``q`` filters nothing."""
    assert q_to_sql(" \t ").sql == "true"
    assert agree(db, events, "", q=True) == {e["uuid"] for e in events}


def test_q_limits_are_okta_errors() -> None:
    """At most 10 keywords of at most 40 characters, E0000001 with Okta's wording."""
    assert len(parse_q(" ".join(["k"] * 9) + " " + "x" * 40)) == 10
    with pytest.raises(FilterSyntaxError) as caught:
        parse_q("short " + "y" * 41)
    assert caught.value.code == "E0000001"
    assert caught.value.position == 6
    assert "Freeform search cannot contain items longer than 40 characters" in str(caught.value)
    assert str(caught.value).startswith("Invalid q at position 6:")
    with pytest.raises(FilterSyntaxError, match="more than 10 items") as caught:
        q_to_sql(" ".join(["k"] * 11))
    assert caught.value.position == 20
    with pytest.raises(FilterSyntaxError):
        matches_q({}, "z" * 41)

"""Properties: random filters and keywords built from the events themselves round-trip through
text, and the SQL selects exactly the events the reference evaluation selects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.base.errors import FilterSyntaxError
from ingest.filters.okta_filter import (
    filter_to_sql,
    matches_filter,
    matches_q,
    parse_filter,
    parse_q,
    q_to_sql,
    render_filter,
)
from ingest.filters.scim import COMPARE_OPS, And, Compare, Node, Not, Or, Present, Value
from tests.helpers.okta_filter import build_db, load_events, sql_uuids

pytestmark = pytest.mark.slow  # Hypothesis: many examples

EVENTS = load_events()
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*\Z")
WHITESPACE = " \t\n\r\f\v"
NO_CONTAINS = {
    ("debugContext", "debugData", "url"),
    ("debugContext", "debugData", "requestUri"),
}


def _catalog(
    events: list[dict[str, Any]],
) -> tuple[dict[tuple[str, ...], list[Value]], dict[tuple[str, ...], int]]:
    """Every addressable path (through objects and arrays of objects, at most five keys deep)
    with the scalar values found there, and how often each path occurs."""
    found: dict[tuple[str, ...], set[tuple[str, Value]]] = {}
    counts: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict) or len(path) >= 5:
            return
        for key, value in node.items():
            if not NAME.match(key):
                continue
            here = (*path, key)
            bucket = found.setdefault(here, set())
            counts[here] = counts.get(here, 0) + 1
            for item in value if isinstance(value, list) else [value]:
                if item is None or isinstance(item, str | int | float | bool):
                    bucket.add((type(item).__name__, item))
                for element in item if isinstance(item, list) else [item]:
                    walk(element, here)

    for event in events:
        walk(event, ())
    usable = {
        path: sorted(values, key=repr)[:40]
        for path, values in found.items()
        if path[0] != "published" and not (len(path) == 1 and path[0].lower() in {"and", "or"})
    }
    catalog = {path: [value for _, value in values] for path, values in sorted(usable.items())}
    return catalog, counts


CATALOG, COUNTS = _catalog(EVENTS)
# Common paths come up more often, so that comparisons split the events in interesting ways.
PATHS = [
    *(path for path in CATALOG for _ in range(1 + COUNTS[path] // 200)),
    ("nope",),
    ("actor", "nope"),
    ("target", "id", "deeper"),
]


def _tokens(catalog: dict[tuple[str, ...], list[Value]]) -> list[str]:
    """Words and hyphen parts of the string values: keywords that match something."""
    words: set[str] = set()
    for path_values in catalog.values():
        for value in path_values:
            if isinstance(value, str):
                for word in re.split(f"[{WHITESPACE}]", value):
                    words.add(word)
                    words.update(word.split("-"))
    return sorted(w for w in words if 0 < len(w) <= 40)


TOKENS = _tokens(CATALOG)


def _variants(value: str) -> st.SearchStrategy[str]:
    """Strings near a seen value: itself, a prefix, a suffix, a middle, another case."""
    if len(value) < 2:
        return st.sampled_from([value, value.swapcase(), value + "~"])
    cut = st.integers(1, len(value) - 1)
    return st.one_of(
        st.just(value),
        cut.map(lambda i: value[:i]),
        cut.map(lambda i: value[i:]),
        cut.map(lambda i: value[i // 2 : i + 1]),
        st.sampled_from([value.swapcase(), value + "~"]),
    )


def _near(value: int | float) -> st.SearchStrategy[Value]:
    return st.sampled_from([value, value + 1, value - 1, value / 2, -value])


@st.composite
def comparisons(draw: st.DrawFn) -> Node:
    """A comparison on a path the events have (or not), mostly with a value seen there."""
    path = draw(st.sampled_from(PATHS))
    if draw(st.integers(0, 9)) == 0:
        return Present(path)
    seen = CATALOG.get(path, [])
    strings = [v for v in seen if isinstance(v, str)]
    numbers = [v for v in seen if isinstance(v, int | float) and not isinstance(v, bool)]
    kind = draw(st.integers(0, 9))
    value: Value
    if kind <= 3 and seen:
        value = draw(st.sampled_from(seen))
    elif kind <= 6 and strings:
        value = draw(st.sampled_from(strings).flatmap(_variants))
    elif kind == 7 and numbers:
        value = draw(st.sampled_from(numbers).flatmap(_near))
    else:
        value = draw(
            st.one_of(
                st.text(max_size=6),
                st.integers(-(10**6), 10**6),
                st.floats(allow_nan=False, allow_infinity=False),
                st.booleans(),
                st.none(),
            )
        )
    if isinstance(value, str):
        ops = [op for op in COMPARE_OPS if not (op == "co" and path in NO_CONTAINS)]
    elif value is None or isinstance(value, bool):
        ops = ["eq", "ne"]
    else:
        ops = ["eq", "ne", "gt", "ge", "lt", "le"]
    return Compare(path, draw(st.sampled_from(ops)), value)


filters = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.builds(And, children, children),
        st.builds(Or, children, children),
        st.builds(Not, children),
    ),
    max_leaves=5,
)

keywords = st.one_of(
    st.sampled_from(TOKENS),
    st.sampled_from(TOKENS).map(str.swapcase),
    st.sampled_from(TOKENS).map(lambda t: t[: max(1, len(t) // 2)]),
    st.text(st.characters(blacklist_characters=WHITESPACE), min_size=1, max_size=12),
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    path: Path = tmp_path_factory.mktemp("okta_filter_properties") / "events.duckdb"
    con = build_db(path, EVENTS)
    yield con
    con.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=filters)
def test_random_filters_round_trip_and_agree(db: duckdb.DuckDBPyConnection, node: Node) -> None:
    """Rendered and parsed back, a filter is the same tree; SQL and Python pick the same
    events."""
    text = render_filter(node)
    assert parse_filter(text) == node
    expected = {e["uuid"] for e in EVENTS if matches_filter(e, node)}
    assert sql_uuids(db, filter_to_sql(text)) == expected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(keywords, min_size=1, max_size=3),
    separator=st.sampled_from([" ", "  ", "\t", " \n "]),
)
def test_random_keywords_agree(
    db: duckdb.DuckDBPyConnection, words: list[str], separator: str
) -> None:
    """Keywords taken from the events (whole, halved, case-swapped) or invented select the
    same events in SQL and in Python."""
    text = separator.join(words)
    assert parse_q(text) == words
    expected = {e["uuid"] for e in EVENTS if matches_q(e, text)}
    assert sql_uuids(db, q_to_sql(text)) == expected


FRAGMENTS = [
    "a",
    "b.c",
    "x-y",
    " ",
    '"',
    '"s"',
    "\\",
    "(",
    ")",
    "[",
    "eq",
    "co",
    "gt",
    "pr",
    "and",
    "or",
    "not",
    "NOT",
    "1",
    "-",
    "2.5e3",
    "true",
    "null",
    "published",
    "é",
]


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join))
def test_any_text_parses_or_fails_with_a_position(text: str) -> None:
    """Arbitrary input gives a tree that round-trips or a FilterSyntaxError inside the text."""
    try:
        node = parse_filter(text)
    except FilterSyntaxError as err:
        assert 0 <= err.position <= len(text)
        assert str(err).startswith(f"Invalid filter at position {err.position}: ")
        return
    assert parse_filter(render_filter(node)) == node
    assert filter_to_sql(node).sql


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_any_q_gives_keywords_or_the_okta_error(text: str) -> None:
    """Any ``q`` splits into at most 10 keywords of at most 40 characters, or is refused."""
    try:
        words = parse_q(text)
    except FilterSyntaxError as err:
        assert err.code == "E0000001"
        assert 0 <= err.position < len(text)
        return
    assert len(words) <= 10
    assert all(0 < len(w) <= 40 and not set(w) & set(WHITESPACE) for w in words)

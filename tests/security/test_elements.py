"""The byte-level scanner that splits a page whose body does not decode as a whole."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.okta.body import BadBody
from ingest.okta.elements import parse_page, split_array

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
# no list of objects: an event cut inside one is ambiguous (see ingest/okta/elements.py)
event_values = st.recursive(
    scalars,
    lambda inner: st.lists(scalars, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(json_values, max_size=6), st.sampled_from([b"", b" ", b"\n\t "]))
def test_a_valid_array_splits_into_exactly_its_elements(elements: list[Any], gap: bytes) -> None:
    texts = [orjson.dumps(e) for e in elements]
    body = gap + b"[" + gap + (gap + b"," + gap).join(texts) + gap + b"]" + gap
    assert split_array(body) == [(t, False) for t in texts]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(), event_values, max_size=3), min_size=2, max_size=6),
       st.data())  # fmt: skip
def test_one_element_cut_anywhere_costs_only_itself(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    events = [{"n": i, **e} for i, e in enumerate(events)]
    texts = [orjson.dumps(e) for e in events]
    # not the last one: cut inside a list of objects, the last element's own tail can look
    # like the array's end (``[..., {"a": [{}, {}`` + ``]``), which no scanner can tell
    victim = data.draw(st.integers(0, len(texts) - 2))
    cut = data.draw(st.integers(1, len(texts[victim]) - 1))
    broken = texts[victim][:cut]
    body = b"[" + b",".join([*texts[:victim], broken, *texts[victim + 1 :]]) + b"]"
    page = parse_page(body)
    assert page.events == events[:victim] + events[victim + 1 :]
    assert [b.raw for b in page.bad] == [broken.rstrip()]
    assert page.count == len(events)


def test_strings_with_brackets_quotes_and_escapes_do_not_confuse_it() -> None:
    tricky = [{"s": '],{"x":[', "t": "\\", "u": '"}'}, {"s": '\\\\",{'}]
    body = b"[" + b",".join(orjson.dumps(e) for e in tricky) + b', {"cut": "a\\"]'
    body += b', {"ok": 1}]'
    page = parse_page(body)
    assert page.events == [*tricky, {"ok": 1}]
    assert [b.raw for b in page.bad] == [b'{"cut": "a\\"]']


def test_depth_costs_no_recursion() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    assert split_array(b"[" + deep + b",{}]") == [(deep, False), (b"{}", False)]


@pytest.mark.parametrize(
    "body",
    [b"", b"  ", b"<html>", b'{"a": [1]}', b'[{"a": 1}, {"b"', b'[{"a": 1}, {"b": "\xff'],
)
def test_a_body_that_is_not_an_array_or_never_closes_is_not_a_page(body: bytes) -> None:
    with pytest.raises(BadBody, match="HTTP 200 with a"):
        parse_page(body)


def test_deep_nesting_broken_at_the_bottom_is_scanned_in_bounded_work() -> None:
    """Each `,{` of a deep, broken element is a place the good elements might start again;
    checking them all rescans the nest each time. The scan's budget makes the rest of the
    page one broken element instead (this body took minutes before)."""
    n = 20_000
    body = b'[{"bad"},' + b'{"a":[1,' * n + b'{"a":}' + b"]}" * n + b"]"
    elements = split_array(body)
    assert [broken for _, broken in elements] == [True]
    assert elements[0][0] == body[1:-1]

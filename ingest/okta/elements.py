"""A page body's events one by one, when the body as a whole does not decode.

A page is a JSON array. When orjson refuses the whole body (one event with bytes that are
not UTF-8, one nested deeper than orjson's limit, one cut short), the other events are
still good: ``parse_page`` then finds where each top-level element begins and ends with a
byte-level scanner and decodes each on its own, so a bad event costs itself, not its page.

The scanner follows JSON's grammar on bytes: strings (with their escapes) are skipped
whole whatever bytes they hold, numbers and literals are runs of other bytes, and nesting
is an explicit stack (iterative, so any depth). An element that breaks the grammar (cut
short, mismatched brackets) ends where the next element that does scan begins: the next
``,`` followed by ``{`` from which one whole element scans and is followed by ``,`` or by
the array's closing ``]`` (see ``_resync``). Okta's events are objects, so only an object
can start a new element after a broken one. An event cut inside a list of objects (its
``target``) is ambiguous: the objects after the cut may come out as elements of their own
(rejected by the mapping, having no ``uuid``). A body that does not start with ``[``, or
does not end with ``]`` when an element in it is broken, is not a page at all (``BadBody``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from ingest.okta.body import BadBody

# one token after optional whitespace: a whole string, a punctuation byte, a run of other
# bytes (number or literal, checked by orjson later), or anything else (a lone quote: a
# string that never ends); none at the end of the body
_TOKEN = re.compile(
    rb'[ \t\r\n]*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([\[\]{},:])|([^ \t\r\n\[\]{},:"]+)|(.))?',
    re.DOTALL,
)
_RESYNC = re.compile(rb",[ \t\r\n]*\{")
_SPACE = re.compile(rb"[ \t\r\n]*")
_TRIES = 32  # resync candidates checked up to the array's end (each check may scan it all)
_STRING, _PUNCT, _SCALAR = 1, 2, 3
# a page's elements as their exact bytes, the values left undecoded
_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])
_MAX_DEPTH = 254  # the deepest event orjson writes back (exports and outputs re-serialize)
_TOO_DEEP = "event is nested too deeply to store (over 254 levels)"


@dataclass(frozen=True)
class BadEvent:
    """An element of a page that is not an event that can be stored: why, and its bytes
    exactly as they came."""

    reason: str
    raw: bytes


@dataclass(frozen=True)
class ParsedPage:
    """A page's events, each event's JSON text (its exact bytes in the page, as stored in
    ``raw``), and the elements that could not be decoded."""

    events: list[Any]
    texts: list[bytes]
    bad: list[BadEvent]

    @property
    def count(self) -> int:
        """Every element of the page, good or bad."""
        return len(self.events) + len(self.bad)


def parse_page(body: bytes) -> ParsedPage:
    """The events of a page body; ``BadBody`` when the body is not a JSON array.

    The whole body is decoded in one go when it can be (the usual case), and split into
    each element's exact bytes (key order, number formatting, escapes and whitespace inside
    the element as they came); else element by element (see the module's docstring).
    """
    try:
        whole = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _one_by_one(body)
    if not isinstance(whole, list):
        raise BadBody("HTTP 200 with a JSON body that is not an array")
    try:
        texts = [bytes(element) for element in _ELEMENTS.decode(body)]
    except (msgspec.DecodeError, RecursionError):  # deeper than msgspec goes: the scanner's
        del whole
        return _one_by_one(body)
    if len(texts) != len(whole):  # not expected: the two decoders disagree on the page
        del whole, texts
        return _one_by_one(body)
    if not any(_may_be_too_deep(text) for text in texts):
        return ParsedPage(whole, texts, [])
    events: list[Any] = []
    kept: list[bytes] = []
    bad: list[BadEvent] = []
    for event, text in zip(whole, texts, strict=True):
        if _may_be_too_deep(text) and _too_deep(event):
            bad.append(BadEvent(_TOO_DEEP, text))
            continue
        events.append(event)
        kept.append(text)
    return ParsedPage(events, kept, bad)


def _may_be_too_deep(text: bytes) -> bool:
    """Whether an element has enough brackets to be nested too deeply (cheap, in C)."""
    return text.count(b"{") + text.count(b"[") > _MAX_DEPTH


def _too_deep(event: Any) -> bool:
    """Whether orjson refuses to write the event back (it stops at 254 levels)."""
    try:
        orjson.dumps(event)
    except TypeError:
        return True
    return False


def _one_by_one(body: bytes) -> ParsedPage:
    events: list[Any] = []
    texts: list[bytes] = []
    bad: list[BadEvent] = []
    for raw, broken in split_array(body):
        if broken:
            bad.append(BadEvent("event is not valid JSON: cut short or malformed", raw))
            continue
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            why = str(err).split(": line ")[0]
            bad.append(BadEvent(f"event could not be decoded: {why}", raw))
            continue
        if _may_be_too_deep(raw) and _too_deep(event):
            bad.append(BadEvent(_TOO_DEEP, raw))
            continue
        events.append(event)
        texts.append(raw)
    return ParsedPage(events, texts, bad)


class _Broken(Exception):
    pass


class _Spent(Exception):
    """The scan's budget is used up (see ``_Budget``)."""


class _Budget:
    """Tokens a page's scan may read in all: a few times its length. Scanning the elements
    once reads at most one token a byte; looking for where good elements begin again after
    a broken one re-reads some of them, and a hostile body (deep nesting broken at the
    bottom, many broken elements) could make that quadratic: past the budget, the rest of
    the page is one broken element."""

    def __init__(self, body: bytes) -> None:
        self.left = 4 * len(body) + 4096

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Spent


def split_array(body: bytes) -> list[tuple[bytes, bool]]:
    """The bytes of each top-level element of a JSON array, and whether it is broken (does
    not follow JSON's grammar). Elements that scan may still fail to decode (bad UTF-8,
    bad numbers, too deep for a decoder)."""
    pos = _SPACE.match(body).end()  # type: ignore[union-attr]
    if body[pos : pos + 1] != b"[":
        raise BadBody("HTTP 200 with a body that is not JSON")
    end_of_array = _closing(body)
    pos += 1
    first = _TOKEN.match(body, pos)
    assert first is not None  # the pattern matches the empty string
    if first.group(_PUNCT) == b"]" and first.end() == end_of_array:
        return []
    elements: list[tuple[bytes, bool]] = []
    budget = _Budget(body)
    while True:
        start = _SPACE.match(body, pos).end()  # type: ignore[union-attr]
        try:
            stop, after = _element(body, start, end_of_array, budget)
        except _Spent:
            return _rest_broken(body, start, end_of_array, elements)
        except _Broken:
            try:
                found = _resync(body, start + 1, end_of_array, budget)
            except _Spent:
                return _rest_broken(body, start, end_of_array, elements)
            if found is None:
                if end_of_array < 0:
                    raise BadBody("HTTP 200 with a body that is not JSON (cut short)") from None
                elements.append((body[start : end_of_array - 1].rstrip(), True))
                return elements
            comma, pos = found
            elements.append((body[start:comma].rstrip(), True))
            continue
        elements.append((body[start:stop], False))
        if after is None:
            return elements
        pos = after


def _rest_broken(
    body: bytes, start: int, end_of_array: int, elements: list[tuple[bytes, bool]]
) -> list[tuple[bytes, bool]]:
    """``elements`` and, as one broken element, everything from ``start`` to the array's end."""
    if end_of_array < 0:
        raise BadBody("HTTP 200 with a body that is not JSON (cut short)")
    elements.append((body[start : end_of_array - 1].rstrip(), True))
    return elements


def _closing(body: bytes) -> int:
    """Where the body's text ends if its last byte but whitespace is ``]`` (-1 if not)."""
    tail = body.rstrip(b" \t\r\n")
    return len(tail) if tail.endswith(b"]") else -1


def _element(body: bytes, start: int, end_of_array: int, budget: _Budget) -> tuple[int, int | None]:
    """The end of the element at ``start``, and where the next begins (None: the array's
    last); ``_Broken`` if it does not scan or is not followed by ``,`` or the closing ``]``."""
    stop = _value_end(body, start, budget)
    m = _TOKEN.match(body, stop)
    assert m is not None
    token = m.group(_PUNCT)
    if token == b",":
        return stop, m.end()
    if token == b"]" and m.end() == end_of_array:
        return stop, None
    raise _Broken


def _resync(body: bytes, pos: int, end_of_array: int, budget: _Budget) -> tuple[int, int] | None:
    """Where the elements after a broken one begin: (the comma's position, the object's).

    The first ``,`` after ``pos`` followed by an object from which every element scans to
    the array's end; an object inside the broken element (one of a list of objects) fails
    that at the list's ``]``. With another broken element further on none may pass: then,
    of the first ``_TRIES`` candidates, the first that scans as one element."""
    first: tuple[int, int] | None = None
    for tries, m in enumerate(_RESYNC.finditer(body, pos)):
        if tries >= _TRIES:  # every candidate counts, those that fail to scan too
            break
        start = m.end() - 1
        try:
            _, after = _element(body, start, end_of_array, budget)
        except _Broken:
            continue
        if first is None:
            first = m.start(), start
        if after is None or _scans_to_end(body, after, end_of_array, budget):
            return m.start(), start
    return first


def _scans_to_end(body: bytes, pos: int, end_of_array: int, budget: _Budget) -> bool:
    """Whether every element from ``pos`` on scans, up to the array's closing ``]``."""
    while True:
        try:
            start = _SPACE.match(body, pos).end()  # type: ignore[union-attr]
            _, after = _element(body, start, end_of_array, budget)
        except _Broken:
            return False
        if after is None:
            return True
        pos = after


def _value_end(body: bytes, pos: int, budget: _Budget) -> int:
    """Where the JSON value at ``pos`` ends; ``_Broken`` if its tokens break the grammar."""
    closers: list[bytes] = []
    expect = "value"  # value | value_or_close | key | key_or_close | colon | after
    while True:
        budget.spend()
        m = _TOKEN.match(body, pos)
        assert m is not None
        kind = m.lastindex
        token = m.group(kind) if kind else None
        pos = m.end()
        complete = False
        if expect in ("value", "value_or_close"):
            if kind in (_STRING, _SCALAR):
                complete = True
            elif token == b"{":
                closers.append(b"}")
                expect = "key_or_close"
            elif token == b"[":
                closers.append(b"]")
                expect = "value_or_close"
            elif expect == "value_or_close" and token == b"]":
                closers.pop()
                complete = True
            else:
                raise _Broken
        elif expect in ("key", "key_or_close"):
            if kind == _STRING:
                expect = "colon"
            elif expect == "key_or_close" and token == b"}":
                closers.pop()
                complete = True
            else:
                raise _Broken
        elif expect == "colon":
            if token != b":":
                raise _Broken
            expect = "value"
        else:  # after a value inside a container
            if token == b",":
                expect = "key" if closers[-1] == b"}" else "value"
            elif token == closers[-1]:
                closers.pop()
                complete = True
            else:
                raise _Broken
        if complete:
            if not closers:
                return pos
            expect = "after"

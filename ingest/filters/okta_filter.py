"""Okta System Log ``filter`` and ``q`` over the stored events: DuckDB SQL and a Python reference.

``filter_to_sql`` and ``q_to_sql`` turn the two query parameters of ``GET /api/v1/logs`` into a
boolean SQL expression over the columns ``raw`` (the event's JSON exactly as received) and
``event_type``; ``matches_filter`` and ``matches_q`` answer the same question for one parsed
event in plain Python. The two are meant to agree on every event, and the tests check that
they do. User text never enters the SQL: literals, JSON paths and keywords are named
parameters (``$f0``, ``$f1``, ... with the default prefix).

What Okta documents, and where
------------------------------
Sources: the System Log API reference and the "System Log query" guide in
okta/okta-developer-docs (``docs/reference/api/system-log``, ``docs/reference/system-log-query``:
request parameters, "Expression filter", "Keyword filter", "Errors"), and the "Filter" and
"Operators" sections of its Core Okta API reference (``docs/reference/core-okta-api``), which
point to RFC 7644 section 3.4.2.2.

- ``filter`` is a SCIM expression; all RFC 7644 operators except ``[ ]`` are supported:
  ``eq ne co sw ew gt ge lt le pr``, ``and``, ``or``, ``not`` and parentheses. ``and`` binds
  tighter than ``or``. Operators are case-insensitive, attribute names are case-sensitive.
  String literals are JSON strings; other literals are numbers, ``true``, ``false``, ``null``.
  (Okta's sample E0000053 message lists "eq,co,sw,pr,gt,ge,lt,le", but the same guide shows
  ``ne`` and ``ew`` filters; all ten are accepted.)
- ``eq``: "the attribute and operator values must be identical" - string comparisons are
  case-sensitive (also okta/okta-developer-docs issue 1179: filter values are case-sensitive,
  unlike search). ``gt ge lt le`` compare strings lexicographically.
- ``pr``: the attribute has a non-empty value, or a complex attribute contains a non-empty node.
- ``published`` may not be used (since/until/after decide time); ``co`` on
  ``debugContext.debugData.url`` and ``debugContext.debugData.requestUri`` is refused with
  E0000031. An invalid filter is E0000053, with the position of the problem.
- ``target.id eq "A" and target.id eq "B"`` is Okta's own example of events with both targets:
  a path through a list matches when any element matches, each comparison on its own.
- ``q``: keywords separated by spaces, all must match, "exactly", case-insensitively, against
  the event's attribute values; a hyphenated value also matches each of its hyphen-separated
  parts. At most 10 keywords of at most 40 characters each (E0000001, "Freeform search cannot
  contain items longer than 40 characters").

What Okta leaves open, and what this module chooses
---------------------------------------------------
- Paths: each step looks a key up in an object; when it meets an array it looks the key up in
  each object element (one level: arrays directly inside arrays are skipped). When the final
  value is an array, its elements are the values (again one level). A comparison holds when
  any value satisfies it.
- Types are never converted. A string literal compares only with string values, a number with
  numbers, ``true``/``false`` with booleans: ``debugContext.debugData.threatSuspected eq false``
  does not match the string ``"false"`` Okta writes there. Numbers compare as IEEE doubles.
  Strings compare by code point; ``co``/``sw``/``ew`` are plain substring tests (``%`` and
  ``_`` are ordinary characters).
- ``ne`` is the negation of ``eq``: ``actor.id ne "x"`` matches events without ``actor.id``, as
  Okta's "all actors except" example suggests, and ``target.id ne "x"`` means no target has
  that id.
- Present: ``null``, ``""``, and objects or arrays with no present member anywhere inside are
  not present; every other value is (``false``, ``0`` and the string ``"null"`` Okta writes in
  ``client.zone`` all are). ``x eq null`` is ``not (x pr)``; ``x ne null`` is ``x pr``.
- ``q`` keywords are split on space, tab, CR, LF, FF and VT. Only string values are searched
  (not keys, numbers or booleans). Each string value is lower-cased and its candidates are
  its whitespace-separated words plus the parts of those words between hyphens; a keyword
  matches when it equals a candidate. Quotes in ``q`` are ordinary characters. Lower-casing
  is Unicode's simple, one-character mapping (so U+0130 becomes "i" and a final capital
  sigma becomes U+03C3, not U+03C2). An empty ``q`` matches everything. Lengths count code points.
- ``eventType`` comparisons with a string first rule rows out on the ``event_type`` column,
  then decide on ``raw``. This relies on one promise of the store: when ``eventType`` is a
  string, ``event_type`` holds it unchanged (numbers may be kept as their text; that is
  harmless, a string literal never equals a number).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest.base.errors import FilterSyntaxError
from ingest.filters.scim import (
    And,
    Compare,
    Node,
    Not,
    Or,
    Present,
    Value,
    parse_filter,
    render_filter,
)

__all__ = [
    "Node",
    "SqlCondition",
    "filter_to_sql",
    "matches_filter",
    "matches_q",
    "parse_filter",
    "parse_q",
    "q_to_sql",
    "render_filter",
]

MAX_KEYWORDS = 10
MAX_KEYWORD_LENGTH = 40

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SQL_ORDER = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_SQL_STRING = {"co": "contains", "sw": "starts_with", "ew": "ends_with"}
_NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"
_V_STRING = "json_extract_string(v, '$')"


@dataclass(frozen=True)
class SqlCondition:
    """A boolean SQL expression over ``raw`` and ``event_type`` and its named parameters."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


# -- the reference evaluation ----------------------------------------------------------------


def _resolve(event: Any, path: tuple[str, ...]) -> list[Any]:
    """The values at ``path``: arrays met on the way, and at the end, are expanded one level."""
    current = [event]
    for key in path:
        found: list[Any] = []
        for node in current:
            if isinstance(node, Mapping):
                if key in node:
                    found.append(node[key])
            elif isinstance(node, list):
                found.extend(e[key] for e in node if isinstance(e, Mapping) and key in e)
        current = found
    values: list[Any] = []
    for node in current:
        if isinstance(node, list):
            values.extend(node)
        else:
            values.append(node)
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, Mapping):
        return any(_present(v) for v in value.values())
    if isinstance(value, list):
        return any(_present(v) for v in value)
    return True


def _holds(value: Any, op: str, literal: Value) -> bool:
    """Whether one value satisfies ``op literal``; ``op`` is neither ``ne`` nor against null."""
    if isinstance(literal, bool):
        return isinstance(value, bool) and value == literal
    if isinstance(literal, str):
        if not isinstance(value, str):
            return False
        checks = {
            "eq": value == literal,
            "co": literal in value,
            "sw": value.startswith(literal),
            "ew": value.endswith(literal),
            "gt": value > literal,
            "ge": value >= literal,
            "lt": value < literal,
            "le": value <= literal,
        }
        return checks[op]
    if not _is_number(value) or literal is None:
        return False
    a, b = float(value), float(literal)
    return {"eq": a == b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]


def _evaluate(node: Node, event: Any) -> bool:
    if isinstance(node, And):
        return _evaluate(node.left, event) and _evaluate(node.right, event)
    if isinstance(node, Or):
        return _evaluate(node.left, event) or _evaluate(node.right, event)
    if isinstance(node, Not):
        return not _evaluate(node.inner, event)
    values = _resolve(event, node.path)
    if isinstance(node, Present):
        return any(_present(v) for v in values)
    if node.op == "ne":
        return not _evaluate(Compare(node.path, "eq", node.value), event)
    if node.value is None:
        return not any(_present(v) for v in values)
    return any(_holds(v, node.op, node.value) for v in values)


def matches_filter(event: Mapping[str, Any], text_or_node: str | Node) -> bool:
    """Whether a parsed event (as ``json.loads`` gives it) satisfies a ``filter``."""
    node = parse_filter(text_or_node) if isinstance(text_or_node, str) else text_or_node
    return _evaluate(node, event)


# -- the SQL translation ---------------------------------------------------------------------


def _check_prefix(prefix: str) -> None:
    if not _PREFIX.match(prefix):
        raise ValueError(f"parameter prefix must be an identifier, not {prefix!r}")


class _Translator:
    """Builds one SQL expression; every piece of user text becomes a named parameter."""

    def __init__(self, prefix: str) -> None:
        _check_prefix(prefix)
        self.prefix = prefix
        self.params: dict[str, Any] = {}
        self._keys: dict[str, tuple[str, str]] = {}

    def param(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    def key_paths(self, key: str) -> tuple[str, str]:
        """Parameters holding the JSON paths of ``key`` in an object and in an array's objects.

        The parser allows only letters, digits, ``_`` and ``-`` in a key, so quoting it cannot
        break out of the path string.
        """
        if key not in self._keys:
            self._keys[key] = (self.param(f'$."{key}"'), self.param(f'$[*]."{key}"'))
        return self._keys[key]

    def values(self, path: tuple[str, ...]) -> str:
        """A ``JSON[]`` expression of the values at ``path``, as ``_resolve`` finds them."""
        current = "[raw]"
        for key in path:
            in_object, in_array = self.key_paths(key)
            current = (
                f"list_filter(flatten(list_transform({current}, lambda x: CASE WHEN "
                f"json_type(x) = 'ARRAY' THEN json_extract(x, {in_array}) "
                f"ELSE [json_extract(x, {in_object})] END)), lambda x: x IS NOT NULL)"
            )
        return (
            f"flatten(list_transform({current}, lambda x: CASE WHEN json_type(x) = 'ARRAY' "
            "THEN json_extract(x, '$[*]') ELSE [x] END))"
        )

    def any_value(self, path: tuple[str, ...], predicate: str) -> str:
        """True when some value ``v`` at ``path`` satisfies ``predicate``."""
        return f"(len(list_filter({self.values(path)}, lambda v: {predicate})) > 0)"

    def present(self, path: tuple[str, ...]) -> str:
        leaf = (
            "json_type(d) NOT IN ('NULL', 'OBJECT', 'ARRAY') AND "
            "(json_type(d) <> 'VARCHAR' OR json_extract_string(d, '$') <> '')"
        )
        inside = f"len(list_filter(json_extract(v, '$.**'), lambda d: {leaf})) > 0"
        predicate = (
            "CASE json_type(v) WHEN 'NULL' THEN false "
            "WHEN 'VARCHAR' THEN json_extract_string(v, '$') <> '' "
            f"WHEN 'OBJECT' THEN {inside} WHEN 'ARRAY' THEN {inside} ELSE true END"
        )
        return self.any_value(path, predicate)

    def compare(self, node: Compare) -> str:
        op, literal = node.op, node.value
        if op == "ne":
            return f"(NOT {self.compare(Compare(node.path, 'eq', literal))})"
        if literal is None:
            return f"(NOT {self.present(node.path)})"
        p = self.param(float(literal) if _is_number(literal) else literal)
        if isinstance(literal, bool):
            return self.any_value(
                node.path,
                f"CASE WHEN json_type(v) = 'BOOLEAN' THEN CAST(v AS BOOLEAN) = {p} ELSE false END",
            )
        if not isinstance(literal, str):
            return self.any_value(
                node.path,
                f"CASE WHEN json_type(v) IN {_NUMBER_TYPES} "
                f"THEN CAST(v AS DOUBLE) {_SQL_ORDER[op]} {p} ELSE false END",
            )

        def test(s: str) -> str:
            if op in _SQL_STRING:
                return f"{_SQL_STRING[op]}({s}, {p})"
            return f"{s} {_SQL_ORDER[op]} {p}"

        generic = self.any_value(
            node.path, f"CASE WHEN json_type(v) = 'VARCHAR' THEN {test(_V_STRING)} ELSE false END"
        )
        if node.path == ("eventType",):
            # The column rules rows out cheaply; raw decides for the rows it lets through.
            column = f"coalesce({test('event_type')}, true)"
            return f"(CASE WHEN NOT {column} THEN false ELSE {generic} END)"
        return generic

    def node(self, node: Node) -> str:
        if isinstance(node, And):
            return f"({self.node(node.left)} AND {self.node(node.right)})"
        if isinstance(node, Or):
            return f"({self.node(node.left)} OR {self.node(node.right)})"
        if isinstance(node, Not):
            return f"(NOT {self.node(node.inner)})"
        if isinstance(node, Present):
            return self.present(node.path)
        return self.compare(node)


def filter_to_sql(text: str | Node, prefix: str = "f") -> SqlCondition:
    """The ``filter`` as a boolean SQL expression over ``raw`` and ``event_type``.

    Raise ``FilterSyntaxError`` for what Okta would reject. Parameters are named
    ``{prefix}0``, ``{prefix}1``, ...; give two conditions used together different prefixes.
    """
    node = parse_filter(text) if isinstance(text, str) else text
    translator = _Translator(prefix)
    return SqlCondition(translator.node(node), translator.params)


# -- q: keywords -----------------------------------------------------------------------------

_WHITESPACE = " \t\n\r\f\v"
_WORDS = re.compile(f"[^{_WHITESPACE}]+")
_SPLIT_WORDS = re.compile(f"[{_WHITESPACE}]")
_SPLIT_PARTS = re.compile(f"[{_WHITESPACE}-]")
# The same sets, as RE2 patterns inside SQL string literals (backslashes reach RE2 as written).
_SQL_SPLIT_WORDS = r"'[ \t\n\r\f\v]'"
_SQL_SPLIT_PARTS = r"'[ \t\n\r\f\v-]'"
_ESCAPABLE = re.compile(r'["\\/\x00-\x1f]')


def simple_lower(text: str) -> str:
    """Unicode simple lower-case mapping, one character at a time (as DuckDB's ``lower``).

    ``str.lower`` differs only by the full mapping of U+0130 and the final-sigma rule.
    """
    if "\u0130" not in text and "\u03a3" not in text:
        return text.lower()
    return "".join("i" if c == "\u0130" else c.lower() for c in text)


def parse_q(text: str) -> list[str]:
    """The keywords of ``q``; raise ``FilterSyntaxError`` (E0000001) beyond Okta's limits."""
    words = list(_WORDS.finditer(text))
    for word in words:
        if len(word.group()) > MAX_KEYWORD_LENGTH:
            raise FilterSyntaxError(
                f"Freeform search cannot contain items longer than {MAX_KEYWORD_LENGTH} characters",
                word.start(),
                parameter="q",
                code="E0000001",
            )
    if len(words) > MAX_KEYWORDS:
        raise FilterSyntaxError(
            f"Freeform search cannot contain more than {MAX_KEYWORDS} items",
            words[MAX_KEYWORDS].start(),
            parameter="q",
            code="E0000001",
        )
    return [word.group() for word in words]


def _strings(value: Any) -> list[str]:
    """Every string value inside ``value`` (not keys), in no particular order."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict | Mapping):
            stack.extend(item.values())
    return found


def _splitter(keyword: str) -> re.Pattern[str]:
    """Where to cut values for ``keyword``: a keyword with a hyphen can only equal a whole
    word; one without can only equal a word without hyphens or a part between them."""
    return _SPLIT_WORDS if "-" in keyword else _SPLIT_PARTS


def matches_q(event: Mapping[str, Any], text: str) -> bool:
    """Whether a parsed event matches every keyword of ``q``."""
    keywords = {simple_lower(k) for k in parse_q(text)}
    if not keywords:
        return True
    strings = _strings(event)
    everything = simple_lower("\n".join(strings))  # a keyword is a substring of its value
    if not all(k in everything for k in keywords):
        return False
    lowered = [simple_lower(s) for s in strings]
    return all(any(k in s and k in _splitter(k).split(s) for s in lowered) for k in keywords)


def q_to_sql(text: str, prefix: str = "q") -> SqlCondition:
    """``q`` as a boolean SQL expression over ``raw``: every keyword must match."""
    _check_prefix(prefix)
    keywords = list(dict.fromkeys(simple_lower(k) for k in parse_q(text)))
    if not keywords:
        return SqlCondition("true", {})
    params = {f"{prefix}{i}": keyword for i, keyword in enumerate(keywords)}
    string = "lower(json_extract_string(s, '$'))"
    tests = []
    for name, keyword in params.items():
        split = _SQL_SPLIT_WORDS if "-" in keyword else _SQL_SPLIT_PARTS
        tests.append(
            "(len(list_filter(json_extract(raw, '$.**'), lambda s: CASE WHEN "
            f"json_type(s) = 'VARCHAR' AND contains({string}, ${name}) THEN "
            f"list_contains(string_split_regex({string}, {split}), ${name}) ELSE false END)) > 0)"
        )
    full = " AND ".join(tests)
    # A cheap necessary condition first: where the JSON text has no \u escape, a keyword
    # without quote, backslash, slash or control characters appears in it verbatim.
    plain = [f"${name}" for name, k in params.items() if not _ESCAPABLE.search(k)]
    if not plain:
        return SqlCondition(f"({full})", params)
    raw = "CAST(raw AS VARCHAR)"
    found = " AND ".join(f"contains(lower({raw}), {name})" for name in plain)
    return SqlCondition(
        f"(CASE WHEN contains({raw}, '\\u') OR ({found}) THEN {full} ELSE false END)", params
    )


def search_to_sql(filter_text: str | None, q_text: str | None) -> SqlCondition | None:
    """Okta ``filter`` and ``q`` together (both must hold), or None when neither is given."""
    parts = [
        translate(text)
        for text, translate in ((filter_text, filter_to_sql), (q_text, q_to_sql))
        if text is not None and str(text).strip()
    ]
    if not parts:
        return None
    params: dict[str, Any] = {}
    for part in parts:
        params.update(part.params)
    return SqlCondition(" AND ".join(f"({p.sql})" for p in parts), params)

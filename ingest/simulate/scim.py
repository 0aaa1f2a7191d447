"""A small SCIM filter evaluator for the simulated ``filter`` parameter.

Supports ``eq ne co sw ew gt ge lt le pr``, ``and``/``or``/``not`` and parentheses over dotted
attribute paths (lists such as ``target`` match when any element does). String comparisons
ignore case. ``published`` may not be used, as on Okta.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<paren>[()])
      | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


class FilterError(ValueError):
    """The filter expression cannot be parsed or uses a forbidden attribute."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"unexpected input at position {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _values(event: Any, path: list[str]) -> list[Any]:
    """Every value at ``path``, descending into lists."""
    current = [event]
    for key in path:
        found: list[Any] = []
        for item in current:
            items = item if isinstance(item, list) else [item]
            for element in items:
                if isinstance(element, Mapping) and key in element:
                    found.append(element[key])
        current = found
    flat: list[Any] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        a, e = actual.lower(), expected.lower()
        checks: dict[str, Callable[[], bool]] = {
            "eq": lambda: a == e,
            "ne": lambda: a != e,
            "co": lambda: e in a,
            "sw": lambda: a.startswith(e),
            "ew": lambda: a.endswith(e),
            "gt": lambda: a > e,
            "ge": lambda: a >= e,
            "lt": lambda: a < e,
            "le": lambda: a <= e,
        }
        return checks[op]()
    if op == "eq":
        return bool(actual == expected and type(actual) is type(expected))
    if op == "ne":
        return not _compare("eq", actual, expected)
    numeric = (int, float)
    if isinstance(actual, numeric) and isinstance(expected, numeric):
        if isinstance(actual, bool) or isinstance(expected, bool):
            return False
        return {
            "gt": actual > expected,
            "ge": actual >= expected,
            "lt": actual < expected,
            "le": actual <= expected,
        }.get(op, False)
    return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of filter")
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.keyword("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda ev: any(p(ev) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.keyword("and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else lambda ev: all(p(ev) for p in parts)

    def unary(self) -> Predicate:
        if self.keyword("not"):
            inner = self.unary()
            return lambda ev: not inner(ev)
        token = self.peek()
        if token == ("paren", "("):
            self.take()
            inner = self.disjunction()
            if self.take() != ("paren", ")"):
                raise FilterError("missing ')'")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        kind, attribute = self.take()
        if kind != "word" or attribute.lower() in _COMPARE | {"and", "or", "not", "pr"}:
            raise FilterError(f"expected an attribute, got {attribute!r}")
        path = attribute.split(".")
        if path[0] == "published":
            raise FilterError("published cannot be used in a filter; use since and until")
        kind, op = self.take()
        op = op.lower()
        if kind == "word" and op == "pr":
            return lambda ev: any(v is not None for v in _values(ev, path))
        if kind != "word" or op not in _COMPARE:
            raise FilterError(f"unknown operator {op!r}")
        expected = self.literal()
        return lambda ev: any(_compare(op, v, expected) for v in _values(ev, path))

    def literal(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "word" and text.lower() in _LITERALS:
            return _LITERALS[text.lower()]
        raise FilterError(f"expected a value, got {text!r}")


def compile_filter(text: str) -> Predicate:
    """Compile a SCIM filter into a predicate over event dicts; raise ``FilterError``."""
    if not text.strip():
        raise FilterError("empty filter")
    return _Parser(text).parse()

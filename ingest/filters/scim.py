"""Okta's dialect of SCIM filter expressions: tokens, a parser with positions, an AST, a renderer.

The grammar is RFC 7644 section 3.4.2.2 without value paths (``[ ]``), which Okta's System Log
does not support, and with dotted attribute paths of any depth, as Okta's LogEvent needs::

    filter     = or-expr
    or-expr    = and-expr *("or" and-expr)              ; "and" binds tighter than "or"
    and-expr   = unary *("and" unary)
    unary      = "not" "(" or-expr ")" / "(" or-expr ")" / attr-expr
    attr-expr  = path "pr" / path compare-op value
    compare-op = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "ge" / "lt" / "le"
    path       = name *("." name)                       ; name = ALPHA *(ALPHA / DIGIT / "_" / "-")
    value      = JSON string / JSON number / "true" / "false" / "null"

Operators, ``and``/``or``/``not`` and the three literal words are case-insensitive; attribute
names are case-sensitive (Okta's "Filter" reference). Tokens may be separated by any amount of
space, tab or line break. Positions in errors count characters from 0, as in Okta's
``Unrecognized attribute operator 'eqq' at position 16`` (System Log API, "Errors").

Two Okta rules are enforced here because they are errors, not results: ``published`` may not
appear in a filter (use ``since``/``until``; E0000053), and ``co`` on
``debugContext.debugData.url`` or ``debugContext.debugData.requestUri`` is not supported
(E0000031). Both are in Okta's System Log guide, "Expression filter". Okta states no size
limits; this parser refuses more than ``MAX_TERMS`` comparisons or parentheses nested deeper
than ``MAX_DEPTH``, so that nothing downstream recurses without bound.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TypeAlias

from ingest.base.errors import FilterSyntaxError

__all__ = [
    "COMPARE_OPS",
    "And",
    "Compare",
    "Node",
    "Not",
    "Or",
    "Present",
    "Value",
    "parse_filter",
    "render_filter",
]

Value: TypeAlias = str | int | float | bool | None

COMPARE_OPS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
STRING_OPS = frozenset({"co", "sw", "ew"})
ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})
_KEYWORDS = frozenset({"and", "or", "not"})
_LITERALS: dict[str, Value] = {"true": True, "false": False, "null": None}
# Okta answers E0000031 for these (System Log guide, "Expression filter").
_NO_CONTAINS = frozenset({"debugContext.debugData.url", "debugContext.debugData.requestUri"})

# Okta is silent on size; these keep the parser, the evaluation and DuckDB clear of deep
# recursion (a filter of Okta's own size stays far below them).
MAX_TERMS = 100
MAX_DEPTH = 32

_SPACE = frozenset(" \t\r\n")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*\Z")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_STRING_PART = re.compile(r'[^"\\\x00-\x1f]+')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_DELIMITERS = frozenset(' \t\r\n()"')


# -- the AST ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    """``path op value``; ``op`` is one of ``COMPARE_OPS``."""

    path: tuple[str, ...]
    op: str
    value: Value


@dataclass(frozen=True)
class Present:
    """``path pr``."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


Node: TypeAlias = Compare | Present | And | Or | Not


# -- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "number", "(", ")", "end"
    text: str  # the source text of the token
    position: int
    value: Value = None


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    if token.kind == "string":
        return "a string"
    if token.kind == "number":
        return f"the number {token.text}"
    return f'"{token.text}"'


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The JSON string starting at ``text[start] == '"'``: its value and the index after it."""
    parts: list[str] = []
    pos = start + 1
    while True:
        run = _STRING_PART.match(text, pos)
        if run:
            parts.append(run.group())
            pos = run.end()
        if pos >= len(text):
            raise FilterSyntaxError("unterminated string", start)
        char = text[pos]
        if char == '"':
            return "".join(parts), pos + 1
        if char != "\\":
            raise FilterSyntaxError(
                f"control character U+{ord(char):04X} in a string; escape it", pos
            )
        escape = text[pos + 1 : pos + 2]
        if escape in _ESCAPES:
            parts.append(_ESCAPES[escape])
            pos += 2
        elif escape == "u":
            char, pos = _read_unicode(text, pos)
            parts.append(char)
        elif not escape:
            raise FilterSyntaxError("unterminated string", start)
        else:
            raise FilterSyntaxError(f'invalid escape "\\{escape}" in a string', pos)


def _read_unicode(text: str, pos: int) -> tuple[str, int]:
    """The character of the ``\\uXXXX`` escape at ``pos`` (two for a surrogate pair), and the
    index after it."""

    def unit(at: int) -> int | None:
        digits = text[at + 2 : at + 6]
        if text[at : at + 2] != "\\u" or not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
            return None
        return int(digits, 16)

    high = unit(pos)
    if high is None:
        raise FilterSyntaxError('invalid escape "\\u": expected four hex digits', pos)
    if 0xDC00 <= high <= 0xDFFF:
        raise FilterSyntaxError("invalid escape: a lone low surrogate", pos)
    if high < 0xD800 or high > 0xDBFF:
        return chr(high), pos + 6
    low = unit(pos + 6)
    if low is None or not 0xDC00 <= low <= 0xDFFF:
        raise FilterSyntaxError("invalid escape: a high surrogate without its low half", pos)
    return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)), pos + 12


def _number(text: str, position: int) -> int | float:
    try:
        if any(c in text for c in ".eE"):
            value: int | float = float(text)
        else:
            value = int(text)
            float(value)  # OverflowError beyond the double range
    except OverflowError:
        value = math.inf
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterSyntaxError(f"number {text} is out of range", position)
    return value


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = _skip_space(text, 0)
    while pos < len(text):
        char = text[pos]
        if char in "()":
            out.append(_Token(char, char, pos))
            end = pos + 1
        elif char == '"':
            value, end = _read_string(text, pos)
            out.append(_Token("string", text[pos:end], pos, value))
        elif char in "-0123456789":
            match = _NUMBER.match(text, pos)
            end = match.end() if match else pos
            if not match or (end < len(text) and text[end] not in _DELIMITERS):
                bad = re.match(r"[^ \t\r\n()\"]+", text[pos:])
                shown = bad.group() if bad else char
                raise FilterSyntaxError(
                    f"invalid number {json.dumps(shown, ensure_ascii=False)}", pos
                )
            out.append(_Token("number", match.group(), pos, _number(match.group(), pos)))
        elif char.isascii() and char.isalpha():
            word = _WORD.match(text, pos)
            assert word is not None
            end = word.end()
            out.append(_Token("word", word.group(), pos))
        elif char == "[":
            raise FilterSyntaxError('value filters with "[ ]" are not supported', pos)
        else:
            raise FilterSyntaxError(
                f"unexpected character {json.dumps(char, ensure_ascii=False)}", pos
            )
        pos = _skip_space(text, end)
    out.append(_Token("end", "", len(text)))
    return out


# -- the parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0
        self.terms = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def at_word(self, word: str) -> bool:
        return self.token.kind == "word" and self.token.text.lower() == word

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise FilterSyntaxError("the filter is empty", 0)
        node = self.or_expr(None)
        token = self.token
        if token.kind == ")":
            raise FilterSyntaxError('unbalanced ")"', token.position)
        if token.kind != "end":
            raise FilterSyntaxError(
                f'expected "and" or "or", got {_describe(token)}', token.position
            )
        return node

    def or_expr(self, after: str | None) -> Node:
        node = self.and_expr(after)
        while self.at_word("or"):
            self.advance()
            node = Or(node, self.and_expr('"or"'))
        return node

    def and_expr(self, after: str | None) -> Node:
        node = self.unary(after)
        while self.at_word("and"):
            self.advance()
            node = And(node, self.unary('"and"'))
        return node

    def unary(self, after: str | None) -> Node:
        token = self.token
        if self.at_word("not"):
            self.advance()
            if self.token.kind != "(":
                raise FilterSyntaxError(
                    f'expected "(" after "not", got {_describe(self.token)}', self.token.position
                )
            return Not(self.group())
        if token.kind == "(":
            return self.group()
        if token.kind == "word" and token.text.lower() not in _KEYWORDS:
            return self.attr_expr()
        where = f" after {after}" if after else ""
        raise FilterSyntaxError(
            f'expected an attribute, "not" or "("{where}, got {_describe(token)}', token.position
        )

    def group(self) -> Node:
        opening = self.advance()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterSyntaxError(
                f"parentheses nest deeper than {MAX_DEPTH} levels", opening.position
            )
        node = self.or_expr('"("')
        self.depth -= 1
        if self.token.kind != ")":
            raise FilterSyntaxError(
                f'expected ")" to close the "(" at position {opening.position}, '
                f"got {_describe(self.token)}",
                self.token.position,
            )
        self.advance()
        return node

    def attr_expr(self) -> Node:
        attribute = self.advance()
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterSyntaxError(
                f"the filter has more than {MAX_TERMS} comparisons", attribute.position
            )
        path = tuple(attribute.text.split("."))
        if not all(_NAME.match(name) for name in path):
            raise FilterSyntaxError(
                f"invalid attribute path {_describe(attribute)}", attribute.position
            )
        if path[0] == "published":
            raise FilterSyntaxError(
                "published cannot be used in a filter; use since and until", attribute.position
            )
        operator = self.token
        if operator.kind != "word":
            raise FilterSyntaxError(
                f"expected an operator after {_describe(attribute)}, got {_describe(operator)}",
                operator.position,
            )
        op = operator.text.lower()
        if op == "pr":
            self.advance()
            return Present(path)
        if op not in COMPARE_OPS:
            raise FilterSyntaxError(
                f"unrecognized attribute operator {_describe(operator)}; expected one of "
                f"{', '.join(COMPARE_OPS)} or pr",
                operator.position,
            )
        self.advance()
        if op == "co" and attribute.text in _NO_CONTAINS:
            raise FilterSyntaxError(
                "the supplied combination of operator and field is not currently supported. "
                f"Operator: co, Field: {attribute.text}",
                operator.position,
                code="E0000031",
            )
        return Compare(path, op, self.value(op))

    def value(self, op: str) -> Value:
        token = self.advance()
        value: Value
        if token.kind in ("string", "number"):
            value = token.value
        elif token.kind == "word" and token.text.lower() in _LITERALS:
            value = _LITERALS[token.text.lower()]
        else:
            raise FilterSyntaxError(
                f'expected a value after "{op}" (a "string", a number, true, false or null), '
                f"got {_describe(token)}",
                token.position,
            )
        if op in STRING_OPS and not isinstance(value, str):
            raise FilterSyntaxError(f'"{op}" needs a string value', token.position)
        if op in ORDER_OPS and (value is None or isinstance(value, bool)):
            raise FilterSyntaxError(f'"{op}" needs a string or a number', token.position)
        return value


def parse_filter(text: str) -> Node:
    """Parse a System Log ``filter`` expression; raise ``FilterSyntaxError`` with a position."""
    return _Parser(text).parse()


# -- rendering -------------------------------------------------------------------------------


def _render_value(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def render_filter(node: Node) -> str:
    """The canonical text of ``node``; ``parse_filter(render_filter(n)) == n``."""
    if isinstance(node, Compare):
        return f"{'.'.join(node.path)} {node.op} {_render_value(node.value)}"
    if isinstance(node, Present):
        return f"{'.'.join(node.path)} pr"
    if isinstance(node, Not):
        return f"not ({render_filter(node.inner)})"
    # Both are parsed left-associative, and "and" binds tighter than "or".
    if isinstance(node, And):
        left = render_filter(node.left)
        right = render_filter(node.right)
        if isinstance(node.left, Or):
            left = f"({left})"
        if isinstance(node.right, And | Or):
            right = f"({right})"
        return f"{left} and {right}"
    left, right = render_filter(node.left), render_filter(node.right)
    if isinstance(node.right, Or):
        right = f"({right})"
    return f"{left} or {right}"

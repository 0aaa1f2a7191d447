"""Secret values never leave the process in text: a registry of them and ``redact``.

Every :class:`~ingest.base.secrets.Secret` registers its value when it is created; values minted at
run time (OAuth access tokens, client assertions, DPoP proofs) are registered as *transient*:
only the most recent :data:`TRANSIENT_KEPT` of them are remembered, so a daemon that mints a
proof per request does not grow without bound (an answer that echoes a proof arrives right
after the request that carried it).

:func:`redact` replaces each registered value with ``***``, in the forms a server or a library
may echo it: as sent, URL-encoded (``%2B`` or ``+`` for a space) and JSON-escaped. A run of at
least :data:`HEAD` characters that starts like a registered value is replaced as well, so an
echo cut short (an excerpt, a truncated error summary) does not leave most of the value behind.
Values shorter than :data:`MIN_LENGTH` characters are not registered: they would blank out
ordinary words and are not secrets worth the name.

It is applied once at each exit: :class:`~ingest.base.errors.OktaduckError` messages, every log line
(:mod:`ingest.base.logs`) and the text of an unexpected exception; :func:`redact_bytes` cleans the
body of an Okta page before it is decoded and stored, so a server that echoes the token inside
events does not get it into the database or an export. With nothing registered it costs one
check.

This module imports nothing from the package, so ``errors``, ``logs`` and ``secrets`` can all
use it.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

MIN_LENGTH = 8
HEAD = 12
TRANSIENT_KEPT = 256
MASK = "***"

_lock = threading.Lock()
_kept: set[str] = set()  # the permanent values
_transient: deque[str] = deque()  # the recent run-time values, oldest first
_transient_set: set[str] = set()
_by_head: dict[str, dict[str, int]] = {}  # head -> {form: how many values have it}
_index: _Index | None = None  # None: rebuild on the next redact (the heads changed)
_any = False  # the fast path: nothing registered yet


@dataclass(frozen=True)
class _Index:
    heads: re.Pattern[str]
    byte_heads: tuple[bytes, ...]  # the heads as UTF-8, for a quick look through bytes


def register(value: str, *, transient: bool = False) -> None:
    """Remember ``value`` so that :func:`redact` hides it (ignored below ``MIN_LENGTH``).

    Cheap enough to call for every request: the search pattern is rebuilt only when a value
    starts differently from every value already known (DPoP proofs all start alike).
    """
    global _any
    if not isinstance(value, str) or len(value) < MIN_LENGTH:
        return
    with _lock:
        if value in _kept or value in _transient_set:
            if not transient and value in _transient_set:
                _drop_transient(value)
                _kept.add(value)  # already indexed
            return
        if transient:
            if len(_transient) >= TRANSIENT_KEPT:
                _unindex(_transient.popleft(), transient=True)
            _transient.append(value)
            _transient_set.add(value)
        else:
            _kept.add(value)
        for form in _forms(value):
            forms = _by_head.setdefault(form[:HEAD], {})
            forms[form] = forms.get(form, 0) + 1
            if len(forms) == 1 and forms[form] == 1:
                _heads_changed()
        _any = True


def _drop_transient(value: str) -> None:
    _transient.remove(value)
    _transient_set.discard(value)


def _unindex(value: str, *, transient: bool) -> None:
    if transient:
        _transient_set.discard(value)
    for form in _forms(value):
        head = form[:HEAD]
        forms = _by_head.get(head)
        if forms is None or form not in forms:
            continue
        forms[form] -= 1
        if forms[form] <= 0:
            del forms[form]
        if not forms:
            del _by_head[head]
            _heads_changed()


def _heads_changed() -> None:
    global _index
    _index = None


def forget_all() -> None:
    """Drop every registered value (for tests that need a clean registry)."""
    global _any
    with _lock:
        _kept.clear()
        _transient.clear()
        _transient_set.clear()
        _by_head.clear()
        _heads_changed()
        _any = False


def _forms(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return {form for form in forms if len(form) >= MIN_LENGTH}


def _current() -> _Index | None:
    global _index
    index = _index
    if index is not None:
        return index
    with _lock:
        if _index is not None:
            return _index
        if not _by_head:
            return None
        heads = sorted(_by_head, key=len, reverse=True)
        _index = _Index(
            heads=re.compile("|".join(re.escape(head) for head in heads)),
            byte_heads=tuple(head.encode() for head in heads),
        )
        return _index


def _longest_run(text: str, start: int, head: str) -> int:
    """How many characters of ``text`` from ``start`` match the start of a form of ``head``."""
    with _lock:
        forms = list(_by_head.get(head, ()))
    best = len(head)
    for form in forms:
        end = min(len(text), start + len(form))
        n = 0
        while start + n < end and text[start + n] == form[n]:
            n += 1
        best = max(best, n)
    return best


def redact(text: str) -> str:
    """``text`` with every registered secret (or a long enough start of one) as ``***``."""
    if not _any or not text:
        return text
    index = _current()
    if index is None:
        return text
    match = index.heads.search(text)
    if match is None:
        return text
    parts: list[str] = []
    pos = 0
    while match is not None:
        start = match.start()
        parts.append(text[pos:start])
        parts.append(MASK)
        pos = start + _longest_run(text, start, match.group())
        match = index.heads.search(text, pos)
    parts.append(text[pos:])
    return "".join(parts)


def redact_bytes(data: bytes) -> bytes:
    """``data`` (a response body) with every registered secret as ``***``.

    Bytes that are not UTF-8 pass through unchanged. The common case, no secret anywhere,
    costs one substring search per distinct start of a secret (about 0.6 ms per MB each).
    """
    if not _any or not data:
        return data
    index = _current()
    if index is None or not any(head in data for head in index.byte_heads):
        return data
    text = data.decode("utf-8", "surrogateescape")
    return redact(text).encode("utf-8", "surrogateescape")


def active() -> bool:
    """Whether any value is registered."""
    return _any

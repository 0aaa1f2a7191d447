"""The query parameters of ``GET /api/v1/logs``: validation, defaults and page links.

``filter`` is parsed and evaluated by the product's own implementation
(:mod:`ingest.filters.scim` and :func:`ingest.filters.okta_filter.matches_filter`), so the
simulated org and oktaduck's stored-event search agree on every rule, case-sensitive string
comparisons included, and a filter Okta refuses gets the same error code here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from ingest.base.errors import FilterSyntaxError
from ingest.filters.okta_filter import matches_filter
from ingest.filters.scim import Node, parse_filter

Predicate = Callable[[Mapping[str, Any]], bool]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
_AFTER = re.compile(r"(\d{1,15})_(\d{1,15})")
_LIMIT = re.compile(r"\d{1,7}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_rfc3339(text: str) -> datetime | None:
    """Parse an RFC 3339 date-time (``T`` separator, zone required); None when invalid."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, UTC
        )
    except ValueError:
        return None
    if zone in ("Z", "z"):
        return moment
    sign = 1 if zone[0] == "+" else -1
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    if offset >= timedelta(hours=24):
        return None
    return moment - sign * offset


def epoch_ms(dt: datetime) -> int:
    """Milliseconds since the Unix epoch (floored)."""
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class QueryError(Exception):
    """A 400: Okta's error code, summary and one cause."""

    def __init__(self, code: str, summary: str, cause: str | None = None) -> None:
        super().__init__(summary)
        self.code = code
        self.summary = summary
        self.cause = cause


def _invalid(param: str, cause: str) -> QueryError:
    return QueryError("E0000001", f"Api validation failed: {param}", f"{param}: {cause}")


@dataclass(frozen=True)
class LogQuery:
    """A validated request. ``polling`` is True for a request without ``until``, ascending."""

    since: datetime
    until: datetime | None
    after: tuple[int, int] | None
    limit: int
    descending: bool
    keywords: tuple[str, ...]
    predicate: Predicate | None

    @property
    def polling(self) -> bool:
        return self.until is None and not self.descending


@dataclass(frozen=True)
class Limits:
    """The bounds a query is validated against."""

    default_limit: int = 100
    max_limit: int = 1000
    default_lookback: timedelta = timedelta(days=7)
    max_since_age: timedelta = timedelta(days=180)


def parse_query(params: Mapping[str, str], now: datetime, limits: Limits) -> LogQuery:
    """Validate ``params`` the way Okta does; raise ``QueryError`` for a 400."""
    until = None
    if "until" in params:
        until = parse_rfc3339(params["until"])
        if until is None:
            raise _invalid("until", "The date format is invalid; use RFC 3339.")
    if "since" in params:
        since = parse_rfc3339(params["since"])
        if since is None:
            raise _invalid("since", "The date format is invalid; use RFC 3339.")
        if since < now - limits.max_since_age:
            summary = "The since parameter is over 180 days prior to the current day"
            raise QueryError("E0000053", summary, summary)
    else:
        since = (until or now) - limits.default_lookback
    limit = limits.default_limit
    if "limit" in params:
        text = params["limit"]
        if not _LIMIT.fullmatch(text) or int(text) > limits.max_limit:
            raise _invalid("limit", f"limit must be an integer between 0 and {limits.max_limit}.")
        limit = int(text)
    order = params.get("sortOrder", "ASCENDING")
    if order not in ("ASCENDING", "DESCENDING"):
        raise _invalid("sortOrder", "sortOrder must be ASCENDING or DESCENDING.")
    after = None
    if "after" in params:
        match = _AFTER.fullmatch(params["after"])
        if match is None:
            raise _invalid("after", "The after cursor is not valid.")
        after = (int(match.group(1)), int(match.group(2)))
    keywords = tuple(params.get("q", "").split())
    if len(keywords) > 10:
        raise _invalid("q", "At most 10 keywords are allowed.")
    if any(len(k) > 40 for k in keywords):
        raise _invalid("q", "A keyword can be at most 40 characters long.")
    predicate = None
    if "filter" in params:
        try:
            predicate = _predicate(parse_filter(params["filter"]))
        except FilterSyntaxError as err:
            raise QueryError(err.code, "Invalid search criteria.", f"filter: {err}") from None
    return LogQuery(
        since,
        until,
        after,
        limit,
        order == "DESCENDING",
        tuple(k.lower() for k in keywords),
        predicate,
    )


def _predicate(node: Node) -> Predicate:
    return lambda event: matches_filter(event, node)


def with_after(url: str, after: str) -> str:
    """``url`` with its ``after`` parameter set to ``after`` (replaced in place or appended).

    Every other parameter keeps its exact original spelling and position.
    """
    base, _, query = url.partition("?")
    pieces = query.split("&") if query else []
    out: list[str] = []
    placed = False
    for piece in pieces:
        if unquote_plus(piece.split("=", 1)[0]) == "after":
            if not placed:
                out.append(f"after={after}")
                placed = True
            continue
        out.append(piece)
    if not placed:
        out.append(f"after={after}")
    return base + "?" + "&".join(out)

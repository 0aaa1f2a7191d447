"""A simulated Okta org: stored events and a faithful ``GET /api/v1/logs``.

Each stored event has a hidden persistence time (``persisted_at >= published``) and a global
sequence number. Polling requests (no ``until``, ascending) read in ``(persisted_at, seq)``
order and always return a ``next`` link (equal to ``self`` on an empty page); bounded requests
read by ``published`` and drop ``next`` on the last page. Events persisted after ``now()`` are
not visible yet, so late events appear as the injected clock advances.
"""

from __future__ import annotations

import bisect
import heapq
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import orjson

from ingest.simulate import responses as r
from ingest.simulate.generator import EventGenerator
from ingest.simulate.oauth import AuthorizationServer, OAuthSettings
from ingest.simulate.population import token
from ingest.simulate.query import (
    Limits,
    LogQuery,
    QueryError,
    epoch_ms,
    parse_query,
    parse_rfc3339,
    with_after,
)
from ingest.simulate.responses import SimResponse

DEMO_TOKEN = "sim-demo-token"  # noqa: S105
# What each fault looks like to a client:
#   500           HTTP 500, Okta envelope E0000009
#   503           HTTP 503, text/html page, no Okta headers
#   truncated     HTTP 200 declaring the full Content-Length, half the body, then the connection
#                 closes (httpx raises RemoteProtocolError)
#   invalid_json  HTTP 200, application/json, a body that is not JSON
#   slow          the normal answer after sleeping OrgConfig.slow_seconds (real time)
#   reset         TCP reset without any response (httpx raises ReadError/RemoteProtocolError)
#   429           HTTP 429 E0000047, Remaining 0, Reset = now + OrgConfig.fault_reset_seconds
#   concurrency   HTTP 429 E0000047 with X-Rate-Limit-Limit and -Remaining both 0
FAULT_KINDS = ("500", "503", "truncated", "invalid_json", "slow", "reset", "429", "concurrency")
UNLIMITED = 1_000_000
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _system_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OrgConfig:
    """How the simulated org behaves. ``limit=0`` turns the rate limit off."""

    tokens: frozenset[str] = frozenset({DEMO_TOKEN})
    limit: int = 600
    window_seconds: float = 60.0
    concurrency_probability: float = 0.0
    max_limit: int = 1000
    default_limit: int = 100
    retention_days: int = 90
    slow_seconds: float = 2.0
    fault_reset_seconds: int = 5
    seed: int = 0
    domain: str = "example.okta.com"
    now: Callable[[], datetime] = _system_now
    oauth: OAuthSettings = field(default_factory=OAuthSettings)  # service apps (none by default)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", frozenset(self.tokens))
        if self.limit < 0 or self.window_seconds <= 0:
            raise ValueError("rate limit must be >= 0 and window_seconds > 0")
        if not 0.0 <= self.concurrency_probability <= 1.0:
            raise ValueError("concurrency_probability must be within [0, 1]")
        if not 0 <= self.default_limit <= self.max_limit:
            raise ValueError("default_limit must be within [0, max_limit]")


@dataclass(slots=True)
class _Stored:
    seq: int
    persisted_ms: int
    published_ms: int
    uuid: str | None
    raw: bytes
    parsed: dict[str, Any] | None = None
    haystack: str | None = None

    def event(self) -> dict[str, Any]:
        if self.parsed is None:
            self.parsed = orjson.loads(self.raw)
        return self.parsed

    def text(self) -> str:
        """Every scalar value of the event, lower-cased, for ``q`` keyword matching."""
        if self.haystack is None:
            self.haystack = " ".join(_scalars(self.event())).lower()
        return self.haystack


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not None:
        yield str(value)


def _persist_key(item: _Stored) -> tuple[int, int]:
    return (item.persisted_ms, item.seq)


def _publish_key(item: _Stored) -> tuple[int, int]:
    return (item.published_ms, item.seq)


@dataclass
class _Window:
    start: datetime | None = None
    used: int = 0


@dataclass
class _Page:
    items: list[_Stored] = field(default_factory=list)
    more: bool = False


class SimulatedOrg:
    """A thread-safe in-memory Okta org serving ``GET /api/v1/logs``."""

    def __init__(self, config: OrgConfig | None = None) -> None:
        self.config = config or OrgConfig()
        self.generator = EventGenerator(seed=self.config.seed, domain=self.config.domain)
        self._limits = Limits(self.config.default_limit, self.config.max_limit)
        self._lock = threading.Lock()
        self._rng = random.Random(f"org:{self.config.seed}")
        self._by_persisted: list[_Stored] = []
        self._by_published: list[_Stored] = []
        self._seq = 0
        self._faults: deque[str] = deque()
        self._window = _Window()
        self._statuses: Counter[int] = Counter()
        self._served: set[str] = set()
        self._urls: list[str] = []
        self.oauth = AuthorizationServer(self.config.oauth, self.now)

    def now(self) -> datetime:
        """The org's current time, from the injected clock."""
        return self.config.now().astimezone(UTC)

    # -- events -----------------------------------------------------------------------------

    def add(
        self,
        events: Iterable[Mapping[str, Any] | bytes],
        persisted_at: datetime | None = None,
        delay: timedelta | float | None = None,
    ) -> int:
        """Store events; return how many. An event given as bytes (one JSON object) is
        served as exactly those bytes (key order, numbers, escapes, whitespace).

        Persistence time: ``persisted_at`` when given, else ``published + delay`` (a small
        random delay by default), never before ``published``; an event whose ``published``
        cannot be parsed is persisted at ``persisted_at`` or now. Events added this way after a
        poller has passed their persistence time are missed by it, exactly as on Okta: use
        :meth:`add_late` (or published times near now) for events that arrive while polling.
        """
        fixed = timedelta(seconds=delay) if isinstance(delay, int | float) else delay
        with self._lock:
            now = self.now()
            fresh: list[_Stored] = []
            for given in events:
                raw = given if isinstance(given, bytes) else orjson.dumps(given)
                event = orjson.loads(given) if isinstance(given, bytes) else given
                text = event.get("published")
                published = parse_rfc3339(text) if isinstance(text, str) else None
                if persisted_at is not None:
                    persisted = persisted_at
                elif published is None:
                    persisted = now
                else:
                    persisted = published + (fixed if fixed is not None else self._delay())
                persisted_ms = epoch_ms(persisted)
                published_ms = epoch_ms(published) if published is not None else persisted_ms
                persisted_ms = max(persisted_ms, published_ms)
                ident = event.get("uuid")
                self._seq += 1
                fresh.append(
                    _Stored(
                        self._seq,
                        persisted_ms,
                        published_ms,
                        ident if isinstance(ident, str) else None,
                        raw,
                    )
                )
            _merge(self._by_persisted, fresh, _persist_key)
            _merge(self._by_published, fresh, _publish_key)
            return len(fresh)

    def add_late(self, events: Iterable[Mapping[str, Any] | bytes], persisted_at: datetime) -> int:
        """Store events persisted at ``persisted_at``, typically long after their published."""
        return self.add(events, persisted_at=persisted_at)

    def _delay(self) -> timedelta:
        rng = self._rng
        if rng.random() < 0.9:
            return timedelta(milliseconds=rng.randint(5, 800))
        return timedelta(milliseconds=rng.randint(1000, 20000))

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_persisted)

    # -- faults and counters ----------------------------------------------------------------

    def inject(self, kind: str, count: int = 1) -> None:
        """Queue ``count`` faults of ``kind`` (one of ``FAULT_KINDS``) for the next requests."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.extend([kind] * count)

    def pending_faults(self) -> list[str]:
        """Faults not consumed yet, in order."""
        with self._lock:
            return list(self._faults)

    def status_counts(self) -> dict[int, int]:
        """Requests answered so far by HTTP status (0 = connection reset)."""
        with self._lock:
            return dict(self._statuses)

    def request_urls(self) -> list[str]:
        """Every URL requested from ``/api/v1/logs`` so far, in arrival order."""
        with self._lock:
            return list(self._urls)

    def served_uuids(self) -> set[str]:
        """Every uuid returned in a complete 200 page so far."""
        with self._lock:
            return set(self._served)

    def visible_uuids(self) -> set[str]:
        """The uuids a full read would return now (persisted, within retention)."""
        with self._lock:
            now_ms, cutoff = self._bounds(self.now())
            return {
                item.uuid
                for item in self._by_persisted
                if item.uuid is not None
                and item.persisted_ms <= now_ms
                and item.published_ms >= cutoff
            }

    # -- the endpoint -----------------------------------------------------------------------

    def token(
        self, body: bytes | None, content_type: str | None, dpop: str | None, request_url: str
    ) -> SimResponse:
        """Answer ``POST /oauth2/v1/token`` (see ``ingest.simulate.oauth``)."""
        with self._lock:
            request_id = token(self._rng, 27, _ID_CHARS)
        return self.oauth.token(body, content_type, dpop, request_url, request_id)

    def logs(
        self,
        params: Mapping[str, str],
        authorization: str | None,
        request_url: str,
        dpop: str | None = None,
    ) -> SimResponse:
        """Answer ``GET /api/v1/logs`` with query ``params`` as sent to ``request_url``.

        ``authorization`` is ``SSWS <token>``, or an OAuth ``Bearer``/``DPoP`` token with the
        request's ``DPoP`` proof in ``dpop``.
        """
        with self._lock:
            self._urls.append(request_url)
            fault = self._faults.popleft() if self._faults else None
        if fault == "slow":
            time.sleep(self.config.slow_seconds)
        with self._lock:
            now = self.now()
            request_id = token(self._rng, 27, _ID_CHARS)
            response, page = self._faulted(fault, now, request_id, request_url)
            if response is None:
                response, page = self._answer(
                    params, authorization, request_url, now, request_id, dpop
                )
                if fault == "truncated":
                    response = replace(response, cut_at=max(1, len(response.body) // 2))
                    page = []
            self._statuses[0 if response.reset else response.status] += 1
            self._served.update(item.uuid for item in page if item.uuid is not None)
            return response

    def _faulted(
        self, fault: str | None, now: datetime, request_id: str, url: str
    ) -> tuple[SimResponse | None, list[_Stored]]:
        cfg = self.config
        if fault == "reset":
            return SimResponse(0, (), b"", reset=True), []
        if fault == "503":
            headers = (("Date", http_date(now)), ("Content-Type", "text/html; charset=utf-8"))
            return SimResponse(503, headers, r.UNAVAILABLE_HTML), []
        if fault == "500":
            return self._error(500, r.E_INTERNAL, now, request_id, self._peek(now)), []
        if fault == "429":
            reset = int(now.timestamp()) + cfg.fault_reset_seconds
            state = (cfg.limit or UNLIMITED, 0, reset)
            return self._error(429, r.E_RATE_LIMIT, now, request_id, state), []
        if fault == "concurrency":
            return self._error(429, r.E_RATE_LIMIT, now, request_id, self._concurrency(now)), []
        if fault == "invalid_json":
            links: tuple[tuple[str, str], ...] = ((url, "self"), (url, "next"))
            lines = self._headers(now, request_id, self._peek(now), links)
            return SimResponse(200, lines, r.NOT_JSON), []
        return None, []

    def _answer(
        self,
        params: Mapping[str, str],
        authorization: str | None,
        url: str,
        now: datetime,
        request_id: str,
        dpop: str | None = None,
    ) -> tuple[SimResponse, list[_Stored]]:
        cfg = self.config
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme in ("Bearer", "DPoP"):
            denial = self.oauth.check(authorization or "", dpop, "GET", url)
            if denial is not None:
                state = self._peek(now)
                refused = self._error(
                    denial.status, denial.code, now, request_id, state, denial.summary
                )
                return replace(refused, headers=refused.headers + denial.headers), []
        elif scheme != "SSWS" or secret.strip() not in cfg.tokens:
            return self._error(401, r.E_TOKEN, now, request_id, self._peek(now)), []
        if cfg.concurrency_probability and self._rng.random() < cfg.concurrency_probability:
            return self._error(429, r.E_RATE_LIMIT, now, request_id, self._concurrency(now)), []
        allowed, state = self._consume(now)
        if not allowed:
            return self._error(429, r.E_RATE_LIMIT, now, request_id, state), []
        try:
            query = parse_query(params, now, self._limits)
        except QueryError as err:
            causes = [err.cause] if err.cause else []
            return self._error(400, err.code, now, request_id, state, err.summary, causes), []
        if query.polling:
            page = self._poll(query, now)
            last = page.items[-1] if page.items else None
            next_url = with_after(url, f"{last.persisted_ms}_{last.seq}") if last else url
            links: tuple[tuple[str, str], ...] = ((url, "self"), (next_url, "next"))
        else:
            page = self._bounded(query, now)
            links = ((url, "self"),)
            if page.more:
                last = page.items[-1]
                links += ((with_after(url, f"{last.published_ms}_{last.seq}"), "next"),)
        body = b"[" + b",".join(item.raw for item in page.items) + b"]"
        return SimResponse(200, self._headers(now, request_id, state, links), body), page.items

    # -- reading ----------------------------------------------------------------------------

    def _bounds(self, now: datetime) -> tuple[int, int]:
        """(now in ms, oldest published ms still within retention)."""
        cutoff = now - timedelta(days=self.config.retention_days)
        return epoch_ms(now), epoch_ms(cutoff)

    def _matches(self, item: _Stored, query: LogQuery) -> bool:
        if query.keywords:
            text = item.text()
            if not all(k in text for k in query.keywords):
                return False
        return query.predicate is None or query.predicate(item.event())

    def _poll(self, query: LogQuery, now: datetime) -> _Page:
        now_ms, cutoff = self._bounds(now)
        items = self._by_persisted
        start = bisect.bisect_left(items, (epoch_ms(query.since), -1), key=_persist_key)
        if query.after is not None:
            start = max(start, bisect.bisect_right(items, query.after, key=_persist_key))
        page = _Page()
        for index in range(start, len(items)):
            if len(page.items) >= query.limit:
                break
            item = items[index]
            if item.persisted_ms > now_ms:
                break
            if item.published_ms >= cutoff and self._matches(item, query):
                page.items.append(item)
        return page

    def _bounded(self, query: LogQuery, now: datetime) -> _Page:
        now_ms, cutoff = self._bounds(now)
        items = self._by_published
        since_ms = max(epoch_ms(query.since), cutoff)
        until_ms = epoch_ms(query.until or now)
        if query.descending:
            stop = bisect.bisect_left(items, (until_ms, -1), key=_publish_key)
            if query.after is not None:
                stop = min(stop, bisect.bisect_left(items, query.after, key=_publish_key))
            order: Iterable[int] = range(stop - 1, -1, -1)
        else:
            begin = bisect.bisect_left(items, (since_ms, -1), key=_publish_key)
            if query.after is not None:
                begin = max(begin, bisect.bisect_right(items, query.after, key=_publish_key))
            order = range(begin, len(items))
        page = _Page()
        for index in order:
            item = items[index]
            if not since_ms <= item.published_ms < until_ms:
                break
            if item.persisted_ms > now_ms or not self._matches(item, query):
                continue
            if len(page.items) == query.limit:
                page.more = True
                break
            page.items.append(item)
        return page

    # -- rate limits and headers ------------------------------------------------------------

    def _consume(self, now: datetime) -> tuple[bool, tuple[int, int, int]]:
        """Spend one request of the fixed window (which starts at its first request)."""
        cfg = self.config
        window = timedelta(seconds=cfg.window_seconds)
        if cfg.limit == 0:
            return True, (UNLIMITED, UNLIMITED, int((now + window).timestamp()))
        start = self._window.start
        if start is None or now >= start + window:
            start = now
            self._window = _Window(start=start)
        reset = int((start + window).timestamp())
        if self._window.used >= cfg.limit:
            return False, (cfg.limit, 0, reset)
        self._window.used += 1
        return True, (cfg.limit, cfg.limit - self._window.used, reset)

    def _peek(self, now: datetime) -> tuple[int, int, int]:
        """The window as it stands, without spending a request."""
        cfg = self.config
        window = timedelta(seconds=cfg.window_seconds)
        start = self._window.start
        if cfg.limit == 0:
            return (UNLIMITED, UNLIMITED, int((now + window).timestamp()))
        if start is None or now >= start + window:
            return (cfg.limit, cfg.limit, int((now + window).timestamp()))
        return (cfg.limit, max(0, cfg.limit - self._window.used), int((start + window).timestamp()))

    def _concurrency(self, now: datetime) -> tuple[int, int, int]:
        return (0, 0, int(now.timestamp()) + 1)

    def _headers(
        self,
        now: datetime,
        request_id: str,
        state: tuple[int, int, int],
        links: tuple[tuple[str, str], ...] = (),
    ) -> tuple[tuple[str, str], ...]:
        limit, remaining, reset = state
        headers = [
            ("Date", http_date(now)),
            ("Content-Type", r.JSON),
            ("X-Okta-Request-Id", request_id),
            ("X-Rate-Limit-Limit", str(limit)),
            ("X-Rate-Limit-Remaining", str(remaining)),
            ("X-Rate-Limit-Reset", str(reset)),
        ]
        headers += [("link", f'<{url}>; rel="{rel}"') for url, rel in links]
        return tuple(headers)

    def _error(
        self,
        status: int,
        code: str,
        now: datetime,
        request_id: str,
        state: tuple[int, int, int],
        summary: str | None = None,
        causes: list[str] | None = None,
    ) -> SimResponse:
        error_id = "oae" + token(self._rng, 22, _ID_CHARS)
        body = r.envelope(code, error_id, summary, causes)
        return SimResponse(status, self._headers(now, request_id, state), body)


def _merge(
    items: list[_Stored], fresh: list[_Stored], key: Callable[[_Stored], tuple[int, int]]
) -> None:
    """Insert ``fresh`` into ``items`` (sorted by ``key``), touching only the affected tail."""
    if not fresh:
        return
    fresh = sorted(fresh, key=key)
    start = bisect.bisect_right(items, key(fresh[0]), key=key)
    items[start:] = heapq.merge(items[start:], fresh, key=key)


def http_date(now: datetime) -> str:
    """An HTTP ``Date`` value for ``now``."""
    return format_datetime(now.astimezone(UTC), usegmt=True)

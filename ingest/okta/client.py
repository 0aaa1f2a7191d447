"""Fetch pages of ``/api/v1/logs``: auth, pacing, retries and error translation.

This is the boundary where httpx exceptions and Okta error envelopes become oktaduck
exceptions. The ``httpx.Client`` comes from outside, so tests point it at the simulator.
"""

from __future__ import annotations

import logging
import random
import threading
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

import httpx
import orjson

from ingest.base.backoff import Backoff
from ingest.base.clock import Clock
from ingest.base.errors import (
    AuthFailed,
    BadRequest,
    BadResponse,
    RateLimited,
    SourceError,
)
from ingest.base.logs import emit
from ingest.base.redact import redact_bytes
from ingest.okta.body import BadBody, json_array
from ingest.okta.ratelimit import RateLimit
from ingest.okta.transport import (
    WBITS,
    CorruptBody,
    Oversize,
    RequestAbandoned,
    deadline,
    inflate_capped,
    too_large_message,
)
from ingest.okta.urls import OrgURL

USER_AGENT = "oktaduck/0.1 (+System Log collector)"
# 1000 events of 50 KB each, with room to spare; a source's max_response_bytes overrides it
MAX_RESPONSE_BYTES = 128 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024  # what is read of an answer that is not a page (the rest is dropped)


class Stopped(Exception):
    """A shutdown was requested while waiting; the page in flight was not fetched."""


@dataclass(frozen=True)
class ClientPolicy:
    """How the client paces and retries. Seconds throughout."""

    reserve_share: float = 0.2  # share of each rate-limit window left to the org's other clients
    reset_buffer: float = 1.0  # added to X-Rate-Limit-Reset, which Okta rounds down
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    retry_for: float = 300.0  # give up on transient failures after retrying this long
    concurrency_backoff: float = 2.0  # base wait after a concurrency-limit 429
    max_rate_wait: float = 900.0  # give up when rate-limit waits for one page add up to this
    # bytes of one answer, both as received (compressed) and once decompressed
    max_response_bytes: int = MAX_RESPONSE_BYTES


@dataclass
class ClientStats:
    """Counters for status and metrics (mutated by one client, read by anyone)."""

    requests: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    paced_seconds: float = 0.0
    rate_limit_seconds: float = 0.0  # waited after 429 answers
    last_rate: RateLimit | None = None
    limit: int | None = None  # the bucket size and what was left, as of the last response
    remaining: int | None = None


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One answered request: what its body decoded to, its links and when it came.

    ``decoded`` is what the ``decode`` given to :meth:`OktaClient.fetch` made of the body: by
    default the list of events; for the poller, a pending page whose mapping is under way.
    """

    url: str
    decoded: T
    self_url: str | None
    next_url: str | None
    request_id: str | None
    received_at: datetime
    body_bytes: int


class LinkTrail:
    """The ``next`` links followed in one cycle, to refuse one that leads back.

    Okta's links only move forward; the one repeat it makes is a caught-up page whose
    ``next`` is its own URL, which the caller tells apart before asking. Any other link seen
    earlier in the cycle (A -> B -> A) would be followed for ever, so it fails with
    ``BadResponse``. Memory stays small however long the cycle: the last ``RECENT`` links
    are remembered exactly (a short loop is refused at its first repeat), and a longer loop
    is caught by Brent's method, a link kept at pages 1, 2, 4, 8, ... and compared with each
    link after it, within a few times the loop's length.
    """

    RECENT = 1024

    def __init__(self, first: str) -> None:
        self._recent: deque[str] = deque([first])
        self._seen: set[str] = {first}
        self._mark = first
        self._steps = 0
        self._power = 1
        self.pages = 0

    def follow(self, url: str) -> None:
        """Note that ``url`` is requested next; ``BadResponse`` when it was requested before."""
        self.pages += 1
        if url in self._seen or url == self._mark:
            raise BadResponse(
                f"Okta's next link repeats an earlier page of this cycle (after {self.pages} "
                "pages); stopped, the cursor stays at the last good page"
            )
        self._recent.append(url)
        self._seen.add(url)
        if len(self._recent) > self.RECENT:
            self._seen.discard(self._recent.popleft())
        self._steps += 1
        if self._steps == self._power:
            self._mark, self._steps, self._power = url, 0, self._power * 2


class _Transient(Exception):
    def __init__(self, reason: str, request_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


class OktaClient:
    """Gets one page at a time from one org, waiting and retrying as Okta asks."""

    def __init__(
        self,
        org: OrgURL,
        http: httpx.Client,
        clock: Clock,
        policy: ClientPolicy | None = None,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
        timeout: float | None = None,
    ) -> None:
        self.org = org
        self.http = http
        self.clock = clock
        self.policy = policy or ClientPolicy()
        self.stop = stop
        # the whole request, body included; effective when ``http`` runs on a
        # ``deadline_transport`` (ingest.okta.transport), which ``open_client`` builds
        self.timeout = timeout
        self.rng = rng or random.Random()
        self.backoff = Backoff(self.policy.backoff_initial, self.policy.backoff_max, rng=self.rng)
        self.stats = ClientStats()

    @overload
    def fetch(self, url: str) -> Page[list[Any]]: ...

    @overload
    def fetch(self, url: str, decode: Callable[[bytes], T]) -> Page[T]: ...

    def fetch(self, url: str, decode: Callable[[bytes], Any] = json_array) -> Page[Any]:
        """GET ``url`` until it yields a page or a non-retryable error.

        ``decode`` turns the body into the page's ``decoded``; a ``BadBody`` it raises is
        retried like a 5xx (by default the body is parsed as a JSON array).
        """
        self.org.check_link(url)
        policy = self.policy
        started = self.clock.now()
        attempt = 0
        rate_waited = 0.0
        while True:
            self._pace()
            try:
                return self._request(url, decode)
            except _Transient as err:
                attempt += 1
                elapsed = (self.clock.now() - started).total_seconds() - rate_waited
                if elapsed >= policy.retry_for:
                    raise BadResponse(
                        f"giving up after {attempt} attempts over {elapsed:.0f}s: {err.reason}",
                        request_id=err.request_id,
                    ) from None
                delay = self.backoff.delay(attempt)
                self.stats.retries += 1
                emit(
                    "okta.retry",
                    logging.WARNING,
                    url=url,
                    attempt=attempt,
                    reason=err.reason,
                    wait_s=round(delay, 3),
                    request_id=err.request_id,
                )
                self._wait(delay)
            except _RateLimitedWait as wait:
                rate_waited += wait.seconds
                self.stats.rate_limit_seconds += wait.seconds
                if rate_waited > policy.max_rate_wait:
                    raise RateLimited(
                        f"still rate limited after waiting {rate_waited:.0f}s",
                        status=429,
                        error_code="E0000047",
                        request_id=wait.request_id,
                    ) from None
                self._wait(wait.seconds)

    def _pace(self) -> None:
        """Hold back when the last response left only the reserved share of the window."""
        last = self.stats.last_rate
        if last is None or not last.exhausted(self.policy.reserve_share):
            return
        now = self.clock.now()
        seconds = last.seconds_until_reset(now, self.policy.reset_buffer)
        if seconds > 0:
            emit("okta.paced", remaining=last.remaining, limit=last.limit, wait_s=round(seconds, 3))
            self.stats.paced_seconds += seconds
            self._wait(seconds)
        self.stats.last_rate = None

    def _wait(self, seconds: float) -> None:
        if self.clock.wait(seconds, self.stop):
            raise Stopped

    def _request(self, url: str, decode: Callable[[bytes], Any]) -> Page[Any]:
        if self.stop is not None and self.stop.is_set():
            raise Stopped
        limit = self.policy.max_response_bytes
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
        }
        with deadline(self.timeout, self.stop) as clock:
            try:
                with self.http.stream("GET", url, headers=headers) as response:
                    # A page's body goes into bytes of its own rather than into the response:
                    # an httpx response sits in a reference cycle, so a body it held would
                    # stay in memory until the next full garbage collection, megabytes per
                    # page. Either way it is read in bounded steps, never whole.
                    ok = response.status_code == 200
                    request_id = response.headers.get("x-okta-request-id")
                    body = _read_body(response, limit, ok, request_id)
            except RequestAbandoned:
                raise Stopped from None
            except CorruptBody as err:
                raise _Transient(str(err)) from None
            except httpx.TimeoutException as err:
                if clock.expired:
                    raise _Transient(f"no complete answer within {self.timeout:g}s") from None
                raise _Transient(f"timed out ({type(err).__name__})") from None
            except httpx.TransportError as err:
                raise _Transient(f"connection failed ({type(err).__name__}: {err})") from None
        now = self.clock.now()
        rate = RateLimit.from_response(response, now)
        self.stats.requests[response.status_code] += 1
        self.stats.last_rate = rate
        if rate is not None and not rate.is_concurrency:
            self.stats.limit, self.stats.remaining = rate.limit, rate.remaining
        status = response.status_code
        if status == 200:
            return self._page(url, body, decode, response, now, request_id)
        if status == 429:
            self.stats.rate_limited += 1
            raise _RateLimitedWait(self._rate_limit_wait(rate, now), request_id)
        envelope = _envelope(body)
        if status >= 500 or status == 408:
            code = envelope.get("errorCode") or ""
            raise _Transient(f"HTTP {status} {code}".strip(), request_id)
        raise _fatal(status, envelope, response, request_id)

    def _rate_limit_wait(self, rate: RateLimit | None, now: datetime) -> float:
        policy = self.policy
        if rate is None or rate.is_concurrency:
            base = policy.concurrency_backoff
            seconds = self.rng.uniform(base / 2, base * 1.5)
            emit("okta.concurrency_limited", logging.WARNING, wait_s=round(seconds, 3))
        else:
            seconds = rate.seconds_until_reset(now, policy.reset_buffer)
            emit("okta.rate_limited", logging.WARNING, limit=rate.limit, wait_s=round(seconds, 3))
        self.stats.last_rate = None
        return seconds

    def _page(
        self,
        url: str,
        body: bytes,
        decode: Callable[[bytes], Any],
        response: httpx.Response,
        now: datetime,
        request_id: str | None,
    ) -> Page[Any]:
        body = redact_bytes(body)  # a secret echoed inside events is never stored
        try:
            decoded = decode(body)
        except BadBody as err:
            raise _Transient(str(err), request_id) from None
        links = response.links
        return Page(
            url=url,
            decoded=decoded,
            self_url=links.get("self", {}).get("url"),
            next_url=links.get("next", {}).get("url"),
            request_id=request_id,
            received_at=now,
            body_bytes=len(body),
        )


class _RateLimitedWait(Exception):
    def __init__(self, seconds: float, request_id: str | None) -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.request_id = request_id


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _read_body(response: httpx.Response, limit: int, page: bool, request_id: str | None) -> bytes:
    """The body, decompressed, in bounded steps: a page larger than ``limit`` (as received
    or decompressed) fails with ``BadResponse``; any other answer is cut at
    ``MAX_ERROR_BODY`` bytes (only its error envelope is of use).

    Decompression is done here rather than by httpx, whose decoder inflates each received
    chunk whole: 64 KiB of a gzip bomb would become 64 MiB in one step. (On the transport
    ``open_client`` builds, ``BoundedTransport`` has decompressed and capped the body
    already; this is the same guard for a client given any other ``httpx.Client``.)
    """
    if not page:
        limit = MAX_ERROR_BODY
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    wbits = WBITS.get(encoding)
    if wbits is None:
        raise BadResponse(
            f"Okta answered in the content encoding {encoding[:40]!r}, which was not asked for",
            status=response.status_code,
            request_id=request_id,
        )

    def too_large(what: str) -> BadResponse:
        return BadResponse(
            too_large_message(limit, what), status=response.status_code, request_id=request_id
        )

    if response.is_stream_consumed:  # an error the OAuth flow has read already
        try:
            done = response.content
        except httpx.ResponseNotRead:
            done = b""
        if page and len(done) > limit:
            raise too_large("decompressed")
        return done[:limit]
    declared = response.headers.get("content-length", "")
    if page and declared.isdigit() and int(declared) > limit:
        raise too_large("as sent")
    chunks: list[bytes] = []
    try:
        for out in inflate_capped(response.iter_raw(), wbits, limit):
            chunks.append(out)
    except Oversize as over:
        if page:
            raise too_large(over.what) from None
    except zlib.error:
        if page:
            raise _Transient(f"HTTP 200 with a body that is not valid {encoding}") from None
    return b"".join(chunks)


def _fatal(
    status: int, envelope: dict[str, Any], response: httpx.Response, request_id: str | None
) -> SourceError:
    code = envelope.get("errorCode")
    summary = envelope.get("errorSummary")
    causes = [
        c.get("errorSummary") for c in envelope.get("errorCauses") or [] if isinstance(c, dict)
    ]
    if causes and summary:
        summary = f"{summary} [{'; '.join(str(c) for c in causes if c)}]"
    kwargs: dict[str, Any] = {
        "status": status,
        "error_code": str(code) if code else None,
        "error_summary": str(summary) if summary else None,
        "request_id": request_id,
    }
    if status == 401:
        return AuthFailed("Okta rejected the credentials; check the API token", **kwargs)
    if status == 403:
        challenge = response.headers.get("www-authenticate")
        message = "Okta refused access to the System Log"
        if challenge:
            message += f" (WWW-Authenticate: {challenge})"
        return AuthFailed(message, **kwargs)
    if status == 400:
        return BadRequest("Okta rejected the query", **kwargs)
    if status == 404:
        return SourceError("no System Log API at this URL; is it an Okta org?", **kwargs)
    return SourceError("unexpected answer from Okta", **kwargs)

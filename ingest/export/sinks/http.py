"""Batches POSTed over HTTP: a generic NDJSON webhook or a Splunk HTTP Event Collector.

Presets (``preset``):

- ``ndjson``: the body is the NDJSON lines (``Content-Type: application/x-ndjson``); with a
  token, ``Authorization: Bearer <token>``.
- ``splunk-hec-raw``: ``POST /services/collector/raw``, the body is the NDJSON lines, one event
  per line; ``Authorization: Splunk <token>``; sourcetype, source, host and index go in the
  query string; ``channel`` (a GUID) is sent as ``X-Splunk-Request-Channel``, which Splunk
  requires when the token has indexer acknowledgement on.
- ``splunk-hec-event``: ``POST /services/collector/event``, the body is one JSON object per
  line, concatenated: ``{"event": <the line>, "time": <epoch seconds>, "host": ..., "source":
  ..., "sourcetype": "okta:im2", "index": ...}``. ``time`` comes from the event's
  ``published``, ``@timestamp`` or ``time`` field and is left out when there is none (Splunk
  then uses the time it receives the event). The line itself is embedded byte for byte.

  Splunk's format: https://docs.splunk.com/Documentation/Splunk/latest/Data/FormateventsforHTTPEventCollector

For the Splunk presets a URL without a path gets the preset's path appended.

Accepted means a 2xx answer (for Splunk, also a JSON ``code`` of 0 when the answer has one).
408, 429, 5xx, timeouts and connection failures raise ``SinkUnavailable`` with the
``Retry-After`` the server sent (seconds or an HTTP date); redirects, other 4xx and a server
certificate that does not verify raise ``SinkRejected`` with the status and the start of the
answer. Redirects are not followed: they
would carry the token to wherever they point.

A batch whose body exceeds ``max_batch_bytes`` (before gzip) goes out in several requests; if
a later one fails, the earlier ones were accepted and the caller's resend repeats them.

Plain ``http://`` is allowed only to loopback addresses unless ``allow_insecure`` is set: the
token and the events would cross the network in clear text.

Proxies: the sink ignores the proxy environment variables (``HTTP_PROXY``, ``HTTPS_PROXY``,
``ALL_PROXY``, ``NO_PROXY``) and uses only the ``proxy`` it is configured with. Through a proxy
the target must be ``https://`` (the proxy then only relays an encrypted tunnel); an
``http://`` target with a proxy is refused, since the proxy would read the token and every
event.

When an ``httpx.Client`` is passed in, its own TLS settings apply; ``verify`` only configures
the client the sink creates. The connection pool drops kept-alive connections the server has
closed before reusing them, so an idle-closed connection costs no failed batch.
"""

from __future__ import annotations

import math
import socket
import ssl
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import unquote

import httpcore
import httpx
import orjson

from ingest.base.clock import Clock, SystemClock
from ingest.base.errors import ConfigError, SinkRejected, SinkUnavailable
from ingest.base.redact import redact, register
from ingest.base.secrets import Secret
from ingest.export.sinks.base import gzip_member, newline_in_line
from ingest.export.sinks.fields import event_time
from ingest.okta.transport import DeadlineBackend, deadline
from ingest.okta.urls import is_loopback

Preset = Literal["ndjson", "splunk-hec-raw", "splunk-hec-event"]
PRESETS: tuple[str, ...] = get_args(Preset)
MiB = 1024 * 1024
_EXCERPT = 200
MAX_ANSWER = 64 << 10  # an answer's body only feeds error messages: read no more
MAX_TIMEOUT = 3600


@dataclass(frozen=True)
class _PresetInfo:
    path: str | None
    content_type: str
    scheme: str
    splunk: bool


_PRESET_INFO = {
    "ndjson": _PresetInfo(None, "application/x-ndjson", "Bearer", splunk=False),
    "splunk-hec-raw": _PresetInfo(
        "/services/collector/raw", "text/plain; charset=utf-8", "Splunk", splunk=True
    ),
    "splunk-hec-event": _PresetInfo(
        "/services/collector/event", "application/json", "Splunk", splunk=True
    ),
}


@dataclass(frozen=True)
class HttpSinkConfig:
    url: str
    preset: Preset = "ndjson"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    token: Secret | None = None
    token_header: str = "Authorization"  # noqa: S105 - a header name, not a secret
    token_scheme: str | None = None  # None: the preset's (Bearer, Splunk); "": the bare token
    timeout: float = 30.0
    verify: bool | Path = True  # a Path: trust that CA file (same as ca_file)
    ca_file: Path | None = None  # trust this CA file instead of the system's CAs
    max_batch_bytes: int = MiB
    gzip: bool = False
    allow_insecure: bool = False
    sourcetype: str | None = "okta:im2"
    source: str | None = "oktaduck"
    host: str | None = None  # None: this machine's name (Splunk presets)
    index: str | None = None
    channel: str | None = None
    proxy: str | None = field(default=None, repr=False)  # the environment's is never used
    name: str = "http"

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"preset: {self.preset!r}: use one of {', '.join(PRESETS)}")
        try:
            url = httpx.URL(self.url)
        except (httpx.InvalidURL, TypeError) as err:
            raise ConfigError(f"url: not a URL: {err}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError("url: must start with https:// and name a host")
        if url.userinfo:
            raise ConfigError("url: must not contain credentials; use token")
        if url.scheme == "http" and not is_loopback(url.host) and not self.allow_insecure:
            raise ConfigError(
                f"url: refusing plain http:// to {url.host}: the events and the token would travel "
                "in clear text; use https:// or set allow_insecure = true"
            )
        if self.proxy is not None:
            _check_proxy(self.proxy)
            if url.scheme == "http":
                raise ConfigError(
                    f"proxy: refusing plain http:// to {url.host} through a proxy: the proxy "
                    "would read the token and the events; use an https:// url or no proxy"
                )
        if self.ca_file is not None and (isinstance(self.verify, Path) or not self.verify):
            raise ConfigError("ca_file: needs verify = true (not verify = <path>)")
        if not (math.isfinite(self.timeout) and 0 < self.timeout <= MAX_TIMEOUT):
            raise ConfigError(
                f"timeout: must be a number of seconds above 0 and at most {MAX_TIMEOUT}"
            )
        if self.max_batch_bytes <= 0:
            raise ConfigError("max_batch_bytes: must be positive")
        if self.token is not None and any(
            name.lower() == self.token_header.lower() for name in self.headers
        ):
            raise ConfigError(f"headers: {self.token_header} is set by token; not in headers")

    @property
    def endpoint(self) -> httpx.URL:
        url = httpx.URL(self.url)
        path = _PRESET_INFO[self.preset].path
        if path is not None and url.path in ("", "/"):
            url = url.copy_with(path=path)
        return url


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (RFC 9110: delay seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": still GMT for an HTTP date
        when = when.replace(tzinfo=now.tzinfo)
    return max(0.0, (when - now).total_seconds())


class HttpSink:
    """POSTs batches; see the module docstring for presets and the status mapping."""

    def __init__(
        self,
        config: HttpSinkConfig,
        http: httpx.Client | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self._clock = clock or SystemClock()
        self._preset = _PRESET_INFO[config.preset]
        self._url = config.endpoint
        self._shown = str(self._url.copy_with(query=None, fragment=None))
        self._owns_http = http is None
        self._http = http if http is not None else self._client()
        self._headers = self._build_headers()
        self._params = self._build_params()
        self._event_meta = self._build_event_meta()

    def __repr__(self) -> str:
        return f"HttpSink(name={self.name!r}, url={self._shown!r}, preset={self.config.preset!r})"

    # --- the contract -------------------------------------------------------------------------

    def send(self, lines: Sequence[bytes]) -> None:
        for body in self._bodies(lines):
            self._post(body)

    def flush(self) -> None:
        """Nothing is buffered: ``send`` returns after the server accepted."""

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # --- requests -----------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        verify: bool | ssl.SSLContext = self.config.verify is not False
        ca_file = self.config.ca_file
        if isinstance(self.config.verify, Path):
            ca_file = self.config.verify
        if ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as err:
                reason = getattr(err, "strerror", None) or err
                raise ConfigError(f"http sink CA file {ca_file}: {reason}") from None
        transport = httpx.HTTPTransport(verify=verify, proxy=self.config.proxy, trust_env=False)
        pool = transport._pool  # httpx builds the pool without a backend option
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            # every socket operation of a request ends by its deadline (see _post)
            pool._network_backend = DeadlineBackend(backend)
        return httpx.Client(
            transport=transport,
            timeout=self.config.timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy, CA or .netrc taken from the environment
        )

    def _build_headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": self._preset.content_type,
            "User-Agent": "oktaduck",
            "Accept-Encoding": "identity",  # the answer is read raw and capped (see _read)
        }
        headers.update(self.config.headers)
        for name, value in self.config.headers.items():
            if credential_header(name):
                register(value)  # a credential set through headers is never shown either
        if self.config.gzip:
            headers["Content-Encoding"] = "gzip"
        if self.config.channel and self._preset.splunk:
            headers["X-Splunk-Request-Channel"] = self.config.channel
        if self.config.token is not None:
            scheme = self.config.token_scheme
            if scheme is None:
                scheme = self._preset.scheme
            value = self.config.token.reveal()
            headers[self.config.token_header] = f"{scheme} {value}" if scheme else value
        return headers

    def _build_params(self) -> dict[str, str]:
        if self.config.preset != "splunk-hec-raw":
            return {}
        params = {
            "sourcetype": self.config.sourcetype,
            "source": self.config.source,
            "host": self.config.host or socket.gethostname(),
            "index": self.config.index,
        }
        return {key: value for key, value in params.items() if value}

    def _build_event_meta(self) -> bytes:
        """The constant part of a HEC event envelope, as JSON members after a comma."""
        meta = {
            "host": self.config.host or socket.gethostname(),
            "source": self.config.source,
            "sourcetype": self.config.sourcetype,
            "index": self.config.index,
        }
        members = orjson.dumps({key: value for key, value in meta.items() if value})[1:-1]
        return b"," + members if members else b""

    def _bodies(self, lines: Sequence[bytes]) -> Iterator[bytes]:
        """Request bodies of at most ``max_batch_bytes`` each (a single larger item alone)."""
        if self.config.preset == "splunk-hec-event":
            items = [self._envelope(line, i) for i, line in enumerate(lines)]
        else:
            items = []
            for i, line in enumerate(lines):
                if b"\n" in line:
                    raise newline_in_line(i)
                items.append(line + b"\n")
        body: list[bytes] = []
        size = 0
        for item in items:
            if body and size + len(item) > self.config.max_batch_bytes:
                yield b"".join(body)
                body, size = [], 0
            body.append(item)
            size += len(item)
        if body:
            yield b"".join(body)

    def _envelope(self, line: bytes, index: int) -> bytes:
        try:
            event: Any = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise SinkRejected(f"{self.name}: line {index} of the batch is not JSON") from None
        when = event_time(event) if isinstance(event, dict) else None
        time = b',"time":' + orjson.dumps(round(when, 3)) if when is not None else b""
        return b'{"event":' + line + time + self._event_meta + b"}"

    def _post(self, body: bytes) -> None:
        """POST one body; the whole request, answer included, ends by ``timeout``.

        httpx's timeouts are per socket operation (a server dripping a byte a second would
        keep one going for ever): the client the sink builds runs on a deadline backend, and
        between chunks of the answer the deadline is checked here too (for a client passed
        in, that check is all). Only the first ``MAX_ANSWER`` bytes of the answer are read.
        """
        content = gzip_member(body) if self.config.gzip else body
        timeout = self.config.timeout
        ends = time.monotonic() + timeout
        try:
            with (
                deadline(timeout),
                self._http.stream(
                    "POST",
                    self._url,
                    content=content,
                    headers=self._headers,
                    params=self._params or None,
                    timeout=timeout,
                ) as response,
            ):
                answer = self._read(response, ends)
        except (httpx.TimeoutException, _Late) as err:
            raise SinkUnavailable(
                f"{self.name}: {self._shown} did not answer within {timeout:g} s "
                f"({type(err).__name__.lstrip('_')})"
            ) from None
        except httpx.TransportError as err:
            if _untrusted_certificate(err):
                raise SinkRejected(
                    f"{self.name}: the certificate of {self._shown} is not trusted "
                    "(set verify to the CA file that signed it)"
                ) from None
            reason = self._redact(str(err)) or type(err).__name__
            raise SinkUnavailable(
                f"{self.name}: cannot deliver to {self._shown}: {reason}"
            ) from None
        except httpx.HTTPError as err:  # DecodingError and the like: not TransportErrors
            reason = " ".join(self._redact(str(err)).split())[:_EXCERPT] or type(err).__name__
            raise SinkUnavailable(
                f"{self.name}: {self._shown} sent an answer that cannot be read: {reason}"
            ) from None
        self._check(response, answer)

    def _read(self, response: httpx.Response, ends: float) -> bytes:
        """The answer's body: at most ``MAX_ANSWER`` bytes of it as received (the rest is
        left unread), decoded within the same bound when it came compressed anyway."""
        raw = bytearray()
        for chunk in response.iter_raw():
            raw += chunk
            if len(raw) >= MAX_ANSWER:
                del raw[MAX_ANSWER:]
                break
            if time.monotonic() >= ends:
                raise _Late
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return bytes(raw)
        wbits = {"gzip": 16 + 15, "x-gzip": 16 + 15, "deflate": 32 + 15}.get(encoding)
        if wbits is None:
            return b""  # not asked for, and only of use in an error message: left out
        try:
            return zlib.decompressobj(wbits).decompress(bytes(raw), MAX_ANSWER)
        except zlib.error as err:
            message = f"a {encoding} body that does not decompress ({err})"
            raise httpx.DecodingError(message) from None

    def _check(self, response: httpx.Response, answer: bytes) -> None:
        status = response.status_code
        if 200 <= status < 300:
            code, text = self._hec_code(answer)
            if code not in (None, 0):
                raise SinkRejected(
                    f"{self.name}: {self._shown} answered HTTP {status} with HEC code {code}: "
                    f"{text}",
                    status=status,
                    excerpt=self._excerpt(answer),
                )
            return
        excerpt = self._excerpt(answer)
        where = f"{self.name}: {self._shown} answered HTTP {status}"
        if status in (408, 429) or status >= 500:
            retry_after = retry_after_seconds(
                response.headers.get("Retry-After"), self._clock.now()
            )
            raise SinkUnavailable(
                f"{where}: {excerpt}" if excerpt else where, retry_after=retry_after, status=status
            )
        if 300 <= status < 400:
            target = httpx.URL(response.headers.get("Location", "")).host or "?"
            raise SinkRejected(
                f"{where}, a redirect to {target}: not followed; configure the final URL",
                status=status,
            )
        hint = "; lower max_batch_bytes" if status == 413 else ""
        raise SinkRejected(f"{where}{hint}: {excerpt}", status=status, excerpt=excerpt)

    def _hec_code(self, body: bytes) -> tuple[int | None, str]:
        if not self._preset.splunk:
            return None, ""
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None, ""
        if not isinstance(answer, dict) or not isinstance(answer.get("code"), int):
            return None, ""
        return answer["code"], self._redact(str(answer.get("text", "")))[:_EXCERPT]

    def _excerpt(self, body: bytes) -> str:
        text = " ".join(body[: _EXCERPT * 4].decode("utf-8", "replace").split())
        return self._redact(text)[:_EXCERPT]

    def _redact(self, text: str) -> str:
        token = self.config.token
        if token is not None and token.reveal():
            text = text.replace(token.reveal(), "***")  # also a token too short to register
        return redact(text)


class _Late(Exception):
    """The answer's body was still coming in at the request's deadline."""


_CREDENTIAL_WORDS = ("authorization", "cookie", "token", "secret", "key", "password", "auth")


def credential_header(name: str) -> bool:
    """Whether a header of this name carries a credential (``Authorization``, ``X-API-Key``)."""
    lowered = name.lower()
    return any(word in lowered for word in _CREDENTIAL_WORDS)


def _check_proxy(proxy: str) -> None:
    try:
        url = httpx.URL(proxy)
    except (httpx.InvalidURL, TypeError) as err:
        raise ConfigError(f"proxy: not a URL: {err}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("proxy: expected a URL such as http://proxy.example.com:3128")
    if url.password:
        register(unquote(url.password))


def _untrusted_certificate(err: BaseException) -> bool:
    """Whether a transport error comes from TLS certificate verification (permanent)."""
    seen: BaseException | None = err
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

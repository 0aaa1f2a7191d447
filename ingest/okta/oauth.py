"""OAuth 2.0 for an Okta service app: client credentials with ``private_key_jwt``, optional DPoP.

:class:`OAuthAuth` is an ``httpx.Auth``. For each request it reuses the cached access token (or
obtains one from ``{org}/oauth2/v1/token``), sets ``Authorization: Bearer|DPoP <token>`` and,
with DPoP, a fresh proof. It answers the challenges Okta makes on the way:

- token endpoint ``400 use_dpop_nonce`` with a ``DPoP-Nonce`` header: retried once with the nonce;
- API ``401`` with ``WWW-Authenticate: DPoP error="use_dpop_nonce"``: retried once with the nonce;
- API ``401`` with a cached token (expired early, revoked): a new token, retried once.

The token is refreshed ahead of its expiry (5 minutes before, or at 80% of a short lifetime).
Token requests normally travel through the same ``httpx.Client`` as the API requests (same
TLS, proxy and timeouts); when the token endpoint answers 429 or 5xx that answer is handed to
the client as the response, so the client's usual waiting and backoff apply. Failures that
need a person become ``AuthFailed`` with what to fix; no message or repr ever contains the
key, the client assertion or the access token: each assertion, access token and DPoP proof is
registered with :mod:`ingest.base.redact` when it is made, so an error body that echoes one is
shown with ``***`` in its place.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ingest.base.clock import Clock
from ingest.base.errors import AuthFailed, BadResponse, ConfigError, RateLimited, SourceError
from ingest.base.logs import emit
from ingest.base.redact import register
from ingest.base.secrets import Secret
from ingest.okta.client import USER_AGENT
from ingest.okta.dpop import DPoPProver, challenge_error
from ingest.okta.keys import (
    SigningKey,
    ephemeral_dpop_key,
    load_dpop_key,
    load_signing_key,
)
from ingest.okta.oauth_config import LOGS_SCOPE, OAuthConfig
from ingest.okta.urls import OrgURL

TOKEN_PATH = "/oauth2/v1/token"  # noqa: S105 (a path, not a secret)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REFRESH_MARGIN = timedelta(minutes=5)
DEFAULT_TOKEN_SECONDS = 3600
SKEW_WORTH_MENTIONING = timedelta(seconds=60)
_APP = "Okta Admin Console > Applications > Applications > the app"


def client_assertion(
    key: SigningKey, client_id: str, audience: str, now: datetime, lifetime: timedelta
) -> str:
    """The signed JWT that authenticates the app at ``audience`` (the token endpoint)."""
    issued = int(now.timestamp())  # whole seconds, rounded down: never in the future
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": secrets.token_urlsafe(24),
    }
    assertion = key.sign(claims)
    register(assertion, transient=True)  # never shown, even when a server echoes it
    return assertion


@dataclass(frozen=True)
class _Token:
    value: Secret = field(repr=False)
    scheme: str  # "Bearer" or "DPoP"
    scope: str
    expires_at: datetime
    refresh_at: datetime


class OAuthAuth(httpx.Auth):
    """Access tokens for ``/api/v1/logs`` from an Okta service app's private key.

    Keys are read at construction (``ConfigError`` when unusable). Notices about the setup
    (a key file readable by others, no ``key_id``, no ``okta.logs.read`` scope) are logged as
    ``oauth.config_warning`` and kept in ``warnings``. ``http_for_token``, when given, sends
    the token requests instead of the client this auth is attached to.
    """

    # False: the page itself must reach OktaClient unread, which reads it within its size
    # caps; the flow reads the bodies it needs itself (_json_object)
    requires_response_body = False

    def __init__(
        self,
        config: OAuthConfig,
        org_origin: str,
        clock: Clock,
        http_for_token: httpx.Client | None = None,
    ) -> None:
        self.config = config
        self.origin = OrgURL.parse(org_origin).origin
        self.token_url = self.origin + TOKEN_PATH
        self.clock = clock
        self._http = http_for_token
        self.warnings: list[str] = []
        self.key = load_signing_key(
            config.private_key_file, config.key_id, config.algorithm, self.warnings
        )
        self.prover: DPoPProver | None = None
        if config.dpop:
            dpop_key = (
                load_dpop_key(config.dpop_key_file, self.warnings)
                if config.dpop_key_file is not None
                else ephemeral_dpop_key()
            )
            if dpop_key.same_key_as(self.key):
                raise ConfigError(
                    "dpop_key_file holds the same key as private_key_file; DPoP needs a "
                    "separate EC P-256 key (or leave dpop_key_file out for a per-run key)"
                )
            self.prover = DPoPProver(dpop_key, clock)
        if self.key.key_id is None:
            self.warnings.append(
                "no key_id: Okta accepts that only while the app has a single public key; set "
                "key_id to the KID shown under the app's Public Keys"
            )
        if LOGS_SCOPE not in config.scopes:
            self.warnings.append(
                f"scopes {list(config.scopes)} do not include {LOGS_SCOPE}; Okta will refuse "
                "/api/v1/logs with 403 insufficient_scope"
            )
        for warning in self.warnings:
            emit(
                "oauth.config_warning",
                logging.WARNING,
                client_id=config.client_id,
                warning=warning,
            )
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._token_nonce: str | None = None
        self._api_nonce: str | None = None
        self.tokens_obtained = 0

    def __repr__(self) -> str:
        return (
            f"OAuthAuth(client_id={self.config.client_id!r}, key={self.key!r}, "
            f"dpop={self.prover is not None}, token_url={self.token_url!r})"
        )

    @property
    def token_scheme(self) -> str | None:
        """``Bearer`` or ``DPoP`` once a token is held, else None."""
        with self._lock:
            return self._token.scheme if self._token else None

    # -- the flow ---------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._cached()
        fresh = False
        if token is None:
            token = yield from self._obtain(request)
            if token is None:
                return  # the token endpoint's 429/5xx is the response: the client retries
            fresh = True
        response = yield self._authorize(request, token)
        self._remember_nonce(response, api=True)
        nonce_retried = False
        while response.status_code == 401:
            error = challenge_error(response.headers.get("www-authenticate"))
            if (
                error == "use_dpop_nonce"
                and token.scheme == "DPoP"
                and not nonce_retried
                and response.headers.get("dpop-nonce")
            ):
                nonce_retried = True
            elif not fresh:
                emit("oauth.token_rejected", logging.WARNING, client_id=self.config.client_id)
                self._drop(token)
                token = yield from self._obtain(request)
                if token is None:
                    return
                fresh = True
            else:
                break
            response = yield self._authorize(request, token)
            self._remember_nonce(response, api=True)
        if response.status_code in (401, 403):
            raise self._api_failure(response)

    def _cached(self) -> _Token | None:
        with self._lock:
            token = self._token
        if token is not None and self.clock.now() < token.refresh_at:
            return token
        return None

    def _drop(self, token: _Token) -> None:
        with self._lock:
            if self._token is token:
                self._token = None

    def _authorize(self, request: httpx.Request, token: _Token) -> httpx.Request:
        secret = token.value.reveal()
        request.headers["Authorization"] = f"{token.scheme} {secret}"
        if token.scheme == "DPoP" and self.prover is not None:
            with self._lock:
                nonce = self._api_nonce
            request.headers["DPoP"] = self.prover.proof(
                request.method, request.url, access_token=secret, nonce=nonce
            )
        else:
            request.headers.pop("DPoP", None)
        return request

    def _remember_nonce(self, response: httpx.Response, *, api: bool) -> None:
        nonce = response.headers.get("dpop-nonce")
        if nonce and self.prover is not None:
            with self._lock:
                if api:
                    self._api_nonce = nonce
                else:
                    self._token_nonce = nonce

    # -- the token endpoint -----------------------------------------------------------------

    def _obtain(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, _Token | None]:
        """A new token (stored), or None when the endpoint's 429/5xx ends the flow."""
        nonce_retried = False
        while True:
            started = self.clock.now()
            token_request = self._token_request(request)
            if self._http is None:
                response = yield token_request
            else:
                response = self._http.send(token_request)
            self._remember_nonce(response, api=False)
            status = response.status_code
            if status == 200:
                return self._store(response, started)
            error, description = _oauth_error(response)
            if (
                status == 400
                and error == "use_dpop_nonce"
                and self.prover is not None
                and not nonce_retried
                and response.headers.get("dpop-nonce")
            ):
                nonce_retried = True
                continue
            if status in (408, 429) or status >= 500:
                if self._http is None:
                    return None
                raise _transient_failure(response)
            raise self._token_failure(response, error, description)

    def _token_request(self, request: httpx.Request) -> httpx.Request:
        config = self.config
        assertion = client_assertion(
            self.key,
            config.client_id,
            self.token_url,
            self.clock.now(),
            config.assertion_lifetime,
        )
        form = {
            "grant_type": "client_credentials",
            "scope": " ".join(config.scopes),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.prover is not None:
            with self._lock:
                nonce = self._token_nonce
            headers["DPoP"] = self.prover.proof("POST", self.token_url, nonce=nonce)
        if self._http is not None:
            return self._http.build_request("POST", self.token_url, data=form, headers=headers)
        extensions = {k: v for k, v in request.extensions.items() if k == "timeout"}
        return httpx.Request(
            "POST", self.token_url, data=form, headers=headers, extensions=extensions
        )

    def _store(self, response: httpx.Response, started: datetime) -> _Token:
        doc = _json_object(response)
        value = doc.get("access_token")
        kind = doc.get("token_type")
        request_id = response.headers.get("x-okta-request-id")
        if not isinstance(value, str) or not value or not isinstance(kind, str):
            raise BadResponse(
                "Okta's token endpoint answered 200 without an access token and token type",
                request_id=request_id,
            )
        scheme = {"bearer": "Bearer", "dpop": "DPoP"}.get(kind.lower())
        if scheme is None:
            raise BadResponse(
                f"Okta issued an unknown token type {kind[:40]!r}", request_id=request_id
            )
        seconds = doc.get("expires_in")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            seconds = DEFAULT_TOKEN_SECONDS
        lifetime = timedelta(seconds=seconds)
        scope = doc.get("scope")
        scope = scope if isinstance(scope, str) else " ".join(self.config.scopes)
        token = _Token(
            value=Secret(value, origin=f"okta:{self.token_url}", transient=True),
            scheme=scheme,
            scope=scope,
            expires_at=started + lifetime,
            refresh_at=started + lifetime - min(REFRESH_MARGIN, lifetime * 0.2),
        )
        with self._lock:
            self._token = token
            self.tokens_obtained += 1
        emit(
            "oauth.token_obtained",
            client_id=self.config.client_id,
            token_type=scheme,
            expires_in=seconds,
            scope=scope,
            request_id=request_id,
        )
        if self.prover is not None and scheme == "Bearer":
            emit("oauth.dpop_not_bound", logging.WARNING, client_id=self.config.client_id)
        return token

    # -- what to tell the user --------------------------------------------------------------

    def _token_failure(
        self, response: httpx.Response, error: str | None, description: str | None
    ) -> SourceError:
        config = self.config
        scopes = " ".join(config.scopes)
        if error == "invalid_client":
            kid = self.key.key_id
            which = (
                f"the public key with kid {kid!r} is registered on the app"
                if kid is not None
                else "the app's public key matches private_key_file (and set key_id)"
            )
            message = (
                f"Okta rejected the client assertion for client_id {config.client_id!r}: check "
                f"client_id, that {which} ({_APP} > General > Public Keys), and the machine's clock"
            )
        elif error == "invalid_scope":
            message = (
                f"Okta refused the scopes {scopes!r}: grant {LOGS_SCOPE} to the app in "
                f"{_APP} > Okta API Scopes"
            )
        elif error == "invalid_dpop_proof" and self.prover is None:
            message = (
                "the app requires DPoP: set dpop = true for this source (the app's General "
                "Settings require a DPoP header in token requests)"
            )
        elif error in ("invalid_dpop_proof", "use_dpop_nonce"):
            message = (
                "Okta rejected the DPoP proof of the token request: check the machine's clock "
                "and that dpop_key_file holds an EC P-256 private key"
            )
        elif error in ("unauthorized_client", "unsupported_grant_type"):
            message = (
                "the app may not use the client credentials grant: it must be an API Services "
                "app with Public key / Private key client authentication"
            )
        elif response.status_code == 404:
            message = f"no OAuth token endpoint at {self.token_url}: check the org URL"
        else:
            message = "Okta's token endpoint refused the token request"
        skew = self._skew(response)
        if skew:
            message += f"; {skew}"
        return AuthFailed(
            message,
            status=response.status_code,
            error_code=error,
            error_summary=description,
            request_id=response.headers.get("x-okta-request-id"),
        )

    def _api_failure(self, response: httpx.Response) -> AuthFailed:
        challenge = response.headers.get("www-authenticate")
        error = challenge_error(challenge)
        status = response.status_code
        if status == 403 and error == "insufficient_scope":
            message = (
                f"the access token lacks the {LOGS_SCOPE} scope (requested: "
                f"{' '.join(self.config.scopes)!r}): grant {LOGS_SCOPE} to the app in "
                f"{_APP} > Okta API Scopes and list it in scopes"
            )
        elif status == 403:
            message = (
                "Okta refused the app access to the System Log: assign the app an admin role "
                f"that may read it, e.g. Read-only Administrator ({_APP} > Admin roles)"
            )
        elif error == "invalid_dpop_proof":
            message = (
                "Okta rejected the DPoP proof sent with the access token for /api/v1/logs: "
                "check the machine's clock"
            )
        elif error == "use_dpop_nonce":
            message = "Okta kept asking for a new DPoP nonce on /api/v1/logs"
        else:
            message = "Okta rejected a newly issued access token for /api/v1/logs"
        if challenge:
            message += f" (WWW-Authenticate: {challenge[:500]})"
        envelope = _json_object(response)
        code = envelope.get("errorCode")
        summary = envelope.get("errorSummary")
        return AuthFailed(
            message,
            status=status,
            error_code=str(code) if code else None,
            error_summary=str(summary)[:300] if summary else None,
            request_id=response.headers.get("x-okta-request-id"),
        )

    def _skew(self, response: httpx.Response) -> str | None:
        """A note when this machine's clock is far from Okta's (the response's ``Date``)."""
        try:
            theirs = parsedate_to_datetime(response.headers.get("date", ""))
        except (TypeError, ValueError):
            return None
        if theirs.tzinfo is None:
            return None
        skew = self.clock.now() - theirs
        if abs(skew) < SKEW_WORTH_MENTIONING:
            return None
        minutes = round(abs(skew).total_seconds() / 60)
        side = "ahead of" if skew > timedelta(0) else "behind"
        return f"this machine's clock is about {minutes} min {side} Okta's: sync it (NTP)"


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        doc = json.loads(response.read())
    except (ValueError, RecursionError, httpx.StreamConsumed):  # RecursionError: too deep
        return {}
    return doc if isinstance(doc, dict) else {}


def _oauth_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """(``error``, ``error_description``) of an OAuth error body, shortened."""
    doc = _json_object(response)
    error, description = doc.get("error"), doc.get("error_description")
    return (
        str(error)[:80] if error else None,
        str(description)[:300] if description else None,
    )


def _transient_failure(response: httpx.Response) -> SourceError:
    status = response.status_code
    request_id = response.headers.get("x-okta-request-id")
    if status == 429:
        return RateLimited(
            "Okta's token endpoint is rate limited; retrying at the next cycle",
            status=status,
            request_id=request_id,
        )
    return BadResponse(
        f"Okta's token endpoint answered HTTP {status}; retrying at the next cycle",
        request_id=request_id,
    )

"""The simulated org's OAuth 2.0: a token endpoint for service apps and the token check.

``POST /oauth2/v1/token`` takes ``grant_type=client_credentials`` with a ``private_key_jwt``
client assertion and checks it as Okta does: a registered ``kid`` (or no ``kid`` while the app
has a single key), the signature, ``aud`` equal to the endpoint, ``iss == sub == client_id``,
``exp`` in the future and at most an hour ahead, ``iat`` not in the future, ``jti`` used once
and every requested scope granted. Apps that require DPoP need a proof on the token request;
the first proof without a nonce is answered ``400 use_dpop_nonce`` with a ``DPoP-Nonce``.

Issued tokens (``Bearer``, or ``DPoP`` bound to the proof key's RFC 7638 thumbprint) are
accepted on ``/api/v1/logs``: a DPoP token only with a fresh proof for that request whose
``ath`` matches the token and whose key is the bound one. A token without ``okta.logs.read``
gets ``403 E0000006`` with an ``insufficient_scope`` challenge; an expired or unknown token
``401 E0000011``. All times come from the org's injected clock.

This module deliberately does not share code with the client (``ingest.okta``): a bug in a
shared helper would make both sides agree and the tests pass.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.api_jws import PyJWS

from ingest.simulate import responses as r
from ingest.simulate.responses import SimResponse

TOKEN_PATH = "/oauth2/v1/token"  # noqa: S105 (a path, not a secret)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LOGS_SCOPE = "okta.logs.read"
E_FORBIDDEN = "E0000006"
FORBIDDEN_SUMMARY = "You do not have permission to perform the requested action"
MAX_ASSERTION_SECONDS = 3600
IAT_LEEWAY_SECONDS = 5  # an iat this far in the future still passes
PROOF_MAX_AGE_SECONDS = 300
PROOF_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_JWS = PyJWS()

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class OAuthApp:
    """A registered API Services app.

    ``keys`` are ``(kid, public key)`` pairs, the key as a public JWK (JSON text) or PEM.
    ``admin_role=False`` models an app without an admin role: its tokens get a 403.
    """

    client_id: str
    keys: tuple[tuple[str, str], ...]
    scopes: frozenset[str] = frozenset({LOGS_SCOPE})
    requires_dpop: bool = False
    admin_role: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", frozenset(self.scopes))
        object.__setattr__(self, "keys", tuple(self.keys))
        for _, text in self.keys:
            _public_key(text)  # fail early on a key that cannot be read


@dataclass(frozen=True)
class OAuthSettings:
    """The org's OAuth apps and how long tokens and DPoP nonces last (seconds).

    ``api_nonce`` makes ``/api/v1/logs`` demand a server nonce in DPoP proofs too.
    """

    apps: tuple[OAuthApp, ...] = ()
    token_seconds: int = 3600
    nonce_seconds: float = 600.0
    api_nonce: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "apps", tuple(self.apps))
        if self.token_seconds <= 0 or self.nonce_seconds <= 0:
            raise ValueError("token_seconds and nonce_seconds must be positive")


@dataclass(frozen=True)
class Grant:
    """An issued access token's facts (the token itself is the key they are stored under)."""

    client_id: str
    scopes: frozenset[str]
    expires_at: datetime
    jkt: str | None  # thumbprint of the DPoP key it is bound to


@dataclass(frozen=True)
class Denial:
    """Why ``/api/v1/logs`` refuses a token: status, Okta errorCode and extra headers."""

    status: int
    code: str
    summary: str
    headers: tuple[tuple[str, str], ...] = ()


class _OAuthError(Exception):
    def __init__(
        self, status: int, error: str, description: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers


def _client_error(description: str) -> _OAuthError:
    return _OAuthError(401, "invalid_client", description)


class AuthorizationServer:
    """Thread-safe token endpoint and token check of one simulated org."""

    def __init__(self, settings: OAuthSettings, now: Callable[[], datetime]) -> None:
        self.settings = settings
        self._now = now
        self._apps = {app.client_id: app for app in settings.apps}
        self._keys = {
            app.client_id: {kid: _public_key(text) for kid, text in app.keys}
            for app in settings.apps
        }
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        self._assertion_jtis: dict[str, datetime] = {}
        self._proof_jtis: dict[str, datetime] = {}
        self._token_nonces: dict[str, datetime] = {}
        self._api_nonces: dict[str, datetime] = {}
        self._outcomes: Counter[str] = Counter()

    # -- observing and steering, for tests ---------------------------------------------------

    def outcomes(self) -> dict[str, int]:
        """Token requests so far by outcome: ``issued`` or the OAuth ``error`` code."""
        with self._lock:
            return dict(self._outcomes)

    def grants(self) -> list[Grant]:
        """The tokens issued and not revoked, oldest first."""
        with self._lock:
            return list(self._grants.values())

    def revoke_all(self) -> None:
        """Forget every issued token (as an admin revoking them would)."""
        with self._lock:
            self._grants.clear()

    # -- POST /oauth2/v1/token ---------------------------------------------------------------

    def token(
        self,
        body: bytes | None,
        content_type: str | None,
        dpop: str | None,
        url: str,
        request_id: str,
    ) -> SimResponse:
        """Answer one token request sent to ``url``."""
        with self._lock:
            try:
                payload = self._issue(body, content_type, dpop, _without_query(url))
            except _OAuthError as err:
                self._outcomes[err.error] += 1
                doc = {"error": err.error, "error_description": err.description}
                return _oauth_json(err.status, doc, request_id, err.headers)
            self._outcomes["issued"] += 1
            return _oauth_json(200, payload, request_id)

    def _issue(
        self, body: bytes | None, content_type: str | None, dpop: str | None, endpoint: str
    ) -> dict[str, Any]:
        now = self._now()
        form = _form(body, content_type)
        if form.get("grant_type") != "client_credentials":
            raise _OAuthError(
                400, "unsupported_grant_type", "The authorization grant type is not supported."
            )
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise _client_error(
                "Client authentication failed: a private_key_jwt client assertion is required."
            )
        app, claims = self._authenticate(form["client_assertion"], form.get("client_id"), endpoint)
        self._check_claims(claims, app, endpoint, now)
        jkt = None
        if dpop is not None or app.requires_dpop:
            if dpop is None:
                raise _OAuthError(
                    400, "invalid_dpop_proof", "The DPoP proof JWT header is missing."
                )
            jkt = self._proof(dpop, "POST", endpoint, now, self._token_nonces, None, 400)
        requested = frozenset(form.get("scope", "").split())
        if not requested:
            raise _OAuthError(400, "invalid_scope", "The scope parameter is required.")
        if not requested <= app.scopes:
            missing = " ".join(sorted(requested - app.scopes))
            raise _OAuthError(
                400, "invalid_scope", f"The following scopes are not granted to the app: {missing}"
            )
        self._assertion_jtis[str(claims["jti"])] = _from_epoch(float(claims["exp"]))
        self._prune(now)
        access_token = secrets.token_urlsafe(32)
        seconds = self.settings.token_seconds
        self._grants[access_token] = Grant(
            app.client_id, requested, now + timedelta(seconds=seconds), jkt
        )
        return {
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": seconds,
            "access_token": access_token,
            "scope": " ".join(sorted(requested)),
        }

    def _authenticate(
        self, assertion: str, form_client_id: str | None, endpoint: str
    ) -> tuple[OAuthApp, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = _claims(
                _JWS.decode_complete(assertion, options={"verify_signature": False})
            )
        except (jwt.PyJWTError, ValueError):
            raise _client_error("The client_assertion is not a valid JWT.") from None
        client_id = unverified.get("iss")
        app = self._apps.get(client_id) if isinstance(client_id, str) else None
        if app is None or (form_client_id is not None and form_client_id != client_id):
            raise _client_error("Invalid value for 'client_id' parameter.")
        keys = self._keys[app.client_id]
        kid = header.get("kid")
        if kid is None and len(keys) == 1:
            key = next(iter(keys.values()))
        elif isinstance(kid, str) and kid in keys:
            key = keys[kid]
        else:
            raise _client_error("The client_assertion JWT kid is invalid.")
        algorithm = header.get("alg")
        if algorithm not in _algorithms_for(key):
            raise _client_error(f"The client_assertion alg {algorithm!s:.20} does not fit the key.")
        try:
            claims = _claims(_JWS.decode_complete(assertion, key=key, algorithms=[algorithm]))
        except jwt.PyJWTError:
            raise _client_error("The client_assertion signature is invalid.") from None
        return app, claims

    def _check_claims(
        self, claims: dict[str, Any], app: OAuthApp, endpoint: str, now: datetime
    ) -> None:
        if claims.get("sub") != app.client_id:
            raise _client_error("The client_assertion 'sub' claim must equal the client_id.")
        if claims.get("aud") != endpoint:
            raise _client_error(
                "The audience claim for client_assertion must be the endpoint invoked for the "
                "request."
            )
        exp, iat, jti = _number(claims.get("exp")), claims.get("iat"), claims.get("jti")
        if exp is None:
            raise _client_error("The client_assertion token must have an 'exp' claim.")
        now_s = now.timestamp()
        if exp <= now_s:
            raise _client_error("The client_assertion token is expired.")
        if exp > now_s + MAX_ASSERTION_SECONDS:
            raise _client_error(
                "The client_assertion token has an expiration too far into the future."
            )
        issued = _number(iat)
        if iat is not None and (issued is None or issued > now_s + IAT_LEEWAY_SECONDS):
            raise _client_error("The client_assertion 'iat' claim is in the future.")
        if not isinstance(jti, str) or not jti:
            raise _client_error("The client_assertion token must have a 'jti' claim.")
        if jti in self._assertion_jtis:
            raise _client_error("The client_assertion 'jti' has already been used.")

    # -- DPoP proofs -------------------------------------------------------------------------

    def _proof(
        self,
        proof: str,
        method: str,
        url: str,
        now: datetime,
        nonces: dict[str, datetime] | None,
        access_token: str | None,
        status: int,
    ) -> str:
        """Check a DPoP proof; return the thumbprint of its key (``_OAuthError`` if bad)."""

        def bad(description: str) -> _OAuthError:
            return _OAuthError(status, "invalid_dpop_proof", description)

        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError:
            raise bad("The DPoP proof is not a valid JWT.") from None
        if header.get("typ") != "dpop+jwt":
            raise bad("The DPoP proof 'typ' header must be 'dpop+jwt'.")
        algorithm = header.get("alg")
        jwk = header.get("jwk")
        if algorithm not in PROOF_ALGORITHMS:
            raise bad("The DPoP proof 'alg' is not supported.")
        if not isinstance(jwk, dict) or "d" in jwk or "p" in jwk:
            raise bad("The DPoP proof 'jwk' header must be a public key.")
        try:
            key = jwt.PyJWK(jwk).key
            if algorithm not in _algorithms_for(key):
                raise bad("The DPoP proof 'alg' does not fit its 'jwk'.")
            claims = _claims(_JWS.decode_complete(proof, key=key, algorithms=[algorithm]))
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            raise bad("The DPoP proof signature is invalid.") from None
        if claims.get("htm") != method:
            raise bad(f"The DPoP proof 'htm' must be {method}.")
        if not isinstance(claims.get("htu"), str) or _without_query(claims["htu"]) != url:
            raise bad("The DPoP proof 'htu' does not match the request URL.")
        iat, jti = _number(claims.get("iat")), claims.get("jti")
        now_s = now.timestamp()
        if iat is None or not now_s - PROOF_MAX_AGE_SECONDS <= iat <= now_s + IAT_LEEWAY_SECONDS:
            raise bad("The DPoP proof 'iat' is not recent.")
        if not isinstance(jti, str) or not jti or jti in self._proof_jtis:
            raise bad("The DPoP proof 'jti' is missing or was used before.")
        if access_token is not None and claims.get("ath") != _ath(access_token):
            raise bad("The DPoP proof 'ath' does not match the access token.")
        if nonces is not None:
            nonce = claims.get("nonce")
            fresh = now - timedelta(seconds=self.settings.nonce_seconds)
            if not isinstance(nonce, str) or nonces.get(nonce, fresh) <= fresh:
                new = secrets.token_urlsafe(16)
                nonces[new] = now
                who = "Authorization" if access_token is None else "Resource"
                raise _OAuthError(
                    status,
                    "use_dpop_nonce",
                    f"{who} server requires nonce in DPoP proof.",
                    (("DPoP-Nonce", new),),
                )
        self._proof_jtis[jti] = now + timedelta(seconds=2 * PROOF_MAX_AGE_SECONDS)
        return _thumbprint(jwk)

    # -- GET /api/v1/logs --------------------------------------------------------------------

    def check(self, authorization: str, dpop: str | None, method: str, url: str) -> Denial | None:
        """None when ``authorization`` (``Bearer``/``DPoP`` token) may read the System Log."""
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        endpoint = _without_query(url)
        parts = urlsplit(url)
        with self._lock:
            now = self._now()
            self._prune(now)
            grant = self._grants.get(value)
            authorize = f"{parts.scheme}://{parts.netloc}/oauth2/v1/authorize"
            challenge = (
                f'{scheme} authorization_uri="{authorize}", realm="IdP", scope="{LOGS_SCOPE}"'
            )
            if grant is None:
                return _unauthorized(challenge, "invalid_token", "The access token is invalid.")
            if now >= grant.expires_at:
                return _unauthorized(challenge, "invalid_token", "The access token is expired.")
            if (grant.jkt is None) != (scheme == "Bearer"):
                expected = "Bearer" if grant.jkt is None else "DPoP"
                return _unauthorized(
                    challenge,
                    "invalid_token",
                    f"The access token must be presented with the {expected} scheme.",
                )
            if grant.jkt is not None:
                if dpop is None:
                    return _unauthorized(
                        challenge, "invalid_dpop_proof", "The DPoP proof JWT header is missing."
                    )
                nonces = self._api_nonces if self.settings.api_nonce else None
                try:
                    jkt = self._proof(dpop, method, endpoint, now, nonces, value, 401)
                except _OAuthError as err:
                    return _unauthorized(challenge, err.error, err.description, err.headers)
                if jkt != grant.jkt:
                    return _unauthorized(
                        challenge,
                        "invalid_dpop_proof",
                        "The DPoP proof key is not the key the access token is bound to.",
                    )
            if LOGS_SCOPE not in grant.scopes:
                description = "The access token provided does not contain the required scopes."
                text = (
                    f'{challenge}, error="insufficient_scope", '
                    f'error_description="{description}", resource="{urlsplit(url).path}"'
                )
                return Denial(403, E_FORBIDDEN, FORBIDDEN_SUMMARY, (("WWW-Authenticate", text),))
            if not self._apps[grant.client_id].admin_role:
                return Denial(403, E_FORBIDDEN, FORBIDDEN_SUMMARY)
            return None

    def _prune(self, now: datetime) -> None:
        for seen in (self._assertion_jtis, self._proof_jtis):
            for key in [k for k, until in seen.items() if until < now]:
                del seen[key]
        oldest = now - timedelta(seconds=self.settings.nonce_seconds)
        for nonces in (self._token_nonces, self._api_nonces):
            for key in [k for k, issued in nonces.items() if issued < oldest]:
                del nonces[key]
        stale = now - timedelta(days=1)  # known a while longer, to answer "expired"
        for key in [k for k, grant in self._grants.items() if grant.expires_at < stale]:
            del self._grants[key]


def _unauthorized(
    challenge: str,
    error: str,
    description: str,
    headers: tuple[tuple[str, str], ...] = (),
) -> Denial:
    text = f'{challenge}, error="{error}", error_description="{description}"'
    return Denial(401, r.E_TOKEN, r.SUMMARIES[r.E_TOKEN], (("WWW-Authenticate", text), *headers))


def _oauth_json(
    status: int,
    doc: Mapping[str, Any],
    request_id: str,
    headers: tuple[tuple[str, str], ...] = (),
) -> SimResponse:
    lines = (
        ("Content-Type", r.JSON),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
        ("X-Okta-Request-Id", request_id),
        *headers,
    )
    return SimResponse(status, lines, orjson.dumps(doc))


def _form(body: bytes | None, content_type: str | None) -> dict[str, str]:
    media = (content_type or "").split(";")[0].strip().lower()
    if body is None or media != "application/x-www-form-urlencoded":
        raise _OAuthError(
            400, "invalid_request", "The request must be an application/x-www-form-urlencoded form."
        )
    form: dict[str, str] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        form.setdefault(key, value)
    return form


def _claims(decoded: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(decoded["payload"])
    if not isinstance(doc, dict):
        raise ValueError("the JWT payload is not an object")
    return doc


def _public_key(text: str) -> PublicKey:
    stripped = text.strip()
    loaded: object
    if stripped.startswith("{"):
        loaded = jwt.PyJWK(json.loads(stripped)).key
    else:
        loaded = serialization.load_pem_public_key(stripped.encode())
    if not isinstance(loaded, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("an OAuth app key must be an RSA or EC public key")
    return loaded


def _algorithms_for(key: object) -> tuple[str, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        return ("RS256", "RS384", "RS512")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_ALGORITHMS:
        return (_EC_ALGORITHMS[key.curve.name],)
    return ()


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _ath(access_token: str) -> str:
    return _b64url(hashlib.sha256(access_token.encode()).digest())


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace."""
    members = ("crv", "kty", "x", "y") if jwk.get("kty") == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk.get(m) for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())

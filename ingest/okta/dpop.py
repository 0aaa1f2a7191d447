"""DPoP (RFC 9449): proofs that the caller holds the key an access token is bound to.

Each HTTP request carries a fresh proof: a JWT with header ``typ: dpop+jwt``, ``alg: ES256``
and the public ``jwk``, and claims ``htm`` (method), ``htu`` (URL without query or fragment),
``iat``, a unique ``jti``, ``ath`` (hash of the access token, on resource requests) and the
server's latest ``nonce`` when it asked for one.

The DPoP key may be ephemeral: RFC 9449 lets a client create a key pair per run. The token
is bound to that key, so after a restart the client simply obtains a new token.

Every proof is registered with :mod:`ingest.base.redact` (as a transient value) before it is sent.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

import httpx

from ingest.base.clock import Clock
from ingest.base.redact import register
from ingest.okta.keys import SigningKey, b64url

PROOF_TYPE = "dpop+jwt"


class DPoPProver:
    """Signs DPoP proofs with one key and the injected clock."""

    def __init__(self, key: SigningKey, clock: Clock) -> None:
        self.key = key
        self.clock = clock
        self._key = SigningKey(key.private, key.algorithm)  # proofs carry a jwk, not a kid
        self._jwk = self._key.public_jwk()

    def __repr__(self) -> str:
        return f"DPoPProver(key={self.key!r})"

    def proof(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """A new proof for one request to ``url``."""
        claims: dict[str, object] = {
            "htm": method.upper(),
            "htu": htu(url),
            "iat": int(self.clock.now().timestamp()),
            "jti": secrets.token_urlsafe(24),
        }
        if access_token is not None:
            claims["ath"] = ath(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        proof = self._key.sign(claims, {"typ": PROOF_TYPE, "jwk": self._jwk})
        register(proof, transient=True)  # never shown, even when a server echoes it
        return proof


def htu(url: str | httpx.URL) -> str:
    """The ``htu`` of a request: its URL without query and fragment."""
    return str(httpx.URL(url).copy_with(query=None, fragment=None))


def ath(access_token: str) -> str:
    """The ``ath`` claim: base64url(SHA-256(access token)), unpadded."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a scheme and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        return self.params.get("error")


_NAME = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_NAME})\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')
_SCHEME = re.compile(rf"\s*,?\s*({_NAME})(?:\s+|$)")


def parse_challenges(header: str | None) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` value (lenient: stops at anything odd)."""
    text = header or ""
    found: list[Challenge] = []
    pos = 0
    while pos < len(text):
        scheme = _SCHEME.match(text, pos)
        if scheme is None or _PARAM.match(text, pos):
            break
        pos = scheme.end()
        params: dict[str, str] = {}
        while (param := _PARAM.match(text, pos)) is not None and param.end() > pos:
            value = param.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params.setdefault(param.group(1).lower(), value)
            pos = param.end()
        found.append(Challenge(scheme.group(1), params))
    return found


def challenge_error(header: str | None) -> str | None:
    """The first ``error`` parameter of any challenge in ``header``."""
    return next((c.error for c in parse_challenges(header) if c.error), None)

"""Private keys for OAuth: the app's client-assertion key and the DPoP key.

Keys come from files only: a PEM private key (PKCS#8 or the traditional RSA/EC forms) or a
private JWK, as Okta's Admin Console generates one (a single key or a ``{"keys": [...]}`` set).
A key is wrapped in :class:`SigningKey`, whose repr and errors never show key material.

Okta accepts RS256/RS384/RS512 (RSA, at least 2048 bits) and ES256/ES384/ES512 (EC P-256,
P-384, P-521) for ``private_key_jwt``. DPoP proofs are signed with ES256 (EC P-256) only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ingest.base.errors import ConfigError
from ingest.base.secrets import secret_from_file
from ingest.okta.oauth_config import EC_ALGORITHMS, RSA_ALGORITHMS

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DPOP_ALGORITHM = "ES256"
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    """A private key, the JWS algorithm it signs with, and the ``kid`` Okta knows it by."""

    private: PrivateKey = field(repr=False, compare=False)
    algorithm: str
    key_id: str | None = None
    origin: str = "memory"

    def __repr__(self) -> str:
        return (
            f"SigningKey(algorithm={self.algorithm!r}, key_id={self.key_id!r}, "
            f"origin={self.origin!r})"
        )

    def sign(self, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
        """A compact JWS of ``claims``; ``headers`` are added to ``alg`` (and ``kid`` if set)."""
        extra: dict[str, Any] = dict(headers or {})
        if self.key_id is not None:
            extra.setdefault("kid", self.key_id)
        return jwt.encode(dict(claims), self.private, algorithm=self.algorithm, headers=extra)

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK (with ``kid`` when known): what Okta registers."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            doc = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            doc = ECAlgorithm.to_jwk(public, as_dict=True)
        jwk = {k: v for k, v in doc.items() if k in ("kty", "crv", "x", "y", "n", "e")}
        if self.key_id is not None:
            jwk["kid"] = self.key_id
        return jwk

    def thumbprint(self) -> str:
        """The RFC 7638 SHA-256 thumbprint of the public key, base64url without padding."""
        jwk = self.public_jwk()
        members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
        canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def same_key_as(self, other: SigningKey) -> bool:
        """True when both wrap the same key pair."""
        return self.thumbprint() == other.thumbprint()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_signing_key(
    path: Path,
    key_id: str | None = None,
    algorithm: str | None = None,
    warn: list[str] | None = None,
) -> SigningKey:
    """The client-assertion key in ``path``; ``algorithm`` is inferred from the key when None.

    Raises ``ConfigError`` naming the file and the problem (never the key). A file readable by
    group or others adds a line to ``warn``.
    """
    private, jwk_kid, jwk_alg = _read(path, key_id, warn)
    if key_id is not None and jwk_kid is not None and key_id != jwk_kid:
        raise ConfigError(
            f"key file {path} is the JWK with kid {jwk_kid!r}, but key_id is {key_id!r}; "
            "remove key_id or make them equal"
        )
    if algorithm is not None and jwk_alg is not None and algorithm != jwk_alg:
        raise ConfigError(f"key file {path} is a JWK for {jwk_alg}, but algorithm is {algorithm}")
    chosen = _algorithm(path, private, algorithm or jwk_alg)
    return SigningKey(private, chosen, key_id or jwk_kid, origin=f"file:{path}")


def load_dpop_key(path: Path, warn: list[str] | None = None) -> SigningKey:
    """The DPoP key in ``path``: an EC P-256 private key (PEM or JWK), used with ES256."""
    private, _, _ = _read(path, None, warn)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise ConfigError(
            f"DPoP key file {path} must hold an EC P-256 private key (ES256), e.g. from "
            "`openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`"
        )
    return SigningKey(private, DPOP_ALGORITHM, origin=f"file:{path}")


def ephemeral_dpop_key() -> SigningKey:
    """A fresh EC P-256 key held in memory only (RFC 9449 lets a client use one per run)."""
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), DPOP_ALGORITHM)


def _read(
    path: Path, key_id: str | None, warn: list[str] | None
) -> tuple[PrivateKey, str | None, str | None]:
    """(private key, the JWK's kid, the JWK's alg) from a PEM or JWK file."""
    text = secret_from_file(path, warn, lines=True).reveal()
    if text.startswith("{"):
        return _from_jwk(path, text, key_id)
    return _from_pem(path, text.encode("utf-8")), None, None


def _from_pem(path: Path, data: bytes) -> PrivateKey:
    if b"-----BEGIN" not in data:
        raise ConfigError(f"key file {path} is neither a PEM private key nor a JWK (JSON)")
    if b"PUBLIC KEY-----" in data or b"CERTIFICATE-----" in data:
        raise ConfigError(
            f"key file {path} holds a public key or certificate; oktaduck needs the private "
            "key (the public half is what you register in Okta)"
        )
    if b"OPENSSH PRIVATE KEY-----" in data:
        raise ConfigError(
            f"key file {path} is in OpenSSH format; convert it to PEM (PKCS#8), e.g. "
            "`ssh-keygen -p -m PKCS8 -N '' -f FILE`"
        )
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(
            f"key file {path} is encrypted with a passphrase, which is not supported; "
            "store it unencrypted and readable only by the collector (chmod 600)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"key file {path} is not a readable PEM private key") from None
    return _usable(path, private)


def _from_jwk(
    path: Path, text: str, key_id: str | None
) -> tuple[PrivateKey, str | None, str | None]:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deeply
        raise ConfigError(f"key file {path} starts like JSON but is not valid JSON") from None
    if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
        doc = _pick(path, doc["keys"], key_id)
    if not isinstance(doc, dict) or "kty" not in doc:
        raise ConfigError(f"key file {path} is JSON but not a JWK (no 'kty')")
    if "d" not in doc:
        raise ConfigError(
            f"key file {path} is a public JWK; oktaduck needs the private JWK (with 'd'), as "
            "shown once when Okta generates the key"
        )
    try:
        parsed = jwt.PyJWK(doc)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, KeyError, TypeError):
        raise ConfigError(f"key file {path} is not a usable private JWK") from None
    key_obj = parsed.key
    if not isinstance(key_obj, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(f"key file {path}: only RSA and EC private keys are supported")
    kid = doc.get("kid")
    alg = doc.get("alg")
    return (
        _usable(path, key_obj),
        kid if isinstance(kid, str) and kid else None,
        alg if isinstance(alg, str) and alg else None,
    )


def _pick(path: Path, keys: list[Any], key_id: str | None) -> Any:
    if len(keys) == 1:
        return keys[0]
    matching = [k for k in keys if isinstance(k, dict) and key_id and k.get("kid") == key_id]
    if len(matching) == 1:
        return matching[0]
    if key_id is None:
        raise ConfigError(f"key file {path} holds {len(keys)} keys; set key_id to choose one")
    raise ConfigError(f"key file {path} holds no single key with kid {key_id!r}")


def _usable(path: Path, private: object) -> PrivateKey:
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"key file {path} is a {private.key_size}-bit RSA key; Okta needs at least "
                f"{MIN_RSA_BITS} bits"
            )
        return private
    if isinstance(private, ec.EllipticCurvePrivateKey):
        if private.curve.name not in EC_ALGORITHMS:
            raise ConfigError(
                f"key file {path} uses the EC curve {private.curve.name}; Okta accepts P-256, "
                "P-384 and P-521"
            )
        return private
    raise ConfigError(
        f"key file {path} holds a {type(private).__name__.lstrip('_')}; Okta accepts RSA and EC "
        "(P-256, P-384, P-521) keys"
    )


def _algorithm(path: Path, private: PrivateKey, wanted: str | None) -> str:
    if isinstance(private, rsa.RSAPrivateKey):
        allowed: tuple[str, ...] = RSA_ALGORITHMS
    else:
        allowed = (EC_ALGORITHMS[private.curve.name],)
    if wanted is None:
        return allowed[0]
    if wanted not in allowed:
        kind = "an RSA key" if isinstance(private, rsa.RSAPrivateKey) else "this EC key"
        raise ConfigError(
            f"algorithm {wanted} does not fit the key in {path}: {kind} signs with "
            f"{' / '.join(allowed)}"
        )
    return wanted

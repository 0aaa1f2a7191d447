"""OAuth service-app helpers the test_oauth* modules share: the app's identity, private keys
written as PEM or JWK files, and the simulator's view of an app (its public keys).

The keys themselves (``rsa_key``, ``ec_key``, ``other_rsa_key``) and ``oauth_sim`` are fixtures
in tests/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ingest.simulate.oauth import OAuthApp

CLIENT_ID = "0oa5svcapp7logreader1"
KID = "kid-2026"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def pem_file(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def jwk_dict(key: PrivateKey, kid: str | None = None) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        doc = RSAAlgorithm.to_jwk(key, as_dict=True)
    else:
        doc = ECAlgorithm.to_jwk(key, as_dict=True)
    if kid is not None:
        doc["kid"] = kid
    return doc


def jwk_file(path: Path, key: PrivateKey, kid: str | None = None) -> Path:
    path.write_text(json.dumps(jwk_dict(key, kid)))
    path.chmod(0o600)
    return path


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def app_for(key: PrivateKey, kid: str = KID, **kw: Any) -> OAuthApp:
    return OAuthApp(CLIENT_ID, ((kid, public_pem(key)),), **kw)

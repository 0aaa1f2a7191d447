"""Keys, configuration, DPoP proofs and challenge parsing: everything checked without a server."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ingest.base.clock import FakeClock
from ingest.base.errors import ConfigError
from ingest.okta.dpop import DPoPProver, ath, challenge_error, htu, parse_challenges
from ingest.okta.keys import ephemeral_dpop_key, load_dpop_key, load_signing_key
from ingest.okta.oauth import client_assertion
from ingest.okta.oauth_config import OAuthConfig
from tests.helpers import START
from tests.helpers.oauth import CLIENT_ID, KID, jwk_dict, jwk_file, pem_file


def test_pem_keys_infer_their_algorithm(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    assert load_signing_key(pem_file(tmp_path / "r.pem", rsa_key)).algorithm == "RS256"
    assert load_signing_key(pem_file(tmp_path / "e.pem", ec_key)).algorithm == "ES256"
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert load_signing_key(pem_file(tmp_path / "p384.pem", p384)).algorithm == "ES384"


def test_traditional_rsa_pem_is_read(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    path = tmp_path / "trad.pem"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    assert load_signing_key(path, key_id=KID).key_id == KID


def test_explicit_algorithm_must_fit_the_key(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    rsa_path = pem_file(tmp_path / "r.pem", rsa_key)
    assert load_signing_key(rsa_path, algorithm="RS512").algorithm == "RS512"
    with pytest.raises(ConfigError, match=r"algorithm ES256 does not fit the key in .*RS256"):
        load_signing_key(rsa_path, algorithm="ES256")
    with pytest.raises(ConfigError, match="this EC key signs with ES256"):
        load_signing_key(pem_file(tmp_path / "e.pem", ec_key), algorithm="ES384")


def test_jwk_files_supply_kid_and_alg(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    """A JWK as Okta generates it: its kid becomes the key_id, its alg the algorithm."""
    doc = jwk_dict(rsa_key, "okta-kid") | {"alg": "RS384", "use": "sig"}
    path = tmp_path / "k.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    key = load_signing_key(path)
    assert (key.key_id, key.algorithm) == ("okta-kid", "RS384")
    with pytest.raises(ConfigError, match="kid 'okta-kid', but key_id is 'other'"):
        load_signing_key(path, key_id="other")
    with pytest.raises(ConfigError, match="is a JWK for RS384, but algorithm is RS256"):
        load_signing_key(path, algorithm="RS256")


def test_jwk_sets_need_key_id_to_choose(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"keys": [jwk_dict(rsa_key, "a"), jwk_dict(ec_key, "b")]}))
    path.chmod(0o600)
    assert load_signing_key(path, key_id="b").algorithm == "ES256"
    with pytest.raises(ConfigError, match="holds 2 keys; set key_id"):
        load_signing_key(path)
    with pytest.raises(ConfigError, match="no single key with kid 'c'"):
        load_signing_key(path, key_id="c")


def _write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _public_jwk(key: rsa.RSAPrivateKey) -> str:
    return json.dumps({k: v for k, v in jwk_dict(key).items() if k in ("kty", "n", "e")})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not a key at all", "neither a PEM private key nor a JWK"),
        ("{not json", "starts like JSON but is not valid JSON"),
        ('{"a": 1}', "is JSON but not a JWK"),
        ("public-jwk", "is a public JWK; oktaduck needs the private JWK"),
        ("public-pem", "holds a public key or certificate"),
        ("encrypted", "is encrypted with a passphrase"),
        ("openssh", "is in OpenSSH format"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a readable PEM"),
        ("small-rsa", "is a 1024-bit RSA key; Okta needs at least 2048 bits"),
        ("ed25519", "Okta accepts RSA and EC"),
        ("p224", "uses the EC curve secp224r1"),
    ],
)
def test_unusable_key_files_say_what_is_wrong(
    content: str, message: str, rsa_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    """Each mistake names the file and the problem, never the key material."""
    no = serialization.NoEncryption()
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    data: bytes | str
    if content == "public-jwk":
        data = _public_jwk(rsa_key)
    elif content == "public-pem":
        data = rsa_key.public_key().public_bytes(pem, serialization.PublicFormat.PKCS1)
    elif content == "encrypted":
        data = rsa_key.private_bytes(
            pem, pkcs8, serialization.BestAvailableEncryption(b"passphrase")
        )
    elif content == "openssh":
        data = ed25519.Ed25519PrivateKey.generate().private_bytes(
            pem, serialization.PrivateFormat.OpenSSH, no
        )
    elif content == "small-rsa":
        small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        data = small.private_bytes(pem, pkcs8, no)
    elif content == "ed25519":
        data = ed25519.Ed25519PrivateKey.generate().private_bytes(pem, pkcs8, no)
    elif content == "p224":
        data = ec.generate_private_key(ec.SECP224R1()).private_bytes(pem, pkcs8, no)
    else:
        data = content
    path = _write(tmp_path / "key", data)
    with pytest.raises(ConfigError) as caught:
        load_signing_key(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    secret = jwk_dict(rsa_key)["d"]
    assert secret[:16] not in str(caught.value)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read secret file .*missing\.pem"):
        load_signing_key(tmp_path / "missing.pem")


def test_dpop_key_must_be_ec_p256(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    assert load_dpop_key(jwk_file(tmp_path / "d.json", ec_key)).algorithm == "ES256"
    with pytest.raises(ConfigError, match="must hold an EC P-256 private key"):
        load_dpop_key(pem_file(tmp_path / "r.pem", rsa_key))
    with pytest.raises(ConfigError, match="must hold an EC P-256 private key"):
        load_dpop_key(pem_file(tmp_path / "p.pem", ec.generate_private_key(ec.SECP384R1())))


def test_key_repr_hides_the_key(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    key = load_signing_key(pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    assert (
        repr(key)
        == f"SigningKey(algorithm='RS256', key_id='kid-2026', origin='file:{tmp_path}/k.pem')"
    )


def test_thumbprint_follows_rfc_7638() -> None:
    key = ephemeral_dpop_key()
    jwk = key.public_jwk()
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}, separators=(",", ":")
    )
    digest = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    assert key.thumbprint() == digest.decode()
    assert set(jwk) == {"kty", "crv", "x", "y"}  # never the private "d"


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_id": ""}, "client_id must be the app's Client ID"),
        ({"client_id": " 0oa1 "}, "client_id must be the app's Client ID"),
        ({"scopes": ()}, "scopes must be non-empty scope names"),
        ({"scopes": ("okta.logs.read okta.users.read",)}, "scopes must be non-empty"),
        ({"key_id": " "}, "key_id is empty"),
        ({"algorithm": "HS256"}, "'HS256' is not one Okta accepts for private_key_jwt"),
        ({"assertion_lifetime": timedelta(0)}, "between 1 second and 1 hour"),
        ({"assertion_lifetime": timedelta(hours=2)}, "between 1 second and 1 hour"),
        ({"dpop_key_file": Path("d.pem")}, "dpop_key_file is set but dpop is false"),
    ],
)
def test_config_mistakes_are_caught_before_any_request(
    changes: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {"client_id": CLIENT_ID, "private_key_file": Path("k.pem")}
    settings.update(changes)
    with pytest.raises(ConfigError, match=message):
        OAuthConfig(**settings)


def test_config_defaults() -> None:
    config = OAuthConfig(CLIENT_ID, Path("k.pem"), scopes=["okta.logs.read"])  # type: ignore[arg-type]
    assert config.scopes == ("okta.logs.read",)
    assert config.assertion_lifetime == timedelta(minutes=5)
    assert (config.dpop, config.dpop_key_file, config.key_id, config.algorithm) == (
        False,
        None,
        None,
        None,
    )


# -- what goes on the wire -----------------------------------------------------------------


def test_client_assertion_claims(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    key = load_signing_key(pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    now = START + timedelta(microseconds=999_999)
    aud = "https://acme.okta.com/oauth2/v1/token"
    first = client_assertion(key, CLIENT_ID, aud, now, timedelta(minutes=5))
    second = client_assertion(key, CLIENT_ID, aud, now, timedelta(minutes=5))
    header = jwt.get_unverified_header(first)
    claims = jwt.decode(
        first,
        rsa_key.public_key(),
        algorithms=["RS256"],
        audience=aud,
        options={"verify_exp": False},
    )
    assert header == {"alg": "RS256", "kid": KID, "typ": "JWT"}
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["iat"] == int(START.timestamp())  # rounded down, never in the future
    assert claims["exp"] == claims["iat"] + 300
    other = jwt.decode(second, options={"verify_signature": False})
    assert claims["jti"] != other["jti"]


def test_dpop_proof_shape() -> None:
    clock = FakeClock(START)
    prover = DPoPProver(ephemeral_dpop_key(), clock)
    url = "https://acme.okta.com/api/v1/logs?since=2026-10-31T00%3A00%3A00Z&limit=1000#frag"
    proof = prover.proof("get", url, access_token="tok", nonce="n-1")
    header = jwt.get_unverified_header(proof)
    public = jwt.PyJWK(header["jwk"]).key
    claims = jwt.decode(proof, public, algorithms=["ES256"])
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert "d" not in header["jwk"] and "kid" not in header
    assert claims["htm"] == "GET"
    assert claims["htu"] == "https://acme.okta.com/api/v1/logs"
    assert claims["iat"] == int(START.timestamp())
    assert claims["nonce"] == "n-1"
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"tok").digest()).rstrip(b"=").decode()
    assert claims["ath"] == expected == ath("tok")
    again = jwt.decode(prover.proof("GET", url), public, algorithms=["ES256"])
    assert again["jti"] != claims["jti"]
    assert "ath" not in again and "nonce" not in again


def test_htu_keeps_scheme_host_port_and_path() -> None:
    assert htu("http://127.0.0.1:8089/api/v1/logs?after=1_2") == "http://127.0.0.1:8089/api/v1/logs"


def test_www_authenticate_parsing() -> None:
    okta = (
        'Bearer authorization_uri="https://acme.okta.com/oauth2/v1/authorize", realm="IdP", '
        'scope="okta.logs.read", error="insufficient_scope", '
        'error_description="The access token provided does not contain the required scopes.", '
        'resource="/api/v1/logs"'
    )
    (challenge,) = parse_challenges(okta)
    assert challenge.scheme == "Bearer"
    assert challenge.error == "insufficient_scope"
    assert challenge.params["resource"] == "/api/v1/logs"
    two = (
        'Bearer realm="x", DPoP algs="ES256 RS256", error="use_dpop_nonce", '
        'error_description="a \\"b\\""'
    )
    parsed = parse_challenges(two)
    assert [c.scheme for c in parsed] == ["Bearer", "DPoP"]
    assert parsed[1].params["error_description"] == 'a "b"'
    assert challenge_error(two) == "use_dpop_nonce"
    assert challenge_error(None) is None
    assert challenge_error("garbage ===") is None

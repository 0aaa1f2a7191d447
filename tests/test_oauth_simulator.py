"""The simulated org's token endpoint and token checks, driven over HTTP with raw requests.

These cover what the client never does on purpose (replayed assertions, assertions valid for
two hours, a proof from the wrong key) so the simulator is known to refuse them as Okta does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ingest.base.clock import FakeClock
from ingest.okta.dpop import DPoPProver
from ingest.okta.keys import SigningKey, ephemeral_dpop_key
from ingest.okta.oauth import ASSERTION_TYPE, client_assertion
from ingest.simulate.oauth import OAuthApp, OAuthSettings
from tests.helpers import START, TOKEN, Sim
from tests.helpers.oauth import CLIENT_ID, KID, app_for, public_pem


def _key(
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str | None = KID
) -> SigningKey:
    algorithm = "RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256"
    return SigningKey(private, algorithm, kid)


def _form(sim: Sim, key: SigningKey, now: Any = START, **claims: Any) -> dict[str, str]:
    assertion = client_assertion(
        key, CLIENT_ID, sim.url + "/oauth2/v1/token", now, timedelta(minutes=5)
    )
    if claims:
        payload = jwt.decode(assertion, options={"verify_signature": False}) | claims
        payload = {k: v for k, v in payload.items() if v is not None}
        assertion = key.sign(payload)
    return {
        "grant_type": "client_credentials",
        "scope": "okta.logs.read",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


def _post(sim: Sim, form: dict[str, str], dpop: str | None = None) -> httpx.Response:
    headers = {"DPoP": dpop} if dpop else {}
    return httpx.post(sim.url + "/oauth2/v1/token", data=form, headers=headers, timeout=5)


def _error(response: httpx.Response) -> tuple[int, str, str]:
    doc = response.json()
    return response.status_code, doc["error"], doc["error_description"]


@pytest.fixture
def sim(oauth_sim: Callable[..., Sim], rsa_key: rsa.RSAPrivateKey) -> Sim:
    return oauth_sim(app_for(rsa_key))


def test_replayed_assertion_is_refused(sim: Sim, rsa_key: rsa.RSAPrivateKey) -> None:
    form = _form(sim, _key(rsa_key))
    first = _post(sim, form)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    assert first.json()["token_type"] == "Bearer"
    assert first.json()["expires_in"] == 3600
    assert _error(_post(sim, form)) == (
        401,
        "invalid_client",
        "The client_assertion 'jti' has already been used.",
    )


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"exp": int(START.timestamp()) + 7200}, "expiration too far into the future"),
        ({"exp": None}, "must have an 'exp' claim"),
        ({"exp": int(START.timestamp()) - 1}, "token is expired"),
        ({"iat": int(START.timestamp()) + 60}, "'iat' claim is in the future"),
        ({"aud": "https://other.okta.com/oauth2/v1/token"}, "must be the endpoint invoked"),
        ({"sub": "0oaSomeoneElse"}, "'sub' claim must equal the client_id"),
        ({"iss": "0oaSomeoneElse"}, "Invalid value for 'client_id' parameter."),
        ({"jti": None}, "must have a 'jti' claim"),
    ],
)
def test_bad_assertion_claims_are_refused(
    sim: Sim, rsa_key: rsa.RSAPrivateKey, claims: dict[str, Any], description: str
) -> None:
    status, error, text = _error(_post(sim, _form(sim, _key(rsa_key), **claims)))
    assert (status, error) == (401, "invalid_client")
    assert description in text


def test_assertion_at_the_one_hour_limit_is_accepted(sim: Sim, rsa_key: rsa.RSAPrivateKey) -> None:
    form = _form(sim, _key(rsa_key), exp=int(START.timestamp()) + 3600)
    assert _post(sim, form).status_code == 200


def test_kid_rules(
    oauth_sim: Callable[..., Sim],
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
) -> None:
    """No kid passes with one registered key; an unknown kid or a wrong key does not."""
    sim = oauth_sim(app_for(rsa_key))
    assert _post(sim, _form(sim, _key(rsa_key, None))).status_code == 200
    assert _error(_post(sim, _form(sim, _key(rsa_key, "nope"))))[2] == (
        "The client_assertion JWT kid is invalid."
    )
    assert _error(_post(sim, _form(sim, _key(other_rsa_key))))[2] == (
        "The client_assertion signature is invalid."
    )


def test_requests_that_are_not_client_credentials_forms(
    sim: Sim, rsa_key: rsa.RSAPrivateKey
) -> None:
    form = _form(sim, _key(rsa_key))
    as_json = httpx.post(sim.url + "/oauth2/v1/token", json=form, timeout=5)
    assert _error(as_json)[:2] == (400, "invalid_request")
    assert _error(_post(sim, form | {"grant_type": "password"}))[:2] == (
        400,
        "unsupported_grant_type",
    )
    assert _error(_post(sim, form | {"client_assertion": "not.a.jwt"}))[:2] == (
        401,
        "invalid_client",
    )
    assert _error(_post(sim, _form(sim, _key(rsa_key)) | {"scope": ""}))[:2] == (
        400,
        "invalid_scope",
    )
    assert sim.org.oauth.outcomes() == {
        "invalid_request": 1,
        "unsupported_grant_type": 1,
        "invalid_client": 1,
        "invalid_scope": 1,
    }


def test_scope_must_be_granted(oauth_sim: Callable[..., Sim], rsa_key: rsa.RSAPrivateKey) -> None:
    sim = oauth_sim(app_for(rsa_key, scopes=frozenset({"okta.users.read"})))
    status, error, text = _error(_post(sim, _form(sim, _key(rsa_key))))
    assert (status, error) == (400, "invalid_scope")
    assert "okta.logs.read" in text


# -- DPoP at the token endpoint ------------------------------------------------------------


@pytest.fixture
def dpop_sim(oauth_sim: Callable[..., Sim], ec_key: ec.EllipticCurvePrivateKey) -> Sim:
    return oauth_sim(app_for(ec_key, requires_dpop=True), api_nonce=True)


def _dpop_token(sim: Sim, key: SigningKey, prover: DPoPProver) -> str:
    url = sim.url + "/oauth2/v1/token"
    challenge = _post(sim, _form(sim, key), prover.proof("POST", url))
    assert _error(challenge)[:2] == (400, "use_dpop_nonce")
    nonce = challenge.headers["dpop-nonce"]
    answer = _post(sim, _form(sim, key), prover.proof("POST", url, nonce=nonce))
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    token: str = answer.json()["access_token"]
    return token


def test_dpop_token_request_flow(dpop_sim: Sim, ec_key: ec.EllipticCurvePrivateKey) -> None:
    """No proof: invalid_dpop_proof; proof without nonce: use_dpop_nonce; then a token."""
    key = _key(ec_key)
    assert _error(_post(dpop_sim, _form(dpop_sim, key))) == (
        400,
        "invalid_dpop_proof",
        "The DPoP proof JWT header is missing.",
    )
    prover = DPoPProver(ephemeral_dpop_key(), FakeClock(START))
    _dpop_token(dpop_sim, key, prover)
    (grant,) = dpop_sim.org.oauth.grants()
    assert grant.jkt == prover.key.thumbprint()


@pytest.mark.parametrize(
    ("method", "path", "clock_offset", "description"),
    [
        ("GET", "/oauth2/v1/token", 0, "'htm' must be POST"),
        ("POST", "/oauth2/v1/authorize", 0, "'htu' does not match"),
        ("POST", "/oauth2/v1/token", -600, "'iat' is not recent"),
    ],
)
def test_bad_token_endpoint_proofs(
    dpop_sim: Sim,
    ec_key: ec.EllipticCurvePrivateKey,
    method: str,
    path: str,
    clock_offset: int,
    description: str,
) -> None:
    prover = DPoPProver(ephemeral_dpop_key(), FakeClock(START + timedelta(seconds=clock_offset)))
    response = _post(
        dpop_sim, _form(dpop_sim, _key(ec_key)), prover.proof(method, dpop_sim.url + path)
    )
    status, error, text = _error(response)
    assert (status, error) == (400, "invalid_dpop_proof")
    assert description in text


def test_proof_with_a_private_jwk_or_wrong_typ_is_refused(
    dpop_sim: Sim, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    dpop_key = ephemeral_dpop_key()
    claims = {
        "htm": "POST",
        "htu": dpop_sim.url + "/oauth2/v1/token",
        "iat": int(START.timestamp()),
        "jti": "j1",
    }
    leaky = dpop_key.sign(claims, {"typ": "dpop+jwt", "jwk": dpop_key.public_jwk() | {"d": "x"}})
    plain = dpop_key.sign(claims | {"jti": "j2"}, {"typ": "JWT", "jwk": dpop_key.public_jwk()})
    form = _form(dpop_sim, _key(ec_key))
    assert "must be a public key" in _error(_post(dpop_sim, form, leaky))[2]
    assert "'typ' header must be 'dpop+jwt'" in _error(_post(dpop_sim, form, plain))[2]


# -- tokens on /api/v1/logs ----------------------------------------------------------------


def _get(sim: Sim, authorization: str, dpop: str | None = None) -> httpx.Response:
    headers = {"Authorization": authorization}
    if dpop:
        headers["DPoP"] = dpop
    return httpx.get(sim.url + "/api/v1/logs?limit=5", headers=headers, timeout=5)


def test_bearer_token_expires_with_e0000011(
    sim: Sim, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    token = _post(sim, _form(sim, _key(rsa_key))).json()["access_token"]
    assert _get(sim, f"Bearer {token}").status_code == 200
    clock.advance(3600)
    expired = _get(sim, f"Bearer {token}")
    assert expired.status_code == 401
    assert expired.json()["errorCode"] == "E0000011"
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert "expired" in expired.headers["www-authenticate"]
    assert expired.headers["x-okta-request-id"]
    assert _get(sim, "Bearer made-up").json()["errorCode"] == "E0000011"


def test_ssws_tokens_keep_working_next_to_oauth(sim: Sim) -> None:
    assert _get(sim, f"SSWS {TOKEN}").status_code == 200
    assert _get(sim, "SSWS wrong").status_code == 401


def test_dpop_token_needs_a_matching_proof_on_the_api(
    dpop_sim: Sim, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    """Binding, ath, htm and the API's own nonce challenge, one refusal at a time."""
    prover = DPoPProver(ephemeral_dpop_key(), FakeClock(START))
    token = _dpop_token(dpop_sim, _key(ec_key), prover)
    logs = dpop_sim.url + "/api/v1/logs"

    def refusal(response: httpx.Response) -> str:
        assert response.status_code == 401, response.text
        assert response.json()["errorCode"] == "E0000011"
        return response.headers["www-authenticate"]

    assert "must be presented with the DPoP scheme" in refusal(_get(dpop_sim, f"Bearer {token}"))
    assert "header is missing" in refusal(_get(dpop_sim, f"DPoP {token}"))
    first = _get(dpop_sim, f"DPoP {token}", prover.proof("GET", logs, access_token=token))
    assert 'error="use_dpop_nonce"' in refusal(first)
    nonce = first.headers["dpop-nonce"]
    other = DPoPProver(ephemeral_dpop_key(), FakeClock(START))
    wrong_key = other.proof("GET", logs, access_token=token, nonce=nonce)
    assert "not the key the access token is bound to" in refusal(
        _get(dpop_sim, f"DPoP {token}", wrong_key)
    )
    wrong_ath = prover.proof("GET", logs, access_token="another", nonce=nonce)
    assert "'ath' does not match" in refusal(_get(dpop_sim, f"DPoP {token}", wrong_ath))
    wrong_htm = prover.proof("POST", logs, access_token=token, nonce=nonce)
    assert "'htm' must be GET" in refusal(_get(dpop_sim, f"DPoP {token}", wrong_htm))
    good = prover.proof("GET", logs + "?ignored=query", access_token=token, nonce=nonce)
    assert _get(dpop_sim, f"DPoP {token}", good).status_code == 200
    replayed = _get(dpop_sim, f"DPoP {token}", good)
    assert "was used before" in refusal(replayed)


def test_insufficient_scope_is_a_403_with_okta_headers(
    oauth_sim: Callable[..., Sim], rsa_key: rsa.RSAPrivateKey
) -> None:
    sim = oauth_sim(app_for(rsa_key, scopes=frozenset({"okta.users.read"})))
    form = _form(sim, _key(rsa_key)) | {"scope": "okta.users.read"}
    token = _post(sim, form).json()["access_token"]
    response = _get(sim, f"Bearer {token}")
    assert response.status_code == 403
    assert response.json()["errorCode"] == "E0000006"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer authorization_uri="{sim.url}/oauth2/v1/authorize"')
    assert 'error="insufficient_scope"' in challenge
    assert 'resource="/api/v1/logs"' in challenge


def test_app_keys_and_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        OAuthApp(CLIENT_ID, ((KID, "not a key"),))
    with pytest.raises(ValueError, match="must be positive"):
        OAuthSettings(token_seconds=0)
    key = ec.generate_private_key(ec.SECP256R1())
    app = OAuthApp(CLIENT_ID, [(KID, public_pem(key))], scopes={"okta.logs.read"})  # type: ignore[arg-type]
    assert app.keys == ((KID, public_pem(key)),)
    assert app.scopes == frozenset({"okta.logs.read"})

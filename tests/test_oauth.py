"""OAuth service-app auth end to end: OAuthAuth + the real OktaClient against the simulator.

Happy paths (RS256/ES256, PEM/JWK, with and without DPoP), token caching and refresh, and
every mistake a user can make, each with the message that tells them what to fix.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ingest.base.clock import FakeClock
from ingest.base.errors import AuthFailed, ConfigError, UnsafeURL
from ingest.okta.client import ClientPolicy, OktaClient
from ingest.okta.oauth import OAuthAuth
from ingest.okta.oauth_config import OAuthConfig
from ingest.okta.urls import OrgURL
from ingest.simulate.oauth import OAuthApp
from tests.helpers import START, Sim
from tests.helpers.oauth import (
    CLIENT_ID,
    KID,
    PrivateKey,
    app_for,
    jwk_dict,
    jwk_file,
    pem_file,
    public_pem,
)


@dataclass
class Wire:
    """Every request and response that crossed one client, for counting and leak checks."""

    requests: list[httpx.Request]
    responses: list[httpx.Response]

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    def token_requests(self) -> int:
        return self.paths().count("/oauth2/v1/token")

    def secrets(self) -> list[str]:
        """Every assertion, proof and access token that was sent or received."""
        found: list[str] = []
        for request in self.requests:
            if request.url.path == "/oauth2/v1/token":
                form = dict(httpx.QueryParams(request.content.decode()))
                found.append(form["client_assertion"])
            found += [request.headers.get(h, "") for h in ("DPoP", "Authorization")]
        for response in self.responses:
            if response.url.path == "/oauth2/v1/token" and response.status_code == 200:
                response.read()
                found.append(response.json()["access_token"])
        return [s.split(" ")[-1] for s in found if s]


@dataclass
class Connected:
    client: OktaClient
    auth: OAuthAuth
    wire: Wire

    def fetch(self) -> Any:
        return self.client.fetch(self.client.org.logs_url)


Connect = Callable[..., Connected]


@pytest.fixture
def connect(clock: FakeClock) -> Iterator[Connect]:
    """Build OktaClient(httpx.Client(auth=OAuthAuth(...))) for a simulator; closes them after."""
    made: list[httpx.Client] = []

    def make(
        sim: Sim,
        config: OAuthConfig,
        auth_clock: FakeClock | None = None,
        http_for_token: httpx.Client | None = None,
    ) -> Connected:
        wire = Wire([], [])
        auth = OAuthAuth(config, sim.url, auth_clock or clock, http_for_token)
        http = httpx.Client(
            auth=auth,
            timeout=5,
            event_hooks={"request": [wire.requests.append], "response": [wire.responses.append]},
        )
        made.append(http)
        policy = ClientPolicy(backoff_initial=0.1, retry_for=5)
        return Connected(OktaClient(OrgURL.parse(sim.url), http, clock, policy), auth, wire)

    yield make
    for http in made:
        http.close()


def failure(connected: Connected) -> AuthFailed:
    with pytest.raises(AuthFailed) as caught:
        connected.fetch()
    return caught.value


# -- happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
@pytest.mark.parametrize("kind", ["rsa-pem", "rsa-jwk", "ec-pem", "ec-jwk"])
def test_service_app_reads_the_system_log(
    kind: str,
    dpop: bool,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """Each key type and file format gets a token and a page; DPoP apps get a bound token."""
    key: PrivateKey = rsa_key if kind.startswith("rsa") else ec_key
    path = (
        pem_file(tmp_path / "app.pem", key)
        if kind.endswith("pem")
        else jwk_file(tmp_path / "app.json", key, KID)
    )
    sim = oauth_sim(app_for(key, requires_dpop=dpop))
    key_id = KID if kind.endswith("pem") else None  # the JWK carries its kid
    connected = connect(sim, OAuthConfig(CLIENT_ID, path, key_id=key_id, dpop=dpop))

    page = connected.fetch()

    assert len(page.decoded) == 3
    assert connected.auth.key.algorithm == ("RS256" if kind.startswith("rsa") else "ES256")
    assert connected.auth.token_scheme == ("DPoP" if dpop else "Bearer")
    (grant,) = sim.org.oauth.grants()
    assert grant.scopes == {"okta.logs.read"}
    if dpop:
        assert connected.auth.prover is not None
        assert grant.jkt == connected.auth.prover.key.thumbprint()  # two implementations agree
        assert sim.org.oauth.outcomes() == {"use_dpop_nonce": 1, "issued": 1}
        assert connected.wire.requests[-1].headers["Authorization"].startswith("DPoP ")
    else:
        assert grant.jkt is None
        assert sim.org.oauth.outcomes() == {"issued": 1}
        assert "DPoP" not in connected.wire.requests[-1].headers


def test_dpop_key_file_is_used_instead_of_an_ephemeral_key(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, oauth_sim: Callable[..., Sim], connect: Connect
) -> None:
    """With dpop_key_file the token is bound to that key's thumbprint."""
    dpop_key = ec.generate_private_key(ec.SECP256R1())
    sim = oauth_sim(app_for(rsa_key, requires_dpop=True))
    config = OAuthConfig(
        CLIENT_ID,
        pem_file(tmp_path / "app.pem", rsa_key),
        key_id=KID,
        dpop=True,
        dpop_key_file=jwk_file(tmp_path / "dpop.json", dpop_key),
    )
    connected = connect(sim, config)
    connected.fetch()
    (grant,) = sim.org.oauth.grants()
    assert connected.auth.prover is not None
    assert connected.auth.prover.key.origin == f"file:{tmp_path / 'dpop.json'}"
    assert grant.jkt == connected.auth.prover.key.thumbprint()


def test_token_is_cached_across_many_requests(
    ec_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """Ten pages cost one token; the API's own DPoP nonce challenge is met once, then kept."""
    sim = oauth_sim(app_for(ec_key, requires_dpop=True), api_nonce=True)
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", ec_key), key_id=KID, dpop=True)
    connected = connect(sim, config)
    for _ in range(10):
        connected.fetch()
    assert connected.wire.token_requests() == 2  # the first one met the nonce challenge
    assert sim.org.oauth.outcomes() == {"use_dpop_nonce": 1, "issued": 1}
    assert sim.org.status_counts() == {401: 1, 200: 10}  # one API nonce challenge, then none


def test_token_is_refreshed_before_it_expires(
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    clock: FakeClock,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """An hour-long token is reused for 50 minutes and replaced 5 minutes before expiry.

    With DPoP the token endpoint's nonce has gone stale by then: it is asked for again.
    """
    sim = oauth_sim(app_for(rsa_key, requires_dpop=True), nonce_seconds=600)
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID, dpop=True)
    connected = connect(sim, config)
    connected.fetch()
    clock.advance(50 * 60)
    connected.fetch()
    assert sim.org.oauth.outcomes() == {"use_dpop_nonce": 1, "issued": 1}
    clock.advance(5 * 60)
    connected.fetch()
    assert sim.org.oauth.outcomes() == {"use_dpop_nonce": 2, "issued": 2}
    assert sim.org.status_counts() == {200: 3}  # never sent an expired token


def test_short_lived_tokens_are_refreshed_at_80_percent(
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    clock: FakeClock,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """A 10-minute token is replaced after 8 minutes (the 5-minute margin would be half)."""
    sim = oauth_sim(app_for(rsa_key), token_seconds=600)
    connected = connect(
        sim, OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    )
    connected.fetch()
    clock.advance(7 * 60 + 59)
    connected.fetch()
    assert sim.org.oauth.outcomes() == {"issued": 1}
    clock.advance(1)
    connected.fetch()
    assert sim.org.oauth.outcomes() == {"issued": 2}


def test_a_rejected_token_is_replaced_once(
    ec_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """After the org revokes the token, the next request gets a 401, a new token, and a 200."""
    sim = oauth_sim(app_for(ec_key, requires_dpop=True))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", ec_key), key_id=KID, dpop=True)
    connected = connect(sim, config)
    connected.fetch()
    sim.org.oauth.revoke_all()
    page = connected.fetch()
    assert len(page.decoded) == 3
    assert sim.org.status_counts() == {200: 2, 401: 1}
    assert sim.org.oauth.outcomes()["issued"] == 2
    assert connected.wire.paths()[-3:] == ["/api/v1/logs", "/oauth2/v1/token", "/api/v1/logs"]


def test_token_requests_can_use_a_separate_client(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, oauth_sim: Callable[..., Sim], connect: Connect
) -> None:
    """With http_for_token the token request goes through that client, not the API client."""
    sim = oauth_sim(app_for(rsa_key))
    seen: list[str] = []
    with httpx.Client(timeout=5, event_hooks={"request": [lambda r: seen.append(r.url.path)]}) as h:
        config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
        connected = connect(sim, config, http_for_token=h)
        connected.fetch()
    assert seen == ["/oauth2/v1/token"]
    assert connected.wire.paths() == ["/api/v1/logs"]


def test_token_endpoint_outage_is_retried_by_the_client(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, clock: FakeClock
) -> None:
    """A 503 from the token endpoint is handed to the client, which backs off and retries."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/oauth2/v1/token":
            if calls.count("/oauth2/v1/token") == 1:
                return httpx.Response(503, text="<html>down</html>")
            doc = {"token_type": "Bearer", "expires_in": 3600, "access_token": "at-1"}
            return httpx.Response(200, json=doc)
        assert request.headers["Authorization"] == "Bearer at-1"
        return httpx.Response(200, json=[])

    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    auth = OAuthAuth(config, "https://acme.okta.com", clock)
    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as http:
        client = OktaClient(OrgURL.parse("https://acme.okta.com"), http, clock, ClientPolicy())
        page = client.fetch(client.org.logs_url)
    assert page.decoded == []
    assert calls == ["/oauth2/v1/token", "/oauth2/v1/token", "/api/v1/logs"]
    assert client.stats.retries == 1


# -- mistakes and their messages -----------------------------------------------------------


def test_wrong_kid(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, oauth_sim: Callable[..., Sim], connect: Connect
) -> None:
    sim = oauth_sim(app_for(rsa_key))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id="kid-old")
    err = failure(connect(sim, config))
    assert err.error_code == "invalid_client"
    assert err.status == 401
    assert "kid is invalid" in (err.error_summary or "")
    assert "public key with kid 'kid-old' is registered on the app" in str(err)
    assert "Public Keys" in str(err)


def test_key_not_registered(
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """Signing with a key whose public half is not on the app fails on the signature."""
    sim = oauth_sim(app_for(rsa_key))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", other_rsa_key), key_id=KID)
    err = failure(connect(sim, config))
    assert err.error_code == "invalid_client"
    assert err.error_summary == "The client_assertion signature is invalid."
    assert "check client_id" in str(err)


def test_no_key_id_works_with_one_key_and_fails_with_two(
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """Without key_id the app must hold a single key; the config warns about it either way."""
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key))
    single = connect(oauth_sim(app_for(rsa_key)), config)
    single.fetch()
    assert any("no key_id" in w for w in single.auth.warnings)
    two_keys = OAuthApp(
        CLIENT_ID, ((KID, public_pem(rsa_key)), ("kid-2", public_pem(other_rsa_key)))
    )
    err = failure(connect(oauth_sim(two_keys), config))
    assert err.error_summary == "The client_assertion JWT kid is invalid."
    assert "matches private_key_file (and set key_id)" in str(err)


def test_wrong_client_id(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, oauth_sim: Callable[..., Sim], connect: Connect
) -> None:
    sim = oauth_sim(app_for(rsa_key))
    config = OAuthConfig("0oaTYPO", pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    err = failure(connect(sim, config))
    assert err.error_code == "invalid_client"
    assert "client_id '0oaTYPO'" in str(err)


def test_clock_two_hours_behind_makes_an_expired_assertion(
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """The message names the clock and by how much it is off (from Okta's Date header)."""
    sim = oauth_sim(app_for(rsa_key))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    err = failure(connect(sim, config, auth_clock=FakeClock(START - timedelta(hours=2))))
    assert err.error_summary == "The client_assertion token is expired."
    assert "clock is about 120 min behind Okta's" in str(err)


def test_clock_ahead_makes_iat_in_the_future(
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    sim = oauth_sim(app_for(rsa_key))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    err = failure(connect(sim, config, auth_clock=FakeClock(START + timedelta(minutes=10))))
    assert err.error_summary == "The client_assertion 'iat' claim is in the future."
    assert "about 10 min ahead of Okta's" in str(err)


def test_hour_long_assertion_fails_with_a_slightly_fast_clock(
    rsa_key: rsa.RSAPrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """exp = now + 1h is at Okta's limit: 3 seconds of clock drift push it over."""
    sim = oauth_sim(app_for(rsa_key))
    config = OAuthConfig(
        CLIENT_ID,
        pem_file(tmp_path / "k.pem", rsa_key),
        key_id=KID,
        assertion_lifetime=timedelta(hours=1),
    )
    err = failure(connect(sim, config, auth_clock=FakeClock(START + timedelta(seconds=3))))
    assert err.error_summary == (
        "The client_assertion token has an expiration too far into the future."
    )
    assert "the machine's clock" in str(err)


def test_assertion_lifetime_over_an_hour_is_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="assertion_lifetime must be between 1 second and 1 hour"):
        OAuthConfig(CLIENT_ID, tmp_path / "k.pem", assertion_lifetime=timedelta(hours=2))


def test_scope_not_granted_at_the_token_endpoint(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, oauth_sim: Callable[..., Sim], connect: Connect
) -> None:
    sim = oauth_sim(app_for(rsa_key, scopes=frozenset({"okta.users.read"})))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    err = failure(connect(sim, config))
    assert err.error_code == "invalid_scope"
    assert err.status == 400
    assert (
        "grant okta.logs.read to the app in Okta Admin Console > Applications > Applications > "
        "the app > Okta API Scopes"
    ) in str(err)


def test_token_without_the_logs_scope_is_refused_by_the_api(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, oauth_sim: Callable[..., Sim], connect: Connect
) -> None:
    """Asking for another scope gets a token, then 403 insufficient_scope on /api/v1/logs."""
    sim = oauth_sim(app_for(rsa_key, scopes=frozenset({"okta.users.read", "okta.logs.read"})))
    config = OAuthConfig(
        CLIENT_ID,
        pem_file(tmp_path / "k.pem", rsa_key),
        key_id=KID,
        scopes=("okta.users.read",),
    )
    connected = connect(sim, config)
    assert any("do not include okta.logs.read" in w for w in connected.auth.warnings)
    err = failure(connected)
    assert err.status == 403
    assert err.error_code == "E0000006"
    assert "the access token lacks the okta.logs.read scope" in str(err)
    assert 'error="insufficient_scope"' in str(err)  # the WWW-Authenticate header is shown
    assert err.request_id


def test_app_without_an_admin_role_is_refused_by_the_api(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, oauth_sim: Callable[..., Sim], connect: Connect
) -> None:
    sim = oauth_sim(app_for(rsa_key, admin_role=False))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    err = failure(connect(sim, config))
    assert err.status == 403
    assert "assign the app an admin role" in str(err)


def test_dpop_required_but_not_configured(
    ec_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    sim = oauth_sim(app_for(ec_key, requires_dpop=True))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", ec_key), key_id=KID)
    err = failure(connect(sim, config))
    assert err.error_code == "invalid_dpop_proof"
    assert err.error_summary == "The DPoP proof JWT header is missing."
    assert str(err).startswith("the app requires DPoP: set dpop = true")


def test_dpop_when_the_app_does_not_require_it_still_binds_the_token(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, oauth_sim: Callable[..., Sim], connect: Connect
) -> None:
    sim = oauth_sim(app_for(rsa_key))
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID, dpop=True)
    connected = connect(sim, config)
    connected.fetch()
    assert connected.auth.token_scheme == "DPoP"


def test_a_dpop_proof_the_api_keeps_refusing_is_reported(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, clock: FakeClock
) -> None:
    """An API that rejects the proof with a brand-new token: no pointless refresh, AuthFailed."""
    calls: list[str] = []
    challenge = 'DPoP error="invalid_dpop_proof", error_description="bad proof"'

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/oauth2/v1/token":
            doc = {"token_type": "DPoP", "expires_in": 3600, "access_token": "at"}
            return httpx.Response(200, json=doc)
        return httpx.Response(401, headers={"WWW-Authenticate": challenge}, json={})

    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID, dpop=True)
    auth = OAuthAuth(config, "https://acme.okta.com", clock)
    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as http:
        client = OktaClient(OrgURL.parse("https://acme.okta.com"), http, clock, ClientPolicy())
        with pytest.raises(AuthFailed) as caught:
            client.fetch(client.org.logs_url)
    assert calls == ["/oauth2/v1/token", "/api/v1/logs"]
    assert "Okta rejected the DPoP proof sent with the access token" in str(caught.value)
    assert challenge in str(caught.value)


def test_same_key_for_dpop_and_client_assertion_is_refused(
    ec_key: ec.EllipticCurvePrivateKey, tmp_path: Path, clock: FakeClock
) -> None:
    path = pem_file(tmp_path / "k.pem", ec_key)
    config = OAuthConfig(CLIENT_ID, path, key_id=KID, dpop=True, dpop_key_file=path)
    with pytest.raises(ConfigError, match="DPoP needs a separate EC P-256 key"):
        OAuthAuth(config, "https://acme.okta.com", clock)


def test_key_file_readable_by_others_is_warned_about(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, clock: FakeClock
) -> None:
    path = pem_file(tmp_path / "k.pem", rsa_key)
    path.chmod(0o644)
    auth = OAuthAuth(OAuthConfig(CLIENT_ID, path, key_id=KID), "https://acme.okta.com", clock)
    assert path.stat().st_mode & stat.S_IROTH
    assert f"secret file {path} is readable by other users; chmod 600 it" in auth.warnings
    path.chmod(0o600)
    quiet = OAuthAuth(OAuthConfig(CLIENT_ID, path, key_id=KID), "https://acme.okta.com", clock)
    assert quiet.warnings == []


def test_plain_http_org_is_refused_outside_loopback(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, clock: FakeClock
) -> None:
    """The assertion and the token would travel in clear text."""
    config = OAuthConfig(CLIENT_ID, pem_file(tmp_path / "k.pem", rsa_key), key_id=KID)
    with pytest.raises(UnsafeURL, match="refusing plain http"):
        OAuthAuth(config, "http://acme.okta.com", clock)


# -- nothing secret in errors or reprs -----------------------------------------------------


def test_no_key_assertion_or_token_text_in_errors_or_reprs(
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    tmp_path: Path,
    clock: FakeClock,
    oauth_sim: Callable[..., Sim],
    connect: Connect,
) -> None:
    """Run every failing scenario and look for any secret in every message and repr."""
    key_pem = pem_file(tmp_path / "k.pem", rsa_key)
    ec_pem = pem_file(tmp_path / "ec.pem", ec_key)
    scenarios = [
        (app_for(rsa_key), OAuthConfig(CLIENT_ID, key_pem, key_id="nope"), None),
        (app_for(rsa_key), OAuthConfig("0oaX", key_pem, key_id=KID), None),
        (
            app_for(rsa_key),
            OAuthConfig(CLIENT_ID, key_pem, key_id=KID),
            FakeClock(START - timedelta(hours=2)),
        ),
        (
            app_for(rsa_key, scopes=frozenset({"okta.users.read"})),
            OAuthConfig(CLIENT_ID, key_pem, key_id=KID),
            None,
        ),
        (
            app_for(ec_key, scopes=frozenset({"okta.users.read"})),
            OAuthConfig(CLIENT_ID, ec_pem, key_id=KID, scopes=("okta.users.read",), dpop=True),
            None,
        ),
        (app_for(ec_key, requires_dpop=True), OAuthConfig(CLIENT_ID, ec_pem, key_id=KID), None),
    ]
    texts: list[str] = []
    secrets: list[str] = []
    for app, config, auth_clock in scenarios:
        connected = connect(oauth_sim(app), config, auth_clock=auth_clock)
        err = failure(connected)
        texts += [str(err), repr(err), repr(connected.auth), repr(config), repr(connected.auth.key)]
        secrets += connected.wire.secrets()
        if connected.auth.prover is not None:
            texts.append(repr(connected.auth.prover))
    for key in (rsa_key, ec_key):
        body = jwk_dict(key)["d"]
        secrets += [body, body[:16]]
    secrets += [
        line for line in key_pem.read_text().splitlines() if line and not line.startswith("---")
    ]
    assert len(secrets) > 20
    joined = "\n".join(texts)
    for secret in secrets:
        assert secret[:24] not in joined

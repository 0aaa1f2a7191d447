"""An org served over HTTPS: the source's ``ca_bundle`` vouches for its certificate, every
client with the same TLS settings shares one SSL context (each holds the CA certificates:
~0.7 MB a client, 36 MB for a daemon of 50 orgs), and an org the bundle does not vouch for
fails in one line without a page stored."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import OktaduckError
from ingest.collect.connect import open_client
from ingest.collect.poll import poll_cycle
from ingest.mapping import CompiledMapping
from ingest.okta.transport import shared_ssl_context
from ingest.simulate.org import OrgConfig, SimulatedOrg
from ingest.simulate.server import SimulatorServer
from ingest.store.db import Store
from tests.helpers import TOKEN, Sim, source_for, stored_uuids
from tests.receivers import TlsFiles, self_signed

pytestmark = pytest.mark.usefixtures("token_env")


@pytest.fixture
def https_sim(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Sim, TlsFiles]]:
    files = self_signed(tmp_path / "tls", "org")
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(files.cert, files.key)
    org = SimulatedOrg(OrgConfig(tokens=frozenset({TOKEN}), limit=0, seed=3, now=clock.now))
    now = clock.now()
    org.add(org.generator.stream(120, now - timedelta(hours=3), now - timedelta(minutes=5)))
    sim = Sim(org, SimulatorServer(org, tls=server_side), clock)
    yield sim, files
    sim.server.stop()


def test_a_source_with_a_ca_bundle_polls_an_https_org_on_a_shared_context(
    https_sim: tuple[Sim, TlsFiles], tmp_path: Path, clock: FakeClock, mapping: CompiledMapping
) -> None:
    sim, files = https_sim
    assert sim.url.startswith("https://127.0.0.1:")
    source = source_for(sim, ca_bundle=files.cert)
    other = dataclasses.replace(source, name="other")
    clients = [open_client(s, clock) for s in (source, other)]
    try:
        contexts = {id(c.http._transport._inner._pool._ssl_context) for c in clients}  # type: ignore[attr-defined]
        assert contexts == {id(shared_ssl_context(str(files.cert)))}
        with Store(tmp_path / "okta.duckdb", mapping) as store:
            result = poll_cycle(source, store, clients[0], clock)
            assert result.caught_up and result.stored == 120
            assert sorted(stored_uuids(store)) == sorted(sim.org.visible_uuids())
    finally:
        for c in clients:
            c.http.close()


def test_an_org_the_bundle_does_not_vouch_for_fails_in_one_line_storing_nothing(
    https_sim: tuple[Sim, TlsFiles], tmp_path: Path, clock: FakeClock, mapping: CompiledMapping
) -> None:
    sim, _ = https_sim
    stranger = self_signed(tmp_path / "other", "stranger")  # a CA that signed nothing here
    for source in (source_for(sim), source_for(sim, ca_bundle=stranger.cert)):
        client = open_client(dataclasses.replace(source, timeout=5.0), clock)
        try:
            with Store(tmp_path / "okta.duckdb", mapping) as store:
                with pytest.raises(OktaduckError) as caught:
                    poll_cycle(source, store, client, clock)
                assert stored_uuids(store) == []
        finally:
            client.http.close()
        message = str(caught.value)
        assert "certificate" in message.lower() and "\n" not in message, message
        assert TOKEN not in message

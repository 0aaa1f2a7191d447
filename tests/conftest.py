"""Shared fixtures: a simulated Okta org served over HTTP on 127.0.0.1, real DuckDB files.

The building blocks (simulator, CLI and daemon runners, store readers) are in tests/helpers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ingest.base.clock import FakeClock
from ingest.collect.connect import open_client
from ingest.collect.settings import SourceConfig
from ingest.config import normalized_mapping_path
from ingest.mapping import CompiledMapping, load_mapping
from ingest.okta.client import OktaClient
from ingest.simulate.oauth import OAuthApp, OAuthSettings
from ingest.store.db import Store
from ingest.store.lake import LakeConfig
from tests.helpers import START, TOKEN, TOKEN_ENV, Sim, make_sim, mark_slow_by_fixture, reap_daemons
from tests.helpers.feeds import Dataset, connect, shared_dataset
from tests.helpers.lake import PostgresCluster, make_lake, postgres_cluster


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Sim]:
    """A simulated org on the fake clock, rate limit off."""
    s = make_sim(clock)
    yield s
    s.server.stop()


@pytest.fixture
def live_sim() -> Iterator[Sim]:
    """A simulated org on the real clock, for subprocess tests."""
    s = make_sim(None)
    yield s
    s.server.stop()


@pytest.fixture(scope="session")
def mapping() -> CompiledMapping:
    return load_mapping(normalized_mapping_path())


@pytest.fixture
def store(
    tmp_path: Path, mapping: CompiledMapping, request: pytest.FixtureRequest
) -> Iterator[Store]:
    """An open store in a fresh DuckDB file (``tmp_path / "okta.duckdb"``), closed after.
    Parametrized indirectly (``ON_EVERY_STORE`` in tests/helpers/lake.py) it is a new lake
    of that catalog kind instead, for the tests that must hold on both stores."""
    kind = getattr(request, "param", "file")
    target: Path | LakeConfig = tmp_path / "okta.duckdb"
    if kind != "file":
        target = request.getfixturevalue("new_lake")(kind)
    with Store(target, mapping) as opened:
        yield opened


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on 127.0.0.1, one per test worker."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def new_lake(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., LakeConfig]:
    """``new_lake(kind, **options)``: a new, empty lake with its data under ``tmp_path``;
    kind is "postgres" (starts the session's cluster on first use), "sqlite" or "duckdb"."""
    made = itertools.count(1)

    def make(kind: str = "postgres", **options: Any) -> LakeConfig:
        cluster = request.getfixturevalue("pg_cluster") if kind == "postgres" else None
        return make_lake(kind, tmp_path / f"lake{next(made)}", cluster, **options)

    return make


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN_ENV


@pytest.fixture
def client_for() -> Iterator[Callable[[SourceConfig, Any], OktaClient]]:
    made: list[OktaClient] = []

    def make(source: SourceConfig, clock: Any) -> OktaClient:
        client = open_client(source, clock)
        made.append(client)
        return client

    yield make
    for c in made:
        c.http.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_slow_by_fixture(items)


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test() -> Iterator[None]:
    yield
    reap_daemons()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """The feeds' data set (tests/helpers/feeds.py), built once per session (per xdist worker)."""
    return shared_dataset(tmp_path_factory)


@pytest.fixture(scope="module", params=["file", "lake"])
def con(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A reader's connection to the feeds' data set, once in a DuckDB file and once in a lake
    (a DuckDB-file catalog): every feed test runs on both stores."""
    connection = connect(shared_dataset(tmp_path_factory, request.param))
    yield connection
    connection.close()


# -- OAuth service apps (tests/helpers/oauth.py) ---------------------------------------------


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def oauth_sim(clock: FakeClock) -> Iterator[Callable[..., Sim]]:
    """A simulator on the fake clock with the given OAuth apps and settings."""
    made: list[Sim] = []

    def make(*apps: OAuthApp, **settings: Any) -> Sim:
        sim = make_sim(clock, oauth=OAuthSettings(apps=apps, **settings))
        sim.org.add(sim.org.generator.stream(3, START - timedelta(hours=1), START))
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.server.stop()

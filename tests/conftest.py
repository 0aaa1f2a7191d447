"""Shared fixtures: a simulated Okta org served over HTTP on 127.0.0.1, real DuckDB files.

The building blocks (simulator, CLI and daemon runners, store readers) are in tests/helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest.clock import FakeClock
from ingest.config import SourceConfig, normalized_mapping_path
from ingest.mapping import CompiledMapping, load_mapping
from ingest.okta.client import OktaClient
from ingest.okta.session import open_client
from ingest.store.db import Store
from tests.helpers import START, TOKEN, TOKEN_ENV, Sim, make_sim, reap_daemons
from tests.helpers.feeds import Dataset, connect, shared_dataset


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
def store(tmp_path: Path, mapping: CompiledMapping) -> Iterator[Store]:
    """An open store in a fresh DuckDB file (``tmp_path / "okta.duckdb"``), closed after."""
    with Store(tmp_path / "okta.duckdb", mapping) as opened:
        yield opened


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


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test() -> Iterator[None]:
    yield
    reap_daemons()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """The feeds' data set (tests/helpers/feeds.py), built once per session (per xdist worker)."""
    return shared_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def con(data: Dataset) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the feeds' data set."""
    connection = connect(data)
    yield connection
    connection.close()

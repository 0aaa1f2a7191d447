"""``oktaduck poll`` and ``backfill`` with a config that names a lake write to the lake;
``--db FILE`` writes to that file instead and leaves the lake alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.mapping import CompiledMapping
from ingest.store.db import Store
from ingest.store.lake import LakeConfig
from tests.helpers import TOKEN, Sim, daemon_toml, run_cli, stored_uuids
from tests.helpers.lake import free_port, lake_toml

pytestmark = pytest.mark.slow  # real oktaduck processes

ENV = {"ACME_TOKEN": TOKEN}


def lake_config(tmp_path: Path, sim: Sim, lake: LakeConfig) -> Path:
    return daemon_toml(
        tmp_path / "oktaduck.toml",
        [("acme", sim.url)],
        token_env="ACME_TOKEN",
        source_keys="page_limit = 100",
        extra=lake_toml(lake),
    )


def lake_uuids(lake: LakeConfig, mapping: CompiledMapping) -> list[str]:
    with Store(lake, mapping) as store:
        return stored_uuids(store)


def test_backfill_then_poll_fill_the_lake_and_db_names_a_file_instead(
    live_sim: Sim, tmp_path: Path, new_lake: Callable[..., LakeConfig], mapping: CompiledMapping
) -> None:
    now = datetime.now(UTC)
    gen = live_sim.org.generator
    live_sim.org.add(gen.stream(350, now - timedelta(hours=5), now - timedelta(minutes=1)))
    lake = new_lake("postgres")
    config = lake_config(tmp_path, live_sim, lake)

    backfill = run_cli("backfill", "--config", str(config), "--source", "acme", "--since", "6h",
                       env=ENV)  # fmt: skip
    assert backfill.returncode == 0, backfill.stderr
    assert "350 stored" in backfill.stdout
    assert not (tmp_path / "okta.duckdb").exists()  # the config's storage.path is not used
    assert sorted(lake_uuids(lake, mapping)) == sorted(live_sim.org.visible_uuids())

    poll = run_cli("poll", "--config", str(config), env=ENV)
    assert poll.returncode == 0, poll.stderr
    assert "0 stored" in poll.stdout  # resumed from the cursor the backfill left

    file = tmp_path / "elsewhere.duckdb"
    to_file = run_cli("poll", "--config", str(config), "--db", str(file), env=ENV)
    assert to_file.returncode == 0, to_file.stderr
    assert sorted(stored_uuids(file)) == sorted(live_sim.org.visible_uuids())
    assert len(lake_uuids(lake, mapping)) == 350  # the lake saw none of that


def test_a_catalog_that_cannot_be_reached_is_one_line_saying_why(
    tmp_path: Path, live_sim: Sim
) -> None:
    closed = free_port()  # nothing listens there
    lake = LakeConfig(
        catalog=f"postgres:dbname=lake host=127.0.0.1 port={closed} user=lake",
        data=str(tmp_path / "data"),
    )
    poll = run_cli("poll", "--config", str(lake_config(tmp_path, live_sim, lake)), env=ENV)
    assert poll.returncode == 1
    assert poll.stderr == (
        f"oktaduck: error: lake postgres:dbname=lake host=127.0.0.1 port={closed} user=lake "
        f"(data {tmp_path / 'data'}): cannot reach the catalog: Connection refused\n"
    )
    assert live_sim.org.request_urls() == []  # nothing fetched

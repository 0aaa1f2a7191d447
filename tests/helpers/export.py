"""Helpers the export tests share: a store filled through ``oktaduck poll``, the daemon
configuration with sinks, and a RELP sink aimed at a local port."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.base.clock import FakeClock
from ingest.export.sinks import RelpSink, SyslogSinkConfig
from ingest.store.lake import LakeConfig, connect_lake, open_cursor
from tests.helpers import TOKEN, Sim, acme_config, run_cli, stored_uuids
from tests.helpers.lake import lake_toml


def fill(sim: Sim, db: Path, count: int = 1200) -> list[str]:
    """Add ``count`` events of the last six hours to a live simulator, poll them into ``db``
    with the CLI and return the stored uuids."""
    now = datetime.now(UTC)
    sim.org.add(
        sim.org.generator.stream(count, now - timedelta(hours=6), now - timedelta(minutes=1))
    )
    out = run_cli("poll", "--org", sim.url, "--db", str(db), env={"OKTA_API_TOKEN": TOKEN})
    assert out.returncode == 0, out.stderr
    return stored_uuids(db)


def filled_store(
    sim: Sim, tmp_path: Path, lake: LakeConfig | None, sinks: str = "", count: int = 1200
) -> tuple[Path, list[str], tuple[str, ...]]:
    """A store filled like ``fill``: the file ``tmp_path/okta.duckdb`` or ``lake``. Returns
    the config (``sinks`` in it, the source at the simulator, the lake as its store), the
    stored uuids and the arguments that name the store to a reading command."""
    config = export_config(tmp_path, sinks + (lake_toml(lake) if lake else ""), sim)
    if lake is None:
        db = tmp_path / "okta.duckdb"
        return config, fill(sim, db, count), ("--db", str(db))
    now = datetime.now(UTC)
    sim.org.add(
        sim.org.generator.stream(count, now - timedelta(hours=6), now - timedelta(minutes=1))
    )
    out = run_cli("poll", "--config", str(config), env={"ACME_TOKEN": TOKEN})
    assert out.returncode == 0, out.stderr
    con = connect_lake(lake, read_only=True)
    try:
        uuids = [r[0] for r in open_cursor(con).execute("SELECT uuid FROM events").fetchall()]
    finally:
        con.close()
    return config, uuids, ("--store", lake.catalog)


def export_config(tmp_path: Path, sinks: str, sim: Sim | None = None) -> Path:
    """``tmp_path/oktaduck.toml``: the store ``okta.duckdb`` beside it, one source (the
    simulator, or an org never polled) and the given ``[[sinks]]`` tables."""
    return acme_config(tmp_path, sim.url if sim else "https://acme.okta.com", sinks)


def relp_sink(port: int, clock: FakeClock | None = None, **options: Any) -> RelpSink:
    """A RELP sink for 127.0.0.1:``port`` (timeout 5 s unless given)."""
    options.setdefault("timeout", 5.0)
    return RelpSink(SyslogSinkConfig("127.0.0.1", port, protocol="relp", **options), clock)

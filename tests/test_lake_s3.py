"""A lake whose data files are on S3, through DuckDB's httpfs: poll, query and export work
as on a folder, with the keys from the environment and file access kept to the lake's
prefix. A protocol check against ``moto_server``, an emulator of the S3 API on 127.0.0.1
(``tests/helpers/s3.py``), not against any provider's service."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import LakeUnavailable
from ingest.collect.poll import poll_cycle
from ingest.export.deliver import Delivery, export_cycle
from ingest.export.sinks import FileSink, FileSinkConfig
from ingest.mapping import CompiledMapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import Store
from ingest.store.lake import LakeConfig, S3Config, connect_lake
from tests.helpers import TOKEN, TOKEN_ENV, Sim, run_cli, source_for
from tests.helpers.lakedata import commit_events

pytest.importorskip("moto.server", reason="the S3 tests need moto[server] (the dev extra)")

from tests.helpers.s3 import KEY_ID, SECRET, S3Server, moto_server

pytestmark = pytest.mark.slow  # a server in a subprocess


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server() as server:
        server.bucket("okta-lake")
        yield server


@pytest.fixture
def s3_lake(
    s3: S3Server,
    new_lake: Callable[..., LakeConfig],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> LakeConfig:
    """A new lake with its catalog in a DuckDB file and its data under a prefix of its own
    in the bucket, the keys named by environment variables."""
    monkeypatch.setenv("TEST_S3_KEY_ID", KEY_ID)
    monkeypatch.setenv("TEST_S3_SECRET", SECRET)
    settings = S3Config(
        endpoint=s3.endpoint,
        url_style="path",
        use_ssl=False,
        key_id_env="TEST_S3_KEY_ID",
        secret_env="TEST_S3_SECRET",
    )
    lake = new_lake("duckdb")
    return replace(lake, data=f"s3://okta-lake/{request.node.name[:40]}/", s3=settings)


def test_poll_query_and_export_on_a_lake_on_s3(
    s3: S3Server,
    s3_lake: LakeConfig,
    sim: Sim,
    clock: FakeClock,
    token_env: str,
    client_for: Any,
    mapping: CompiledMapping,
    tmp_path: Path,
) -> None:
    now = clock.now()
    events = sim.org.generator.stream(700, now - timedelta(hours=20), now - timedelta(minutes=1))
    sim.org.add(events)
    served = {e["uuid"] for e in events}
    source = source_for(sim, page_limit=200)
    with Store(s3_lake, mapping) as store:
        result = poll_cycle(source, store, client_for(source, clock), clock)
        assert result.stored == 700
    prefix = s3_lake.data.removeprefix("s3://okta-lake/")  # type: ignore[union-attr]
    keys = s3.keys("okta-lake", prefix)
    assert any("/event_rows/" in key and key.endswith(".parquet") for key in keys), keys

    # a reader: the lake attached read-only, the data read from S3
    reader = connect_lake(replace(s3_lake, data=None), read_only=True)
    try:
        assert reader.execute("SELECT count(*), count(DISTINCT uuid) FROM events").fetchall() == [
            (700, 700)
        ]
        assert {r[0] for r in reader.execute("SELECT uuid FROM events").fetchall()} == served
        # files beside the lake's prefix stay out of reach of its SQL
        with pytest.raises(duckdb.Error, match=r"(?i)permission|not allowed|disabled"):
            reader.execute(
                "SELECT count(*) FROM read_parquet('s3://okta-lake/elsewhere/*.parquet')"
            )
    finally:
        reader.close()

    out = tmp_path / "out"
    with Store(s3_lake, mapping) as store:
        done = export_cycle(
            Delivery(sink="files", batch_events=250, retry_for=0),
            store,
            FileSink(FileSinkConfig(out), clock),
            clock,
        )
    assert done.delivered == 700 and done.caught_up
    lines = [
        line for path in sorted(out.glob("*.ndjson")) for line in path.read_bytes().splitlines()
    ]
    assert Counter(orjson.loads(line)["uuid"] for line in lines) == Counter(served)


def test_a_missing_bucket_fails_the_commit_in_one_line_and_stores_nothing(
    s3_lake: LakeConfig, mapping: CompiledMapping, clock: FakeClock
) -> None:
    events = EventGenerator(seed=2).stream(300, clock.now() - timedelta(hours=2), clock.now())
    missing = replace(s3_lake, data="s3://no-such-bucket/lake/")
    with Store(missing, mapping) as store:
        with pytest.raises(LakeUnavailable) as caught:  # 300 rows: past inlining, to S3
            commit_events(store, events, clock.now(), page=300)
        assert store.con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
        assert store.con.execute("SELECT count(*) FROM cursors").fetchall() == [(0,)]
    text = str(caught.value)
    assert "\n" not in text and len(text) < 500 and SECRET not in text
    assert "no-such-bucket" in text or "404" in text, text


def test_the_commands_take_the_s3_settings_from_the_config_file(
    s3: S3Server, s3_lake: LakeConfig, live_sim: Sim, tmp_path: Path
) -> None:
    """``poll``, ``sql`` and ``export`` in subprocesses, the lake and its S3 keys named only
    in the config file and the environment."""
    now = datetime.now(UTC)
    events = live_sim.org.generator.stream(
        300, now - timedelta(hours=3), now - timedelta(minutes=2)
    )
    live_sim.org.add(events)
    settings = s3_lake.s3
    assert settings is not None
    config = tmp_path / "oktaduck.toml"
    config.write_text(
        f'[storage.lake]\ncatalog = "{s3_lake.catalog}"\ndata = "{s3_lake.data}"\n\n'
        f'[storage.lake.s3]\nendpoint = "{settings.endpoint}"\nurl_style = "path"\n'
        'use_ssl = false\nkey_id_env = "TEST_S3_KEY_ID"\nsecret_env = "TEST_S3_SECRET"\n\n'
        f'[[sources]]\nname = "acme"\norg_url = "{live_sim.url}"\ntoken_env = "{TOKEN_ENV}"\n'
    )
    env = {TOKEN_ENV: TOKEN, "TEST_S3_KEY_ID": KEY_ID, "TEST_S3_SECRET": SECRET}
    polled = run_cli("poll", "--config", str(config), env=env)
    assert polled.returncode == 0, polled.stderr
    asked = run_cli(
        "sql", "--config", str(config), "--format", "csv",
        "SELECT count(*) AS n, count(DISTINCT uuid) AS d FROM events", env=env,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.split() == ["n,d", "300,300"]
    out = tmp_path / "all.ndjson"
    sent = run_cli(
        "export", "--config", str(config), "--to", f"file:{out}", "--since", "1d", env=env
    )
    assert sent.returncode == 0, sent.stderr
    got = Counter(orjson.loads(line)["uuid"] for line in out.read_bytes().splitlines())
    assert got == Counter(e["uuid"] for e in events)
    for done in (polled, asked, sent):
        assert SECRET not in done.stdout + done.stderr

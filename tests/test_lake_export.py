"""Export, remap and retention on a lake: a sink's cursor is an append-only log behind
``export_cursors`` with one owner at a time, remap updates ``event_rows`` in place by row id,
and retention drops whole days of files."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from ingest.base.clock import FakeClock
from ingest.base.errors import SinkUnavailable
from ingest.config import normalized_mapping_path
from ingest.export.deliver import Delivery, export_cycle
from ingest.export.sinks import FileSink, FileSinkConfig
from ingest.mapping import CompiledMapping, load_mapping
from ingest.simulate.generator import EventGenerator
from ingest.store.db import Store
from ingest.store.lake import LakeConfig
from ingest.store.remap import remap
from ingest.store.retention import apply_retention
from tests.helpers.lakedata import commit_events

START = datetime(2026, 3, 1, tzinfo=UTC)
NewLake = Callable[..., LakeConfig]


class FailingAfter:
    """A file sink that refuses every batch after its first ``batches``."""

    name = "files"

    def __init__(self, inner: FileSink, batches: int) -> None:
        self.inner = inner
        self.left = batches

    def send(self, lines: Sequence[bytes]) -> None:
        if self.left <= 0:
            raise SinkUnavailable("receiver down")
        self.left -= 1
        self.inner.send(lines)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


def exported(folder: Path) -> Counter[str]:
    return Counter(
        orjson.loads(line)["uuid"]
        for path in sorted(folder.glob("oktaduck-*.ndjson"))
        for line in path.read_bytes().splitlines()
    )


@pytest.mark.slow  # the PostgreSQL cluster
def test_a_sink_of_a_lake_gets_every_event_once_across_owners_and_resumes(
    new_lake: NewLake, mapping: CompiledMapping, tmp_path: Path
) -> None:
    lake = new_lake("postgres")
    clock = FakeClock(START)
    events = EventGenerator(seed=11).stream(500, START - timedelta(days=2), START)
    out = tmp_path / "out"
    delivery = Delivery(sink="files", batch_events=100, retry_for=0)
    with (
        Store(replace(lake, owner="poller"), mapping) as writer,
        Store(replace(lake, owner="exporter-2"), mapping) as second,
    ):
        commit_events(writer, events[:300], START, page=100)
        first = Store(replace(lake, owner="exporter-1"), mapping)
        sink = FailingAfter(FileSink(FileSinkConfig(out), clock), batches=2)
        try:
            result = export_cycle(delivery, first, sink, clock)
            assert (result.delivered, result.batches, result.error) == (200, 2, "receiver down")
            commit_events(writer, events[300:], START, page=100)
            # the first holds the sink: the second delivers nothing
            other = FileSink(FileSinkConfig(tmp_path / "other"), clock)
            refused = export_cycle(delivery, second, other, clock)
            other.close()
            assert refused.delivered == 0 and not exported(tmp_path / "other")
            assert refused.error is not None and "exporter-1" in refused.error
            assert refused.owned_elsewhere and not result.owned_elsewhere
        finally:
            sink.close()
            first.close()  # gives the sink's lease up
        rest = FileSink(FileSinkConfig(out), clock)
        try:
            done = export_cycle(delivery, second, rest, clock)
        finally:
            rest.close()
        assert (done.delivered, done.error, done.caught_up) == (300, None, True)
        row = second.con.execute(
            "SELECT last_seq, delivered, batches, last_error FROM export_cursors "
            "WHERE sink = 'files'"
        ).fetchall()
        newest = second.con.execute("SELECT max(ingest_seq) FROM events").fetchall()[0][0]
        # the failure was logged in a row of its own, then cleared by the next success
        errors = second.con.execute(
            "SELECT count(last_error) FROM export_cursor_log WHERE sink = 'files'"
        ).fetchall()[0][0]
    assert row == [(newest, 500, 5, None)]
    assert errors == 1
    got = exported(out)
    assert set(got) == {e["uuid"] for e in events}
    assert max(got.values()) == 1


def test_remap_on_a_lake_updates_rows_in_place_and_keeps_their_ingest_seq(
    new_lake: NewLake, mapping: CompiledMapping, tmp_path: Path
) -> None:
    lake = new_lake("sqlite")
    events = EventGenerator(seed=12).stream(300, START - timedelta(days=1), START)
    with Store(lake, mapping) as store:
        commit_events(store, events, START, page=100)
        before = store.con.execute("SELECT ingest_seq, uuid FROM events ORDER BY 1").fetchall()
    folder = tmp_path / "mappings"
    shutil.copytree(normalized_mapping_path().parents[1], folder)
    v2 = folder / "okta" / "normalized.toml"
    v2.write_text(
        v2.read_text()
        + '\n[fields.ua_raw_copy]\npath = "$.client.userAgent.rawUserAgent"\ntype = "string"\n'
        'doc = "client.userAgent.rawUserAgent, again."\n'
    )
    newer = load_mapping(v2)
    assert newer.version != mapping.version
    with Store(lake, newer) as store:
        state = remap(store, FakeClock(START), batch_size=120)
        assert state.remapped == 300
        after = store.con.execute("SELECT ingest_seq, uuid FROM events ORDER BY 1").fetchall()
        versions = store.con.execute(
            "SELECT mapping_version, count(*), count(ua_raw_copy) FROM events GROUP BY 1"
        ).fetchall()
        again = remap(store, FakeClock(START))
    assert after == before
    copies = sum(1 for e in events if (e.get("client") or {}).get("userAgent"))
    assert versions == [(newer.version, 300, copies)]
    assert again.remapped == 0


def test_retention_on_a_lake_deletes_whole_days_and_their_files(
    new_lake: NewLake, mapping: CompiledMapping
) -> None:
    lake = new_lake("duckdb", inline_rows=0)  # every commit writes Parquet files
    events = EventGenerator(seed=13).stream(500, START, START + timedelta(days=5))
    clock = FakeClock(START + timedelta(days=5, hours=12))
    with Store(lake, mapping) as store:
        commit_events(store, events, START, page=250)

        def days() -> set[str]:
            files = store.con.execute(
                "SELECT data_file, delete_file FROM ducklake_list_files('lake', 'event_rows')"
            ).fetchall()
            assert all(delete is None for _, delete in files)  # whole files only
            return {path.split("day=")[1].split("/")[0] for path, _ in files}

        assert days() == {"1", "2", "3", "4", "5"}
        # keep 3 days from 2026-03-06 12:00: the cutoff is rounded down to 03-03 00:00
        result = apply_retention(store, timedelta(days=3), clock)
        left = store.con.execute("SELECT min(published), count(*) FROM events").fetchall()[0]
        assert days() == {"3", "4", "5"}
    assert result.cutoff == datetime(2026, 3, 3, tzinfo=UTC)
    older = sum(1 for e in events if e["published"] < "2026-03-03")
    assert result.events_deleted == older > 0
    assert left[0] >= result.cutoff and left[1] == 500 - older

"""``oktaduck import``: archives of every shape into real DuckDB files (and a lake), each event
once and byte for byte, bad records in rejects with their file and line, a file's progress
committed with its events, no poll cursor touched."""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from ingest.base.clock import FakeClock
from ingest.collect.archive import Unwrap, guess_unwrap
from ingest.collect.importer import ImportOptions, Totals, run_import
from ingest.collect.pagemap import InlineMapper
from ingest.collect.poll import poll_cycle
from ingest.store.db import Store, read_cursor
from tests.helpers import START, Sim, source_for, stored_uuids
from tests.helpers.lake import ON_EVERY_STORE


def events(count: int, seed: int = 1) -> list[dict[str, Any]]:
    from ingest.simulate.generator import EventGenerator

    gen = EventGenerator(seed=seed)
    return gen.stream(count, START - timedelta(days=30), START - timedelta(days=29))


def odd_text(event: dict[str, Any], n: int) -> bytes:
    """An event written the way another tool might: spaces, escaped unicode, keys in
    another order, a number spelled differently; each must be stored exactly as written."""
    if n % 3 == 0:
        return json.dumps(event, separators=(", ", ": "), ensure_ascii=True).encode()
    if n % 3 == 1:
        doc = dict(reversed(list(event.items())))
        doc["displayMessage"] = "Sign-in \u00e9t\u00e9 \u2713 \U0001f511"
        return json.dumps(doc, ensure_ascii=False).encode()
    text = orjson.dumps(event)
    return text[:-1] + b',"x_number":1.50e2,"x_escape":"a\\/b\\u0041"}'


def do_import(store: Store, *paths: Path | str, **options: Any) -> Totals:
    return run_import(
        store,
        InlineMapper(store.mapping),
        [str(p) for p in paths],
        ImportOptions(**options),
        FakeClock(START),
    )


def stored_raw(store: Store) -> dict[str, bytes]:
    rows = store.con.execute("SELECT uuid, raw::VARCHAR FROM events").fetchall()
    return {uuid: raw.encode() for uuid, raw in rows}


def rejects(store: Store) -> list[tuple[str, bytes | None]]:
    rows = store.con.execute("SELECT reason, raw_bytes FROM rejects ORDER BY reason").fetchall()
    return [(reason, raw) for reason, raw in rows]


def imports(store: Store) -> list[tuple[Any, ...]]:
    return store.con.execute(
        "SELECT path, records, stored, duplicates, rejected, finished_at IS NOT NULL "
        "FROM imports ORDER BY path"
    ).fetchall()


def test_every_shape_of_archive_is_stored_once_byte_for_byte(store: Store, tmp_path: Path) -> None:
    evs = events(600)
    texts = [odd_text(e, n) for n, e in enumerate(evs)]
    folder = tmp_path / "archive"
    (folder / "2024" / "deep").mkdir(parents=True)
    (folder / "a.ndjson").write_bytes(b"\n".join(texts[:100]) + b"\n")
    (folder / "2024" / "b.json").write_bytes(b"[\n  " + b",\n  ".join(texts[100:200]) + b"\n]")
    (folder / "2024" / "c.ndjson.gz").write_bytes(gzip.compress(b"\r\n".join(texts[200:300])))
    zstd = zstandard.ZstdCompressor()
    (folder / "2024" / "deep" / "d.jsonl.zst").write_bytes(
        zstd.compress(b"\n".join(texts[300:350]))
        + zstd.compress(b"\n" + b"\n".join(texts[350:400]))
    )
    (folder / "notes.md").write_text("not an archive: left alone\n")
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "p1.json").write_bytes(b"[" + b",".join(texts[400:500]) + b"]")
    # saved pages one after the other in one file, and a page per line of another
    (pages / "p2.json").write_bytes(
        b"[" + b",".join(texts[500:550]) + b"]\n[" + b",".join(texts[550:575]) + b"]"
    )
    (pages / "p3.log").write_bytes(b"[" + b", ".join(texts[575:600]) + b"]\n")

    totals = do_import(store, folder, f"{pages}/p*.json", pages / "p3.log")

    assert totals.failed == 0, totals.errors
    assert (totals.files, totals.stored, totals.rejected, totals.duplicates) == (7, 600, 0, 0)
    raw = stored_raw(store)
    assert len(raw) == 600 and len(stored_uuids(store)) == 600
    for event, text in zip(evs, texts, strict=True):
        assert raw[event["uuid"]] == text
    assert {row[0].rsplit("/", 1)[-1] for row in imports(store)} == {
        "a.ndjson", "b.json", "c.ndjson.gz", "d.jsonl.zst", "p1.json", "p2.json", "p3.log"
    } | set()  # fmt: skip
    assert all(row[5] for row in imports(store))
    assert store.con.execute("SELECT DISTINCT source FROM events").fetchall() == [("import",)]


def test_envelopes_are_unwrapped_keeping_the_inner_bytes(store: Store, tmp_path: Path) -> None:
    evs = events(40, seed=2)
    texts = [odd_text(e, n) for n, e in enumerate(evs)]
    bridge = tmp_path / "bridge.ndjson"
    bridge.write_bytes(
        b"\n".join(
            b'{"version":"0","id":"x","detail-type":"SystemLog","source":"aws.partner/okta.com/'
            b'o/e","account":"1","time":"t","region":"us-east-1","resources":[],"detail": '
            + t
            + b"}"
            for t in texts[:10]
        )
    )
    hec = tmp_path / "hec.ndjson"
    hec.write_bytes(
        b"\n".join(b'{"time":1,"sourcetype":"Okta:log","event":' + t + b"}" for t in texts[10:20])
    )
    hook = tmp_path / "hook.json"
    hook.write_bytes(
        b'[{"eventType":"com.okta.event_hook","data":{"events":['
        + b",".join(texts[20:25])
        + b']}},{"eventType":"com.okta.event_hook","data":{"events":['
        + b",".join(texts[25:30])
        + b"]}}]"
    )
    custom = tmp_path / "custom.ndjson"
    custom.write_bytes(b"\n".join(b'{"records":[{"event":' + t + b"}]}" for t in texts[30:40]))

    totals = do_import(store, bridge, hec, hook)
    totals2 = do_import(store, custom, unwrap="$.records[*].event")

    assert totals.stored + totals2.stored == 40
    raw = stored_raw(store)
    for event, text in zip(evs, texts, strict=True):
        assert raw[event["uuid"]] == text
    unwraps = dict(store.con.execute("SELECT path, unwrap FROM imports").fetchall())
    assert sorted(unwraps.values()) == ["$.records[*].event", "eventbridge", "eventhook", "hec"]


def test_firehose_objects_written_back_to_back_are_split(store: Store, tmp_path: Path) -> None:
    evs = events(30, seed=15)
    texts = [odd_text(e, n) for n, e in enumerate(evs)]
    wrapped = [b'{"detail-type":"SystemLog","detail":' + t + b"}" for t in texts]
    path = tmp_path / "firehose-1.gz"
    # as Amazon Data Firehose writes them to S3: no separator, and a new object per buffer
    path.write_bytes(gzip.compress(b"".join(wrapped[:20]) + b"\n" + b" ".join(wrapped[20:])))
    totals = do_import(store, path)
    assert (totals.stored, totals.rejected) == (30, 0)
    raw = stored_raw(store)
    assert [raw[e["uuid"]] for e in evs] == texts


def test_a_record_outside_the_named_envelope_is_rejected_with_its_line(
    store: Store, tmp_path: Path
) -> None:
    text = orjson.dumps(events(1)[0])
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b'{"detail":' + text + b"}\n" + text + b"\n")
    totals = do_import(store, path, unwrap="eventbridge")
    assert (totals.stored, totals.rejected) == (1, 1)
    [(reason, raw)] = rejects(store)
    assert reason == f"{path} line 2: no 'detail' in it (--unwrap eventbridge)"
    assert raw == text


def test_unwrap_names_and_paths() -> None:
    assert Unwrap("$.a['b-c'][1]")(b'{"a":{"b-c":[0, {"x" : 1}]}}') == [b'{"x" : 1}']
    assert Unwrap("eventhook")(b'{"data":{"events":[]}}') == []
    assert "not valid JSON" in str(Unwrap("$.a")(b'{"a":'))
    with pytest.raises(Exception, match="--unwrap"):
        Unwrap("$.a..b")
    with pytest.raises(Exception, match="neither"):
        Unwrap("kinesis")
    event = orjson.dumps({"uuid": "u", "eventType": "t"})
    assert guess_unwrap(event) == "none"
    assert guess_unwrap(b'{"detail":' + event + b"}") == "eventbridge"
    assert guess_unwrap(b'{"event":' + event + b"}") == "hec"
    assert guess_unwrap(b'{"other":1}') == "none"


def test_bad_records_go_to_rejects_with_file_line_and_exact_bytes(
    store: Store, tmp_path: Path
) -> None:
    good = [orjson.dumps(e) for e in events(5, seed=3)]
    no_uuid = orjson.dumps({k: v for k, v in events(1, seed=4)[0].items() if k != "uuid"})
    deep = b'{"uuid":"deep","a":' + b"[" * 300 + b"]" * 300 + b"}"
    lines = [
        good[0],
        b"this is not json",
        b"42",
        good[1],
        b'{"uuid": "x", "cut": ',
        no_uuid,
        b'{"uuid":"bad-utf8","eventType":"\xff\xfe"}',
        b"x" * 5000,
        deep,
        b"",
        good[2],
        b"\x00\x01\x02binary\x80",
        good[3],
        good[4],
    ]
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")

    totals = do_import(store, path, max_event_bytes=4096)

    assert set(stored_uuids(store)) == {orjson.loads(g)["uuid"] for g in good}
    assert totals.rejected == 8
    found = rejects(store)
    reasons = [reason for reason, _ in found]
    for line in (2, 3, 5, 6, 7, 8, 9, 12):
        assert any(r.startswith(f"{path} line {line}: ") for r in reasons), (line, reasons)
    by_line = {int(r.split(" line ")[1].split(":")[0]): (r, raw) for r, raw in found}
    assert by_line[2][1] == b"this is not json"
    assert by_line[7][1] == lines[6]  # the exact bytes, not UTF-8
    assert "longer than 4 KiB" in by_line[8][0]
    assert by_line[12][1] == lines[11]
    [(row)] = imports(store)
    assert row[1:] == (13, 5, 0, 8, True)  # 13 non-empty lines


def test_events_polled_already_are_counted_as_duplicates_and_no_cursor_moves(
    sim: Sim, store: Store, clock: FakeClock, token_env: str, tmp_path: Path
) -> None:
    gen = sim.org.generator
    now = clock.now()
    polled = gen.stream(250, now - timedelta(hours=3), now - timedelta(minutes=2))
    sim.org.add(polled)
    source = source_for(sim)
    from ingest.collect.connect import open_client

    client = open_client(source, clock, threading.Event())
    try:
        poll_cycle(source, store, client, clock)
    finally:
        client.http.close()
    cursor = read_cursor(store.con, "acme")
    assert cursor is not None
    archived = [orjson.dumps(e) for e in polled[:100]]  # what Okta served, and more
    older = events(50, seed=9)
    path = tmp_path / "acme-2024.ndjson"
    path.write_bytes(b"\n".join(archived + [orjson.dumps(e) for e in older]))

    totals = do_import(store, path, source="acme")

    assert (totals.stored, totals.duplicates) == (50, 100)
    uuids = stored_uuids(store)
    assert not [u for u, n in Counter(uuids).items() if n > 1]
    assert len(uuids) == 300
    assert read_cursor(store.con, "acme") == cursor  # not a field of it changed
    assert store.con.execute("SELECT count(*) FROM cursors").fetchall() == [(1,)]


def test_a_file_imported_before_is_skipped_and_a_changed_one_noticed(
    store: Store, tmp_path: Path
) -> None:
    texts = [orjson.dumps(e) for e in events(30, seed=5)]
    path = tmp_path / "a.ndjson"
    path.write_bytes(b"\n".join(texts[:20]) + b"\n")
    first = do_import(store, path)
    assert (first.files, first.stored) == (1, 20)

    moved = tmp_path / "moved.ndjson"
    path.rename(moved)
    again = do_import(store, moved)
    assert (again.files, again.skipped, again.stored) == (0, 1, 0)

    forced = do_import(store, moved, again=True)
    assert (forced.files, forced.stored, forced.duplicates) == (1, 0, 20)

    with moved.open("ab") as f:  # the archive grew
        f.write(b"\n".join(texts[20:]) + b"\n")
    grown = do_import(store, moved)
    assert (grown.files, grown.stored, grown.duplicates) == (1, 10, 20)
    assert len(stored_uuids(store)) == 30


def test_an_unfinished_import_resumes_from_its_committed_position(
    store: Store, tmp_path: Path
) -> None:
    texts = [orjson.dumps(e) for e in events(100, seed=6)]
    path = tmp_path / "big.ndjson.gz"
    path.write_bytes(gzip.compress(b"\n".join(texts) + b"\n"))
    stop = threading.Event()
    seen: list[int] = []

    def progress(totals: Totals) -> None:
        seen.append(totals.events)
        stop.set()  # after the first batch: as if interrupted

    run_import(
        store,
        InlineMapper(store.mapping),
        [str(path)],
        ImportOptions(batch=30),
        FakeClock(START),
        stop,
        progress,
    )
    [row] = imports(store)
    assert row[5] is False and 0 < row[2] < 100
    done = row[2]
    rest = do_import(store, path, batch=30)
    assert (rest.stored, rest.duplicates) == (100 - done, 0)  # read on, not from the start
    uuids = stored_uuids(store)
    assert len(uuids) == len(set(uuids)) == 100
    [row] = imports(store)
    assert row[1:] == (100, 100, 0, 0, True)


class TickingClock(FakeClock):
    """A second later at every reading, so each commit of an import has a time of its own."""

    def now(self) -> datetime:
        self.advance(1)
        return super().now()


def test_a_files_progress_row_is_written_again_at_each_commit(store: Store, tmp_path: Path) -> None:
    """One ``imports`` row per file however many batches it takes: each commit updates it,
    keeping when the import started."""
    texts = [orjson.dumps(e) for e in events(100, seed=8)]
    path = tmp_path / "batches.ndjson"
    path.write_bytes(b"\n".join(texts) + b"\n")
    clock = TickingClock(START)
    run_import(store, InlineMapper(store.mapping), [str(path)], ImportOptions(batch=30), clock)
    rows = store.con.execute(
        "SELECT records, stored, position, started_at, updated_at, finished_at FROM imports"
    ).fetchall()
    [(records, stored, position, started, updated, finished)] = rows
    assert (records, stored, position) == (100, 100, path.stat().st_size)
    assert START < started < updated == finished < clock.now()
    assert (updated - started).total_seconds() >= 4  # four commits, each read the clock


def test_files_that_cannot_be_read_are_named_and_the_others_go_on(
    store: Store, tmp_path: Path
) -> None:
    texts = [orjson.dumps(e) for e in events(40, seed=8)]
    whole = gzip.compress(b"\n".join(texts) + b"\n")
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"[" + b",".join(texts[:5]) + b',{"uuid": "x", "a": [1, 2}')
    garbage = tmp_path / "garbage.json.zst"
    garbage.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(200))
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "self").symlink_to(loop)
    (loop / "ok.ndjson").write_bytes(texts[-1])

    totals = do_import(
        store, cut, broken, garbage, loop, tmp_path / "missing.ndjson", "nothing/*.gz"
    )

    errors = totals.errors
    assert all("\n" not in e for e in errors)
    assert any(e.startswith(f"{cut}: cannot read its gzip content") for e in errors), errors
    assert any(e.startswith(f"{broken}: line 1: ") for e in errors), errors
    assert any(e.startswith(f"{garbage}: cannot read its zstd content") for e in errors), errors
    assert f"{tmp_path / 'missing.ndjson'}: no such file or directory" in errors
    assert "nothing/*.gz: no file matches" in errors
    assert totals.failed == 5
    uuids = set(stored_uuids(store))
    assert {orjson.loads(t)["uuid"] for t in texts[:5]} <= uuids  # before the break
    assert orjson.loads(texts[-1])["uuid"] in uuids  # the loop's file, once
    unfinished = store.con.execute(
        "SELECT count(*) FROM imports WHERE finished_at IS NULL"
    ).fetchall()
    assert unfinished[0][0] >= 2  # what was read of the failed files is recorded


def test_a_huge_array_element_ends_the_file_in_bounded_memory(store: Store, tmp_path: Path) -> None:
    text = orjson.dumps(events(1, seed=10)[0])
    path = tmp_path / "huge.json"
    with path.open("wb") as f:
        f.write(b"[" + text + b',{"a":"')
        f.write(b"y" * (3 << 20))  # an element that never ends within the limit
        f.write(b'"}]')
    totals = do_import(store, path, max_event_bytes=1 << 20)
    assert totals.failed == 1
    assert "longer than 1 MiB" in totals.errors[0]
    assert len(stored_uuids(store)) == 1


def test_raw_is_the_archive_text_in_duckdb_json_too(store: Store, tmp_path: Path) -> None:
    text = odd_text(events(1, seed=11)[0], 1)
    path = tmp_path / "one.ndjson"
    path.write_bytes(text + b"\n")
    do_import(store, path)
    [(raw, same)] = store.con.execute(
        "SELECT raw::VARCHAR, raw::VARCHAR = $t FROM events", {"t": text.decode()}
    ).fetchall()
    assert same and raw.encode() == text


@ON_EVERY_STORE
def test_import_on_every_store(store: Store, tmp_path: Path) -> None:
    texts = [odd_text(e, n) for n, e in enumerate(events(60, seed=12))]
    path = tmp_path / "a.ndjson.gz"
    path.write_bytes(gzip.compress(b"\n".join([*texts[:50], b"oops"])))
    totals = do_import(store, path, batch=20)
    assert (totals.stored, totals.rejected) == (50, 1)
    again = do_import(store, path, batch=20)
    assert again.skipped == 1
    more = tmp_path / "b.ndjson"
    more.write_bytes(b"\n".join(texts[40:]))
    totals = do_import(store, more, batch=20)
    assert (totals.stored, totals.duplicates) == (10, 10)
    raw = stored_raw(store)
    assert sorted(raw.values()) == sorted(texts)
    rows = store.con.execute(
        "SELECT records, stored, duplicates, rejected, finished_at IS NOT NULL FROM imports "
        "ORDER BY path"
    ).fetchall()
    assert rows == [(51, 50, 0, 1, True), (20, 10, 10, 0, True)]
    assert store.con.execute("SELECT count(*) FROM cursors").fetchall() == [(0,)]


def test_stdin_is_read(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    texts = [orjson.dumps(e) for e in events(3, seed=13)]

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(b"\n".join(texts)))

    monkeypatch.setattr(sys, "stdin", Stdin)
    totals = do_import(store, "-")
    assert totals.stored == 3


def test_hostile_lines_and_elements_cost_bounded_memory(store: Store, tmp_path: Path) -> None:
    import tracemalloc

    text = orjson.dumps(events(1, seed=16)[0])
    lines = tmp_path / "huge-line.ndjson"
    with lines.open("wb") as f:
        f.write(b'{"uuid":"' + b"z" * (24 << 20) + b'"}\n')  # 24 MiB on one line
        f.write(text + b"\n")
    array = tmp_path / "hostile.json"
    deep = b"[" * 5000 + b"]" * 5000
    array.write_bytes(
        b"[" + deep + b", 7, " + b'"a string"' + b", {\"a\": tru}, " + text + b"]"
    )  # fmt: skip
    tracemalloc.start()
    try:
        totals = do_import(store, lines, array, max_event_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert totals.failed == 0, totals.errors
    assert totals.rejected == 5
    assert peak < 12 << 20  # the limit and a read chunk or two, not the 24 MiB line
    assert len(stored_uuids(store)) == 1  # the event after each, once
    reasons = sorted(reason for reason, _ in rejects(store))
    assert [r.split(": ", 1)[1][:20] for r in reasons] == [
        "not a JSON object",
        "not a JSON object",
        "not valid JSON: JSON",
        "not valid JSON: nest",
        "longer than 1 MiB (i",
    ]


def test_a_pipe_is_read_whole_each_time(store: Store, tmp_path: Path) -> None:
    texts = [orjson.dumps(e) for e in events(4, seed=17)]
    fifo = tmp_path / "events.pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as f:
            f.write(gzip.compress(b"\n".join(texts)))

    for expected in ((4, 0), (0, 4)):
        writer = threading.Thread(target=write)
        writer.start()
        totals = do_import(store, fifo)
        writer.join(timeout=10)
        assert (totals.stored, totals.duplicates) == expected
    rows = store.con.execute("SELECT size, head_sha256, finished_at IS NOT NULL FROM imports")
    assert rows.fetchall() == [(0, "", True), (0, "", True)]


def test_pages_shared_by_several_mappers_keep_their_order(store: Store, tmp_path: Path) -> None:
    evs = events(1200, seed=18)
    texts = [odd_text(e, n) for n, e in enumerate(evs)]
    path = tmp_path / "many.ndjson"
    path.write_bytes(b"\n".join([*texts[:700], b"[1]", *texts[700:]]))
    mappers = [InlineMapper(store.mapping), InlineMapper(store.mapping)]
    options = ImportOptions(batch=1200)  # two pages: 1000 events and 200
    totals = run_import(store, mappers, [str(path)], options, FakeClock(START))
    assert (totals.stored, totals.rejected) == (1200, 1)
    raw = stored_raw(store)
    assert [raw[e["uuid"]] for e in evs] == texts  # each page's rows with its own texts
    [(reason,)] = store.con.execute("SELECT reason FROM rejects").fetchall()
    assert reason == f"{path} line 701: not a JSON object"


def test_a_file_of_bad_lines_is_committed_batch_by_batch(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "noise.log"
    path.write_bytes(b"".join(b"noise %d\n" % n for n in range(250)))
    commits: list[int] = []
    totals = run_import(
        store,
        InlineMapper(store.mapping),
        [str(path)],
        ImportOptions(batch=100),
        FakeClock(START),
        progress=lambda t: commits.append(t.records),
    )
    assert totals.rejected == 250
    assert len(commits) == 2  # two full batches handed over before the end, not one of 250
    assert store.con.execute("SELECT count(*) FROM rejects").fetchall() == [(250,)]


def test_a_file_named_twice_in_one_run_is_imported_once(store: Store, tmp_path: Path) -> None:
    texts = [orjson.dumps(e) for e in events(30, seed=19)]
    path = tmp_path / "a.ndjson"
    path.write_bytes(b"\n".join(texts))
    copy = tmp_path / "copy" / "a.ndjson"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    totals = do_import(store, path, tmp_path, copy, batch=7)
    assert (totals.files, totals.skipped, totals.stored) == (1, 3, 30)  # the folder has both
    assert len(imports(store)) == 1


def test_objects_over_several_lines_each_as_jq_prints_them(store: Store, tmp_path: Path) -> None:
    evs = events(40, seed=20)
    texts = [json.dumps(e, indent=2).encode() for e in evs]
    path = tmp_path / "jq-output.json.gz"
    content = b"\n".join(texts[:30]) + b"\n" + b"[" + b",".join(texts[30:]) + b"]\n"
    path.write_bytes(gzip.compress(content))
    stop = threading.Event()
    first = run_import(
        store,
        InlineMapper(store.mapping),
        [str(path)],
        ImportOptions(batch=10),
        FakeClock(START),
        stop,
        lambda totals: stop.set(),  # interrupted after its first batch
    )
    assert first.stored == 10
    rest = do_import(store, path, batch=10)
    assert (rest.stored, rest.duplicates, rest.rejected) == (30, 0, 0)
    raw = stored_raw(store)
    assert [raw[e["uuid"]] for e in evs] == texts
    rows = store.con.execute("SELECT line, finished_at IS NOT NULL FROM imports").fetchall()
    [(line, finished)] = rows
    assert finished and line == content.count(b"\n") - 1  # the lines before the last "]"

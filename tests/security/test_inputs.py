"""Every bad input gets one line: hostile durations, times, feed parameters, config files and
command-line values end in a ConfigError (or another documented error of the tree), never in
another exception; through the real ``oktaduck`` they print one line and no traceback."""

from __future__ import annotations

import math
import os
import socket
import stat
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.base.errors import ConfigError, InvalidMapping, OktaduckError
from ingest.base.timeparse import MAX_DURATION, parse_duration, parse_time
from ingest.base.tomlfile import MAX_TOML_BYTES
from ingest.cli import INTERNAL_ERROR, _internal_error, build_parser
from ingest.config import load_config, parse_config
from ingest.feeds.feedfile import MAX_INT_PARAM, Feed, bind, load_feeds
from ingest.feeds.run import run_feed
from ingest.mapping import load_mapping
from ingest.okta.oauth import _json_object
from ingest.store.query import open_read_only
from tests.helpers import REPO, run_cli

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FEEDS = load_feeds()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GOOD = """
[[sources]]
name = "acme"
org_url = "https://acme.okta.com"
"""

# --- durations and times ------------------------------------------------------------------

DURATION_TEXT = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A\s?-?[0-9]{1,40}(\.[0-9]{1,5})?\s?(ms|s|m|h|d|w)?\s?\Z"),
    st.sampled_from(
        ["nan", "inf", "-inf", "1e400", "NaN s", "\u0663s", "\u0967d", "1_000s", "0x10"]
    ),
)
ANY_VALUE = st.one_of(
    DURATION_TEXT,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@FUZZ
@given(ANY_VALUE)
def test_parse_duration_gives_a_bounded_timedelta_or_a_config_error(value: Any) -> None:
    try:
        result = parse_duration(value, "k")
    except ConfigError as err:
        assert str(err).startswith("k: ")
        assert "\n" not in str(err) and len(str(err)) < 200
        return
    assert timedelta(0) <= result <= MAX_DURATION


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("99999999999999999999d", "from 0 to 36500d"),
        ("36501d", "from 0 to 36500d"),
        (1e308, "from 0 to 36500d"),
        (10**400, "from 0 to 36500d"),
        (-5, "from 0 to 36500d"),
        (math.nan, "from 0 to 36500d"),
        (math.inf, "from 0 to 36500d"),
        ("nan", "expected a duration"),
        ("-1s", "expected a duration"),
        ("\u0663s", "expected a duration"),  # a digit, but not one a config means
        (True, "expected a duration"),
    ],
)
def test_durations_out_of_range_name_the_key_and_the_range(value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        parse_duration(value, "sources[0].timeout")
    assert str(err.value).startswith("sources[0].timeout: ")


def test_the_largest_duration_is_accepted() -> None:
    assert parse_duration("36500d", "k") == MAX_DURATION
    assert parse_duration(0, "k") == timedelta(0)


TIME_TEXT = st.one_of(
    DURATION_TEXT,
    st.text(max_size=40),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.builds(
        lambda d, h, m, sign: f"{d.isoformat()}{sign}{h:02d}:{m:02d}",
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.integers(0, 23),
        st.integers(0, 59),
        st.sampled_from("+-"),
    ),
    st.sampled_from(["now", "NOW ", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59"]),
)


@FUZZ
@given(TIME_TEXT)
def test_parse_time_gives_a_utc_time_near_now_or_a_config_error(text: str) -> None:
    try:
        result = parse_time(text, NOW, "--since")
    except ConfigError as err:
        assert str(err).startswith("--since: ")
        assert "\n" not in str(err) and len(str(err)) < 250
        return
    assert result.utcoffset() == timedelta(0)
    assert abs(result - NOW) <= MAX_DURATION


def test_times_are_converted_to_utc() -> None:
    stamp = parse_time("2026-05-01T02:00:00+02:00", NOW, "k")
    assert stamp.isoformat() == "2026-05-01T00:00:00+00:00"
    assert parse_time("7d", NOW, "k") == NOW - timedelta(days=7)
    with pytest.raises(ConfigError, match="within 36500 days"):
        parse_time("1900-01-01T00:00:00Z", NOW, "k")
    with pytest.raises(ConfigError, match="give a time zone"):
        parse_time("20260102", NOW, "k")  # a compact date, not 20260102 seconds
    with pytest.raises(ConfigError, match="from 0 to 36500d"):
        parse_time("99999999999d", NOW, "k")


# --- feed parameters ------------------------------------------------------------------------

PARAM_TEXT = st.one_of(
    TIME_TEXT,
    st.integers().map(str),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.text(max_size=20).map(lambda t: t + "\x00"),
    st.sampled_from(
        ["\udcff", "1e5", "-1", "+3", "0\x1f", "\u0661", "true", "maybe", "x" * 10_001]
    ),
)


def _feed_and_param() -> st.SearchStrategy[tuple[Feed, str]]:
    pairs = [(feed, p.name) for feed in FEEDS.values() for p in feed.all_params]
    return st.sampled_from(pairs)


@FUZZ
@given(_feed_and_param(), PARAM_TEXT)
def test_bind_converts_any_text_or_refuses_it(pair: tuple[Feed, str], text: str) -> None:
    feed, name = pair
    try:
        bound = bind(feed, {name: text}, NOW)
    except OktaduckError as err:  # ConfigError, or FilterSyntaxError for filter/q
        assert "\n" not in str(err)
        return
    for value in bound.params.values():
        if isinstance(value, int) and not isinstance(value, bool):
            assert 0 <= value <= MAX_INT_PARAM
        if isinstance(value, str):
            assert "\x00" not in value
            value.encode("utf-8")  # DuckDB takes it


EXTREMES = {
    "int": ["0", str(MAX_INT_PARAM)],
    "float": ["1e308"],
    "bool": ["yes"],
    "duration": ["0", "36500d", "0.001ms"],
    "timestamp": ["36500d", "2100-01-01T00:00:00Z"],
    "string": ["'; DROP TABLE events; --", "\u2028"],
}


@pytest.mark.slow  # every extreme on DuckDB
def test_every_accepted_extreme_runs_on_duckdb(demo_db: Path) -> None:
    """What bind accepts at the ends of its ranges is also what DuckDB can compute with: no
    interval, timestamp or integer overflow surfaces as a failed query."""
    con = open_read_only(demo_db)
    ran = 0
    try:
        for feed in FEEDS.values():
            for param in feed.all_params:
                if param.name in ("sort", "source", "filter", "q"):
                    continue
                for value in EXTREMES[param.type]:
                    if (param.name, value) in (
                        ("until", "36500d"),
                        ("since", "2100-01-01T00:00:00Z"),
                    ):
                        continue  # since must come before until
                    run_feed(con, feed.name, {param.name: value}, NOW).close()
                    ran += 1
    finally:
        con.close()
    assert ran > 100


@pytest.mark.parametrize(
    ("feed", "given", "needle"),
    [
        ("failed-logins", {"since": "99999999999d"}, "since: a duration from 0 to 36500d"),
        ("brute-force", {"window": "99999999999999999d"}, "window: a duration from 0 to"),
        ("brute-force", {"threshold": "99999999999999999999"}, "from 0 to 1000000000"),
        ("brute-force", {"threshold": "-1"}, "threshold: expected a whole number"),
        ("failed-logins", {"limit": "1e3"}, "limit: expected a whole number"),
        ("failed-logins", {"user": "a\x00b"}, "NUL"),
        ("failed-logins", {"user": "\udcff"}, "not UTF-8"),
        ("failed-logins", {"user": "x" * 10_001}, "longer than 10000"),
        ("failed-logins", {"until": "9999-12-31T23:59:59-23:59"}, "within 36500 days"),
    ],
)
def test_bind_names_the_parameter_and_the_range(
    feed: str, given: dict[str, str], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        bind(FEEDS[feed], given, NOW)
    assert str(err.value).startswith(f"feed {feed}: ")


# --- config documents and files -------------------------------------------------------------

KEYS = [
    "sources", "storage", "api", "sinks", "mapping", "name", "org_url", "token_env",
    "token_file", "lookback", "poll_interval", "page_limit", "group_events", "timeout",
    "rate_limit_reserve", "retry_for", "ca_bundle", "proxy", "oauth", "completeness_check",
    "completeness_window", "completeness_delay", "path", "retention", "retention_every",
    "memory_limit", "listen", "enabled", "type", "format", "start", "interval", "host", "port",
    "url", "fields", "batch_events", "batch_bytes", "max_bytes", "max_age", "headers", "verify",
    "client_id", "private_key_file", "scopes", "assertion_lifetime", "protocol", "window",
]  # fmt: skip
SCALARS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "https://acme.okta.com", "http://127.0.0.1:9", "127.0.0.1:99999", "[::1]:80",
            "file", "http", "syslog", "raw", "ecs", "7d", "99999999999999999999d", "1GB",
            "beginning", "now", "x\x00y", "127.0.0.1:²", "-1s",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
)  # fmt: skip
TOML_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=12,
)


def _document(values: dict[str, Any]) -> dict[str, Any]:
    """A document that gets past the first checks often enough to reach the deep ones."""
    source = {"name": "acme", "org_url": "https://acme.okta.com", **values}
    return {"sources": [source], **{k: v for k, v in values.items() if k in KEYS[:5]}}


@FUZZ
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, max_size=5).map(_document),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), TOML_VALUES, max_size=5),
    )
)
def test_parse_config_accepts_or_refuses_in_one_line(data: dict[str, Any]) -> None:
    try:
        parse_config(data, Path("/nonexistent-base"))
    except OktaduckError as err:  # ConfigError, or UnsafeURL for a cleartext org
        assert "\n" not in str(err)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_load_config_on_arbitrary_bytes(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "oktaduck.toml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except OktaduckError as err:
        assert "\n" not in str(err)
        assert str(err).startswith(str(path))


def _nested(depth: int) -> str:
    return "a = " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe" + bytes(range(256)), "not UTF-8 text"),
        (_nested(5000).encode(), "nested too deeply"),
        (("a = " + "{b=" * 3000 + "1" + "}" * 3000).encode(), "nested too deeply"),
        (b"\x00\x00\x00", "invalid TOML"),
        (b"sources = 3\n", "sources: wrong type int"),
        (GOOD.replace("acme.okta.com", "acme.okta.com:99999").encode(), "port is from 1"),
        ((GOOD + "timeout = 'inf'\n").encode(), "timeout: expected a duration"),
        ((GOOD + "timeout = '99999999999999999999d'\n").encode(), "timeout: a duration from 0"),
        ((GOOD + "timeout = 0\n").encode(), "timeout: must be more than 0"),
        ((GOOD + "lookback = nan\n").encode(), "lookback: a duration from 0"),
        ((GOOD + "group_events = 99999999999999\n").encode(), "group_events: must be between"),
        ((GOOD + 'token_file = "a\\u0000b"\n').encode(), "token_file: contains a NUL"),
        (('[api]\nlisten = "127.0.0.1:99999"\n' + GOOD).encode(), "port is from 0 to 65535"),
        (('[api]\nlisten = "127.0.0.1:²"\n' + GOOD).encode(), "expected HOST:PORT"),
        (('[storage]\nretention_every = "0s"\n' + GOOD).encode(), "retention_every: at least"),
        (
            (
                GOOD + '[[sinks]]\nname = "h"\ntype = "http"\nurl = "https://siem.example"\n'
                'headers = { X-Tenant = "a\\r\\nX-Injected: 1" }\n'
            ).encode(),
            "headers.X-Tenant: a header name is letters, digits and -",
        ),
        (
            (
                GOOD + '[[sinks]]\nname = "h"\ntype = "http"\nurl = "https://siem.example"\n'
                'token_scheme = "Bearer\\nX-Injected: 1"\n'
            ).encode(),
            "token_scheme: no control character",
        ),
    ],
)
def test_each_hostile_file_is_one_config_error_naming_it(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "oktaduck.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert "\n" not in str(err.value)


def test_a_huge_config_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as file:
        file.truncate(MAX_TOML_BYTES + 1)  # sparse: nothing to write, 16 MiB + 1 to read
    with pytest.raises(ConfigError, match="larger than 16 MiB"):
        load_config(path)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\xff\xfe\x00\x01", "is not UTF-8 text"),
        (b"00abcdef\n00ghijkl\n", "holds a line break or control character"),
        (b"00abc\x1bdef", "holds a line break or control character"),
        (b"  \n", "is empty"),
    ],
)
def test_a_token_file_that_is_no_header_value_is_refused(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    """A token goes into an HTTP header: a line break in it would fail every request (with
    the token in httpx's message) or split the header."""
    (tmp_path / "token").write_bytes(content)
    config = tmp_path / "oktaduck.toml"
    config.write_text(GOOD + 'token_file = "token"\n')
    with pytest.raises(ConfigError, match=needle):
        load_config(config).sources[0].token()


def test_a_huge_token_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    token = tmp_path / "token"
    with token.open("wb") as file:
        file.truncate(64 << 20)
    config = tmp_path / "oktaduck.toml"
    config.write_text(GOOD + 'token_file = "token"\n')
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config(config).sources[0].token()


def test_a_token_with_a_line_break_in_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OKTA_API_TOKEN", "00abcdef\r\nX-Injected: 1")
    with pytest.raises(ConfigError, match="OKTA_API_TOKEN holds a line break") as err:
        parse_config(_document({}), Path("/nonexistent")).sources[0].token()
    assert "Injected" not in str(err.value)


def test_a_ca_bundle_that_does_not_load_is_one_line_before_the_network(tmp_path: Path) -> None:
    (tmp_path / "garbage.pem").write_bytes(b"\x00not a certificate")
    config = tmp_path / "oktaduck.toml"
    for ca, needle in (("garbage.pem", "no PEM certificate in it"), ("absent.pem", "No such")):
        config.write_text(GOOD + f'ca_bundle = "{ca}"\n')
        with pytest.raises(ConfigError, match=needle):
            load_config(config).sources[0].check_credentials()
    env = {"OKTA_API_TOKEN": "not-a-real-token-0123456789"}
    _one_line(
        run_cli("poll", "--config", str(config), "--db", str(tmp_path / "x.duckdb"), env=env),
        2,
        f"ca_bundle {tmp_path / 'absent.pem'} of source acme: No such file or directory",
    )
    assert not (tmp_path / "x.duckdb").exists()


def test_a_jwk_file_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key.json").write_text('{"keys": ' + "[" * 100_000)
    config = tmp_path / "oktaduck.toml"
    config.write_text(GOOD + '[sources.oauth]\nclient_id = "0oa1"\nprivate_key_file = "key.json"\n')
    with pytest.raises(ConfigError, match="starts like JSON but is not valid JSON"):
        load_config(config).sources[0].check_credentials()


def test_an_oauth_answer_nested_too_deeply_reads_as_no_object() -> None:
    deep = httpx.Response(400, content=b'{"error": ' + b"[" * 100_000)
    assert _json_object(deep) == {}


def test_a_hostile_mapping_file_is_one_problem_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(_nested(5000))
    with pytest.raises(InvalidMapping) as err:
        load_mapping(path)
    assert err.value.problems == (f"{path}: invalid TOML: arrays or tables nested too deeply",)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidMapping, match="not UTF-8 text"):
        load_mapping(path)


def test_hostile_lookup_files_of_a_mapping_are_problems(tmp_path: Path) -> None:
    (tmp_path / "deep.toml").write_text(_nested(5000))
    with (tmp_path / "huge.json").open("wb") as file:
        file.truncate(MAX_TOML_BYTES + 1)
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[mapping]\nname = "m"\n[lookups]\ndeep = "deep.toml"\nhuge = "huge.json"\n'
        '[fields.a]\npath = "$.a"\n'
    )
    with pytest.raises(InvalidMapping) as err:
        load_mapping(mapping)
    problems = "\n".join(err.value.problems)
    assert "deep.toml is not valid TOML: nested too deeply" in problems
    assert "huge.json is larger than 16 MiB" in problems


def test_an_integer_too_long_for_python_is_a_one_line_config_error(tmp_path: Path) -> None:
    """tomllib raises a plain ValueError past 4300 digits (not a TOMLDecodeError)."""
    path = tmp_path / "c.toml"
    path.write_text("x = " + "1" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"c\.toml: invalid TOML"):
        load_config(path)


def test_tomllib_itself_still_recurses_on_deep_arrays() -> None:
    """The reason read_toml catches RecursionError: should tomllib stop recursing one day,
    this fails and the catch can go."""
    with pytest.raises(RecursionError):
        tomllib.loads(_nested(5000))


# --- the command line -----------------------------------------------------------------------


def _one_line(done: Any, code: int, needle: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    done = run_cli("demo", "--db", str(db), "--events", "50")
    assert done.returncode == 0, done.stderr
    return db


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["failed-logins", "--since", "99999999999d"], "since: a duration from 0 to 36500d"),
        (["brute-force", "--window", "99999999999999999d"], "window: a duration from 0 to"),
        (["failed-logins", "--until", "0001-01-01T00:00:00+01:00"], "within 36500 days"),
        (["brute-force", "--threshold", "1e99"], "threshold: expected a whole number"),
        (["failed-logins", "--user", "\udcff"], "not UTF-8"),
    ],
)
@pytest.mark.slow  # CLI subprocesses
def test_feed_arguments_that_overflow_are_one_line(
    demo_db: Path, args: list[str], needle: str
) -> None:
    _one_line(run_cli("feed", *args, "--db", str(demo_db)), 2, needle)


@pytest.mark.slow  # CLI subprocesses
def test_hostile_config_files_are_one_line(tmp_path: Path) -> None:
    cases = {
        "timeout.toml": (
            (GOOD + 'timeout = "99999999999999999999d"\n').encode(),
            "sources[0].timeout: a duration from 0 to 36500d",
        ),
        "binary.toml": (bytes(range(256)) * 4, "not UTF-8 text"),
        "deep.toml": (_nested(5000).encode(), "nested too deeply"),
    }
    for name, (content, needle) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        _one_line(run_cli("config", "check", "--config", str(path)), 2, needle)


@pytest.mark.slow  # CLI subprocesses
def test_unwritable_and_impossible_paths_are_one_line(tmp_path: Path, demo_db: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _one_line(run_cli("remap", "--db", "/proc/x/new.duckdb"), 1, "cannot create the folder /proc/x")
    _one_line(run_cli("remap", "--db", str(blocker / "new.duckdb")), 1, "a file is in the way")
    _one_line(run_cli("sql", "--db", str(tmp_path), "SELECT 1"), 1, "is a directory")
    _one_line(run_cli("demo", "--db", str(tmp_path)), 2, "is a directory")
    for to in ("file:", f"file:{tmp_path}"):
        _one_line(run_cli("export", "--db", str(demo_db), "--to", to), 2, "give a file name")
    _one_line(
        run_cli("export", "--db", str(demo_db), "--to", f"file:{blocker}/out.ndjson"),
        1,
        "cannot create",
    )
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _one_line(
        run_cli("export", "--db", str(demo_db), "--to", f"file:{fifo}"),
        2,
        "exists and is not a regular file",
    )
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # not replaced by the finished export
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.slow  # CLI subprocesses
def test_remap_with_an_export_mapping_leaves_the_table_alone(demo_db: Path) -> None:
    """ECS and OCSF mappings make documents for export; remapping the events table with one
    used to add a column per ECS field to it."""

    def columns() -> int:
        con = duckdb.connect(str(demo_db), read_only=True)
        try:
            sql = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'events'"
            return int(con.execute(sql).fetchall()[0][0])
        finally:
            con.close()

    before = columns()
    _one_line(
        run_cli("remap", "--db", str(demo_db), "--mapping", "mappings/okta/ecs.toml"),
        2,
        'mapping ecs makes documents; the events table needs a mapping with output = "columns"',
    )
    assert columns() == before
    config = demo_db.parent / "ecs.toml"
    config.write_text(f'mapping = "{REPO}/mappings/okta/ecs.toml"\n' + GOOD)
    _one_line(run_cli("config", "check", "--config", str(config)), 2, "makes documents")


@pytest.mark.slow  # CLI subprocesses
def test_config_paths_that_cannot_be_created_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    config = tmp_path / "oktaduck.toml"
    config.write_text(
        '[storage]\npath = "a-file/okta.duckdb"\n[api]\nenabled = false\n'
        + GOOD.replace("https://acme.okta.com", "http://127.0.0.1:9")
        + '[[sinks]]\nname = "archive"\ntype = "file"\npath = "a-file/export"\n'
    )
    env = {"OKTA_API_TOKEN": "not-a-real-token-0123456789"}
    _one_line(run_cli("run", "--config", str(config), env=env), 1, "a file is in the way")
    _one_line(
        run_cli(
            "export", "--config", str(config), "--sink", "archive", "--db", str(tmp_path / "x")
        ),
        1,
        "a-file/export",
    )
    _one_line(run_cli("sql", "--db", str(tmp_path / ("n" * 300)), "SELECT 1"), 1, "too long")


def test_an_export_token_with_a_line_break_is_one_line(demo_db: Path) -> None:
    env = {"OKTADUCK_EXPORT_TOKEN": "00abcdef\nX-Injected: 1"}
    done = run_cli("export", "--db", str(demo_db), "--to", "http://127.0.0.1:9/", env=env)
    _one_line(done, 2, "OKTADUCK_EXPORT_TOKEN holds a line break or control character")
    assert "Injected" not in done.stderr


def test_a_daemon_whose_api_port_is_taken_says_so_in_one_line(tmp_path: Path) -> None:
    """The failed start used to be hidden by a SchedulerNotRunningError from the shutdown
    that followed it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "oktaduck.toml"
        config.write_text(
            f'[api]\nlisten = "127.0.0.1:{port}"\n'
            + GOOD.replace("https://acme.okta.com", "http://127.0.0.1:9")
        )
        env = {"OKTA_API_TOKEN": "not-a-real-token-0123456789"}
        done = run_cli("run", "--config", str(config), env=env)
    _one_line(done, 2, f"api.listen: cannot listen on 127.0.0.1:{port}")


def test_a_bad_log_level_from_the_environment_is_a_usage_error(demo_db: Path) -> None:
    done = run_cli("status", "--db", str(demo_db), env={"OKTADUCK_LOG_LEVEL": "loud"})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "oktaduck: error: OKTADUCK_LOG_LEVEL: choose from debug, info, warning, error"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["poll", "--org", "http://127.0.0.1:9", "--page-limit", "9" * 30], "from 1 to 1000"),
        (["poll", "--org", "http://127.0.0.1:9", "--group-events", "-1"], "from 1 to 1000000"),
        (["feed", "failed-logins", "--limit", "1.5"], "expected a whole number"),
        (["remap", "--batch", "0"], "must be from 1 to"),
        (["demo", "--events", "99999999999999999999999"], "must be from 1 to 1000000"),
        (["mappings", "coverage", "--sample", ""], "expected a whole number"),
    ],
)
def test_numbers_out_of_range_are_argparse_errors(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(args)
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.slow  # CLI subprocesses
def test_poll_lookback_and_port_are_checked_before_the_network() -> None:
    env = {"OKTA_API_TOKEN": "not-a-real-token-0123456789"}
    _one_line(
        run_cli("poll", "--org", "http://127.0.0.1:9", "--lookback", "999d", env=env),
        2,
        "--lookback: must be more than 0 and at most 90d",
    )
    _one_line(
        run_cli("poll", "--org", "http://127.0.0.1:99999999999", env=env),
        2,
        "the port is from 1 to 65535",
    )
    _one_line(run_cli("simulate", "--hours", "nan"), 2, "hours above 0")


def test_a_malformed_crash_point_in_the_environment_is_ignored(tmp_path: Path) -> None:
    env = {"OKTADUCK_CRASH_AT": "store.begun:often"}
    done = run_cli("remap", "--db", str(tmp_path / "r.duckdb"), env=env)
    assert done.returncode == 0, done.stderr
    assert "remapped 0 events" in done.stdout


NET = """
import sys
from ingest import cli
from ingest.base.secrets import Secret
from ingest.cli.commands import query

canary = Secret("canary-0123456789abcdef", "test")


def broken(args):
    raise RuntimeError("a bug near " + canary.reveal())


query.cmd_status = broken  # a command with a bug that no error of the tree describes
sys.exit(cli.main(sys.argv[1:]))
"""


def test_the_net_in_main_prints_one_redacted_line_and_exits_70(tmp_path: Path) -> None:
    script = tmp_path / "net.py"
    script.write_text(NET)
    for debug in (False, True):
        argv = ["--log-level", "debug", "status"] if debug else ["status"]
        done = subprocess.run(
            [sys.executable, str(script), *argv],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={k: v for k, v in os.environ.items() if not k.startswith("OKTADUCK_")},
            timeout=60,
            check=False,
        )
        assert done.returncode == INTERNAL_ERROR
        assert "canary-0123456789abcdef" not in done.stderr
        last = done.stderr.splitlines()[-1]
        assert last.startswith("oktaduck: internal error: RuntimeError: a bug near ***")
        if debug:
            assert done.stderr.startswith("Traceback") and "in broken" in done.stderr
        else:
            assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
            assert last.endswith("(--log-level debug shows the traceback)")


def test_an_unexpected_exception_is_one_line_with_exit_70(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        {"other": 1}["key"]  # the kind of bug the net is for
    except KeyError as err:
        assert _internal_error(err, debug=False) == INTERNAL_ERROR
        quiet = capsys.readouterr().err
        assert _internal_error(err, debug=True) == INTERNAL_ERROR
        loud = capsys.readouterr().err
    assert quiet == (
        "oktaduck: internal error: KeyError: 'key' (--log-level debug shows the traceback)\n"
    )
    assert loud.startswith("Traceback") and '{"other": 1}["key"]' in loud
    assert loud.endswith("oktaduck: internal error: KeyError: 'key'\n")

"""Config files become frozen dataclasses; every mistake names its key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ingest.base.errors import ConfigError
from ingest.base.timeparse import parse_duration
from ingest.config import load_config

GOOD = """
[storage]
path = "data/okta.duckdb"

[[sources]]
name = "acme"
org_url = "https://acme.okta.com"
token_env = "ACME_TOKEN"
lookback = "7d"
poll_interval = "30s"
rate_limit_reserve = 0.3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oktaduck.toml"
    path.write_text(text)
    return path


def test_a_good_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    source = config.source("acme")
    assert config.storage.path == tmp_path / "data/okta.duckdb"
    assert source.org.logs_url == "https://acme.okta.com/api/v1/logs"
    assert source.lookback == timedelta(days=7)
    assert source.poll_interval == timedelta(seconds=30)
    assert source.client.reserve_share == 0.3
    assert source.token_env == "ACME_TOKEN"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD.replace("lookback", "lookbak"), "sources[0].lookbak: unknown key"),
        (GOOD.replace('"7d"', '"91d"'), "sources[0].lookback"),
        (GOOD + "\n[extra]\na = 1\n", "extra: unknown key"),
        (GOOD.replace('token_env = "ACME_TOKEN"', 'token = "s3cret"'), "secrets are not allowed"),
        (GOOD.replace("0.3", "1.5"), "rate_limit_reserve"),
        (GOOD.replace('"30s"', '"soon"'), "poll_interval"),
        ("[storage]\n", "at least one [[sources]]"),
        (GOOD + GOOD[GOOD.index("[[sources]]") :], "used twice"),
        ("sources = [", "invalid TOML"),
    ],
)
def test_each_mistake_names_the_key_at_fault(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert needle in str(err.value)
    assert "s3cret" not in str(err.value)


def test_cleartext_org_url_is_refused_unless_loopback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("https://acme.okta.com", "http://acme.okta.com"))
    with pytest.raises(ConfigError, match="clear text") as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: sources[0].org_url: refusing plain http://")
    local = load_config(
        write(tmp_path, GOOD.replace("https://acme.okta.com", "http://127.0.0.1:9"))
    )
    assert local.sources[0].org.origin == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "k") == timedelta(seconds=seconds)


SINK = """
[[sinks]]
name = "out"
type = "file"
path = "exports"
"""
HTTP_SINK = """
[[sinks]]
name = "siem"
type = "http"
url = "https://siem.example.com/in"
"""
SYSLOG_SINK = """
[[sinks]]
name = "syslog"
type = "syslog"
host = "127.0.0.1"
port = 6514
"""
OAUTH = """
[sources.oauth]
client_id = "0oa1"
private_key_file = "key.pem"
"""


def _set(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (_set(GOOD, "https://acme.okta.com", "http://acme.okta.com"), "sources[0].org_url"),
        (_set(GOOD, "https://acme.okta.com", "https://acme.okta.com/x"), "sources[0].org_url"),
        (_set(GOOD, "https://acme.okta.com", "ftp://acme"), "sources[0].org_url"),
        (_set(GOOD, "https://acme.okta.com", "https://u:p@acme.okta.com"), "sources[0].org_url"),
        (_set(GOOD, 'name = "acme"', 'name = "a b"'), "sources[0].name"),
        (_set(GOOD, 'name = "acme"', "name = 3"), "sources[0].name"),
        (_set(GOOD, '"7d"', '"0s"'), "sources[0].lookback"),
        (_set(GOOD, '"30s"', '"0s"'), "sources[0].poll_interval"),
        (GOOD + "page_limit = 5000\n", "sources[0].page_limit"),
        (GOOD + "group_events = 0\n", "sources[0].group_events"),
        (GOOD + "group_bytes = 5\n", "sources[0].group_bytes"),
        (GOOD + 'timeout = "0s"\n', "sources[0].timeout"),
        (GOOD + 'retry_for = "later"\n', "sources[0].retry_for"),
        (GOOD + "max_response_bytes = 1\n", "sources[0].max_response_bytes"),
        (GOOD + 'token_file = "t"\n', "sources[0].token_env"),
        (GOOD + 'completeness_window = "0s"\n', "sources[0].completeness_window"),
        (GOOD + 'completeness_check = "0s"\n', "sources[0].completeness_check"),
        (GOOD + OAUTH, "sources[0].oauth"),
        (GOOD + OAUTH.replace('client_id = "0oa1"\n', ""), "sources[0].oauth"),
        (GOOD + "[storage2]\n", "storage2"),
        (_set(GOOD, 'path = "data/okta.duckdb"', 'memory_limit = "lots"'), "storage.memory_limit"),
        (_set(GOOD, 'path = "data/okta.duckdb"', 'retention = "1h"'), "storage.retention"),
        (_set(GOOD, 'path = "data/okta.duckdb"', "path = 1"), "storage.path"),
        (GOOD + '[api]\nlisten = "nowhere"\n', "api.listen"),
        (GOOD + '[api]\nlisten = "0.0.0.0:8765"\n', "api.listen"),
        (GOOD + "[api]\nworkers = 0\n", "api.workers"),
        (GOOD + '[query]\ntimeout = "0s"\n', "query.timeout"),
        (GOOD + SINK.replace('type = "file"', 'type = "fax"'), "sinks[0].type"),
        (GOOD + SINK + 'format = "xml"\n', "sinks[0].format"),
        (GOOD + SINK + 'start = "yesterday-ish"\n', "sinks[0].start"),
        (GOOD + SINK + "max_bytes = 0\n", "sinks[0].max_bytes"),
        (GOOD + SINK + "gzip_level = 12\n", "sinks[0].gzip_level"),
        (GOOD + SINK + "url = 'x'\n", "sinks[0].url"),
        (GOOD + HTTP_SINK.replace("https://siem", "http://siem"), "sinks[0].url"),
        (GOOD + HTTP_SINK.replace("https://siem", "https://u:p@siem"), "sinks[0].url"),
        (GOOD + HTTP_SINK + "timeout = 0\n", "sinks[0].timeout"),
        (GOOD + SINK + "batch_events = 0\n", "sinks[0].batch_events"),
        (GOOD + HTTP_SINK + 'preset = "nope"\n', "sinks[0].preset"),
        (GOOD + SYSLOG_SINK.replace("6514", "70000"), "sinks[0].port"),
        (GOOD + SYSLOG_SINK + 'app_name = "a b"\n', "sinks[0].app_name"),
        (GOOD + SYSLOG_SINK + "facility = 99\n", "sinks[0].facility"),
        (GOOD + SYSLOG_SINK + "window = 5\n", "sinks[0].window"),
    ],
)
def test_every_config_error_names_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert message.startswith(f"{path}: {key}: "), message

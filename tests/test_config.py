"""Config files become frozen dataclasses; every mistake names its key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ingest.config import load_config, parse_duration
from ingest.errors import ConfigError, UnsafeURL

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
    with pytest.raises(UnsafeURL, match="clear text"):
        load_config(write(tmp_path, GOOD.replace("https://acme.okta.com", "http://acme.okta.com")))
    local = load_config(
        write(tmp_path, GOOD.replace("https://acme.okta.com", "http://127.0.0.1:9"))
    )
    assert local.sources[0].org.origin == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "k") == timedelta(seconds=seconds)

"""``oktaduck config check`` on a lake: a catalog or an object store reached in clear text is
named, and so is a secret the lake names but cannot read; nothing connects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.config import load_config
from ingest.config_check import lake_secret_problems, transport_warnings
from ingest.mapping import CompiledMapping
from ingest.store.db import Store
from ingest.store.lake import LakeConfig
from tests.helpers import run_cli
from tests.helpers.lake import free_port, lake_toml

SOURCE = '[[sources]]\nname = "okta"\norg_url = "https://acme.okta.com"\ntoken_env = "T"\n'
S3 = 'data = "s3://bucket/events"\n[storage.lake.s3]\n'
WEAK = {
    "no sslmode": ("storage.lake.catalog", 'catalog = "postgres:dbname=o host=db.example.com"\n'),
    "sslmode=disable": (
        "storage.lake.catalog",
        'catalog = "postgres:dbname=o host=127.0.0.1,10.0.0.7 sslmode=disable"\n',
    ),
    "prefer by address": (
        "storage.lake.catalog",
        'catalog = "postgres:dbname=o hostaddr=192.0.2.10 sslmode=prefer"\n',
    ),
    "s3 endpoint": (
        "storage.lake.s3.use_ssl",
        f'catalog = "sqlite:c.sqlite"\n{S3}endpoint = "minio.example.com:9000"\nuse_ssl = false\n',
    ),
    "aws": ("storage.lake.s3.use_ssl", f'catalog = "sqlite:c.sqlite"\n{S3}use_ssl = false\n'),
}
SAFE = {
    "loopback": 'catalog = "postgres:dbname=o host=127.0.0.1 port=5432"\n',
    "socket": 'catalog = "postgres:dbname=o host=/var/run/postgresql"\n',
    "verify-full": 'catalog = "postgres:dbname=o host=db.example.com sslmode=verify-full"\n',
    "require": 'catalog = "postgres:dbname=o host=db.example.com sslmode=require"\n',
    "s3 loopback": f'catalog = "sqlite:c.sqlite"\n{S3}endpoint = "[::1]:9000"\nuse_ssl = false\n',
    "s3 tls": f'catalog = "sqlite:c.sqlite"\n{S3}endpoint = "minio.example.com:9000"\n',
}


def write(tmp_path: Path, lake: str) -> Path:
    if "\ndata = " not in f"\n{lake}":
        lake = f'data = "lake"\n{lake}'
    path = tmp_path / "oktaduck.toml"
    path.write_text(f"{SOURCE}\n[storage.lake]\n{lake}")
    return path


@pytest.mark.parametrize("case", sorted(WEAK))
def test_a_lake_reached_in_clear_text_is_named(case: str, tmp_path: Path) -> None:
    key, lake = WEAK[case]
    warnings = transport_warnings(load_config(write(tmp_path, lake)))
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{key}: ")


@pytest.mark.parametrize("case", sorted(SAFE))
def test_a_lake_on_loopback_or_behind_tls_is_not_named(case: str, tmp_path: Path) -> None:
    assert transport_warnings(load_config(write(tmp_path, SAFE[case]))) == []


def test_a_lake_secret_file_others_can_read_is_named(tmp_path: Path) -> None:
    secret = tmp_path / "pg.pw"
    secret.write_text("hunter2\n")
    secret.chmod(0o644)
    text = f'catalog = "postgres:dbname=o host=127.0.0.1"\npassword_file = "{secret}"\n'
    (warning,) = transport_warnings(load_config(write(tmp_path, text)))
    assert warning.startswith("storage.lake.password_file: ")
    assert "hunter2" not in warning


def test_missing_lake_secrets_are_problems_and_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAKE_PW", raising=False)
    text = (
        'catalog = "postgres:dbname=o host=127.0.0.1"\npassword_env = "LAKE_PW"\n'
        f'{S3}key_id_env = "LAKE_KEY"\nsecret_file = "{tmp_path / "absent"}"\n'
    )
    monkeypatch.setenv("LAKE_KEY", "AKIA-not-printed")
    problems = lake_secret_problems(load_config(write(tmp_path, text)))
    assert [p.split(":")[0] for p in problems] == ["storage.lake", "storage.lake.s3"]
    assert "LAKE_PW" in problems[0] and "absent" in problems[1]
    monkeypatch.setenv("LAKE_PW", "pw-not-printed")
    assert len(lake_secret_problems(load_config(write(tmp_path, text)))) == 1


@pytest.mark.slow  # CLI subprocesses
def test_config_check_names_the_lake_and_fails_on_its_missing_secret(tmp_path: Path) -> None:
    config = write(
        tmp_path, 'catalog = "postgres:dbname=o host=127.0.0.1"\npassword_env = "LAKE_PW"\n'
    )
    ok = run_cli("config", "check", "--config", str(config), env={"T": "t", "LAKE_PW": "x"})
    assert ok.returncode == 0, ok.stderr
    assert "lake postgres:dbname=o host=127.0.0.1 (data " in ok.stdout
    missing = run_cli(
        "config", "check", "--require-secrets", "--config", str(config), env={"T": "t"}
    )
    assert missing.returncode == 2
    assert "storage.lake" in missing.stderr and "LAKE_PW" in missing.stderr


@pytest.mark.slow  # CLI subprocesses
def test_connect_attaches_the_lake_read_only_or_fails_in_one_line(
    tmp_path: Path, new_lake: Callable[..., LakeConfig], mapping: CompiledMapping
) -> None:
    lake = new_lake("sqlite")
    with Store(lake, mapping):
        pass  # creates the catalog's tables
    config = tmp_path / "oktaduck.toml"
    config.write_text(f"{SOURCE}\n{lake_toml(lake)}")
    reached = run_cli("config", "check", "--connect", "--config", str(config), env={"T": "t"})
    assert reached.returncode == 0, reached.stderr
    assert f"reached lake {lake.catalog} (data {lake.data}): " in reached.stdout
    assert " snapshots" in reached.stdout
    away = write(
        tmp_path,
        f'catalog = "postgres:dbname=o host=127.0.0.1 port={free_port()} connect_timeout=5"\n',
    )
    unreached = run_cli("config", "check", "--connect", "--config", str(away), env={"T": "t"})
    assert unreached.returncode == 2
    assert unreached.stderr.count("\n") == 1 and "error: lake postgres:" in unreached.stderr

"""``oktaduck config check`` names every setting that weakens transport security.

One line per setting, naming the file and the key; exit 0 without ``--strict``, 2 with it. A
configuration without such settings passes ``--strict``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.config import load_config
from ingest.config_check import transport_warnings
from tests.helpers import run_cli

SOURCE = '[[sources]]\nname = "okta"\norg_url = "https://acme.okta.com"\ntoken_env = "T"\n'
WEAK = {
    "sinks[0].verify": 'type = "http"\nurl = "https://siem.example.com"\nverify = false\n',
    "sinks[0].allow_insecure": (
        'type = "http"\nurl = "http://siem.example.com:8088"\nallow_insecure = true\n'
    ),
    "sinks[0].tls (default false)": 'type = "syslog"\nhost = "syslog.example.com"\n',
    "sinks[0].tls": 'type = "syslog"\nhost = "10.1.2.3"\ntls = false\n',
    "sinks[0].headers.X-Api-Key": (
        'type = "http"\nurl = "https://siem.example.com"\nheaders = { X-Api-Key = "k-123" }\n'
    ),
    "sinks[0].proxy": (
        'type = "http"\nurl = "https://siem.example.com"\nproxy = "http://u:pw@proxy.example.com:3128"\n'
    ),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oktaduck.toml"
    path.write_text(text)
    return path


def sink(body: str) -> str:
    return f'[[sinks]]\nname = "out"\n{body}'


@pytest.mark.parametrize("key", sorted(WEAK))
def test_each_weak_sink_setting_is_named(key: str, tmp_path: Path) -> None:
    path = write(tmp_path, SOURCE + sink(WEAK[key]))
    warnings = transport_warnings(load_config(path))
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{key}: ")
    assert ":pw@" not in warnings[0]  # a proxy password is not repeated


def test_allow_insecure_with_an_https_url_is_still_named(tmp_path: Path) -> None:
    body = 'type = "http"\nurl = "https://siem.example.com"\nallow_insecure = true\n'
    (warning,) = transport_warnings(load_config(write(tmp_path, SOURCE + sink(body))))
    assert warning.startswith("sinks[0].allow_insecure: true but unused")


def test_a_plain_http_loopback_org_and_a_public_api_are_named(tmp_path: Path) -> None:
    text = (
        '[api]\nlisten = "0.0.0.0:8765"\ntoken_env = "API"\n'
        '[[sources]]\nname = "lab"\norg_url = "http://127.0.0.1:8080"\ntoken_env = "T"\n'
    )
    warnings = transport_warnings(load_config(write(tmp_path, text)))
    assert [w.split(":")[0] for w in warnings] == ["sources[0].org_url", "api.listen"]


def test_secure_settings_give_no_warning(tmp_path: Path) -> None:
    text = (
        SOURCE
        + sink('type = "http"\nurl = "https://siem.example.com"\nproxy = "http://p:3128"\n')
        + sink('type = "syslog"\nhost = "syslog.example.com"\ntls = true\n').replace(
            '"out"', '"tls"'
        )
        + sink('type = "syslog"\nhost = "127.0.0.1"\nport = 5514\n').replace('"out"', '"local"')
        + sink('type = "http"\nurl = "http://127.0.0.1:8088"\n').replace('"out"', '"hec"')
    )
    assert transport_warnings(load_config(write(tmp_path, text))) == []


def test_config_check_prints_one_line_per_setting_and_strict_fails(tmp_path: Path) -> None:
    token = tmp_path / "sink.token"
    token.write_text("a-sink-token-0123456789")
    token.chmod(0o644)
    text = (
        SOURCE
        + sink(WEAK["sinks[0].verify"])
        + sink(WEAK["sinks[0].tls (default false)"]).replace('"out"', '"syslog"')
        + sink(
            'type = "http"\nurl = "http://hec.example.com"\nallow_insecure = true\n'
            'token_file = "sink.token"\n'
        ).replace('"out"', '"hec"')
    )
    path = write(tmp_path, text)
    env = {"T": "okta-token-0123456789"}
    lenient = run_cli("config", "check", "--config", str(path), env=env)
    assert lenient.returncode == 0, lenient.stderr
    lines = lenient.stderr.splitlines()
    for key in (
        "sinks[0].verify",
        "sinks[1].tls (default false)",
        "sinks[2].allow_insecure",
        "sinks[2].token_file",
    ):
        assert any(line.startswith(f"{path}: warning: {key}: ") for line in lines), key
    assert len(lines) == 4
    assert "OK" in lenient.stdout
    strict = run_cli("config", "check", "--config", str(path), "--strict", env=env)
    assert strict.returncode == 2
    assert strict.stderr == lenient.stderr and "OK" not in strict.stdout


def test_strict_passes_a_clean_config(tmp_path: Path) -> None:
    path = write(tmp_path, SOURCE)
    run = run_cli("config", "check", "--config", str(path), "--strict", env={"T": "x" * 20})
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""

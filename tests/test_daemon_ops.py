"""Running the daemon for real: many orgs, a bad one and a rate-limited one, health and
metrics while it runs, SIGHUP reloads, a second daemon refused, a fast SIGTERM."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from tests.helpers import TOKEN, Daemon, Sim, daemon_api, make_sim, run_cli, stored_uuids

pytestmark = pytest.mark.slow  # starts the daemon, fifty orgs


def source_block(name: str, sim: Sim, token_env: str = "TOK", interval: str = "1h") -> str:
    return (
        f'[[sources]]\nname = "{name}"\norg_url = "{sim.url}"\ntoken_env = "{token_env}"\n'
        f'poll_interval = "{interval}"\npage_limit = 100\n'
    )


def write_config(path: Path, blocks: list[str]) -> Path:
    path.write_text(
        '[storage]\npath = "okta.duckdb"\n\n[api]\nlisten = "127.0.0.1:0"\n\n' + "\n".join(blocks)
    )
    return path


def cycles_done(*names: str):  # type: ignore[no-untyped-def]
    def done(logs: list[dict[str, object]]) -> bool:
        seen = {g["source"] for g in logs if g["event"] == "poll.cycle_done" and g["caught_up"]}
        return set(names) <= seen

    return done


@pytest.fixture
def orgs() -> Iterator[list[Sim]]:
    sims = [make_sim(None, seed=100 + i) for i in range(50)]
    now = datetime.now(UTC)
    for sim in sims:
        sim.org.add(
            sim.org.generator.stream(150, now - timedelta(hours=2), now - timedelta(minutes=1))
        )
    yield sims
    for sim in sims:
        sim.server.stop()


def test_fifty_orgs_in_one_daemon_with_a_bad_and_a_rate_limited_one(
    orgs: list[Sim], tmp_path: Path
) -> None:
    limited = make_sim(None, seed=7, limit=3, window_seconds=2)
    limited.org.add(
        limited.org.generator.stream(
            700, datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) - timedelta(minutes=1)
        )
    )
    try:
        blocks = [source_block(f"org{i:02d}", sim) for i, sim in enumerate(orgs)]
        blocks.append(source_block("broken", orgs[0], token_env="BAD"))
        blocks.append(source_block("limited", limited))
        config = write_config(tmp_path / "oktaduck.toml", blocks)
        daemon = Daemon(config, {"TOK": TOKEN, "BAD": "not-the-token"})
        names = [f"org{i:02d}" for i in range(50)]
        daemon.wait_for(cycles_done(*names, "limited"))
        db = tmp_path / "okta.duckdb"
        url, auth = daemon_api(db)
        health = httpx.get(url + "/healthz", headers=auth)
        assert health.json()["sources"]["broken"]["consecutive_failures"] >= 1
        assert "E0000011" in health.json()["sources"]["broken"]["last_error"]
        metrics = httpx.get(url + "/metrics", headers=auth).text
        assert 'oktaduck_events_stored_total{source="org07"} 150' in metrics
        assert 'oktaduck_source_up{source="broken"} 0' in metrics
        assert 'oktaduck_events_stored_total{source="limited"} 700' in metrics
        assert "oktaduck_cursor_lag_seconds" in metrics and "oktaduck_requests_total" in metrics
        status = run_cli("status", "--db", str(db), "--format", "json")
        assert len(orjson.loads(status.stdout)) == 51
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 10
        got = stored_uuids(db)
        assert len(got) == len(set(got))
        expected = set().union(*(s.org.visible_uuids() for s in orgs), limited.org.visible_uuids())
        assert set(got) == expected
    finally:
        limited.server.stop()


def test_sighup_picks_up_a_new_source(tmp_path: Path) -> None:
    a, b = make_sim(None, seed=1), make_sim(None, seed=2)
    now = datetime.now(UTC)
    for sim in (a, b):
        sim.org.add(
            sim.org.generator.stream(120, now - timedelta(hours=1), now - timedelta(minutes=1))
        )
    try:
        config = write_config(tmp_path / "oktaduck.toml", [source_block("a", a)])
        daemon = Daemon(config, {"TOK": TOKEN})
        daemon.wait_for(cycles_done("a"))
        write_config(config, [source_block("a", a), source_block("b", b)])
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for(cycles_done("a", "b"))
        assert any(g["event"] == "daemon.reloading" for g in daemon.logs)
        assert daemon.stop() == 0
        got = stored_uuids(tmp_path / "okta.duckdb")
        assert len(got) == len(set(got)) == 240
    finally:
        a.server.stop()
        b.server.stop()


def test_a_second_daemon_on_the_same_database_is_refused(live_sim: Sim, tmp_path: Path) -> None:
    config = write_config(tmp_path / "oktaduck.toml", [source_block("a", live_sim)])
    first = Daemon(config, {"TOK": TOKEN})
    first.wait_for(lambda logs: any(g["event"] == "daemon.started" for g in logs))
    try:
        second = run_cli("run", "--config", str(config), env={"TOK": TOKEN})
        assert second.returncode != 0
        assert "in use by another process" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        assert first.stop() == 0


def test_sigterm_ends_a_slow_request_within_seconds(tmp_path: Path) -> None:
    sim = make_sim(None, slow_seconds=60)
    sim.org.inject("slow", count=5)
    try:
        config = write_config(tmp_path / "oktaduck.toml", [source_block("a", sim)])
        daemon = Daemon(config, {"TOK": TOKEN})
        daemon.wait_for(lambda logs: any(g["event"] == "daemon.started" for g in logs))
        time.sleep(0.5)  # let the first request reach the slow server (not a wait for a result)
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 12
    finally:
        sim.server.stop()


def test_sigusr1_prints_every_threads_stack_and_the_daemon_runs_on(tmp_path: Path) -> None:
    sim = make_sim(None)
    try:
        config = write_config(tmp_path / "oktaduck.toml", [source_block("a", sim)])
        daemon = Daemon(config, {"TOK": TOKEN})
        daemon.caught_up("a")
        daemon.proc.send_signal(signal.SIGUSR1)
        assert daemon.proc.stderr is not None
        dump: list[str] = []
        for line in daemon.proc.stderr:  # faulthandler's lines, then the logs go on
            dump.append(line)
            if line.startswith("  File") and "ingest/service/daemon.py" in line:
                break
        assert any(line.startswith(("Thread 0x", "Current thread 0x")) for line in dump)
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
    finally:
        sim.server.stop()


def test_the_example_config_and_the_deploy_files_check_out(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    for name in ("oktaduck.toml", "compose-oktaduck.toml"):
        out = run_cli("config", "check", "--config", str(repo / "deploy" / name))
        assert out.returncode == 0, out.stderr
        assert "OK" in out.stdout
    unit = (repo / "deploy" / "systemd" / "oktaduck.service").read_text()
    for setting in ("ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=oktaduck"):
        assert setting in unit
    import shutil
    import subprocess

    analyze = shutil.which("systemd-analyze")
    if analyze:
        copy = tmp_path / "oktaduck.service"
        copy.write_text(unit.replace("/opt/oktaduck/.venv/bin/oktaduck", "/bin/true"))
        done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
        assert "oktaduck.service" not in done.stderr or "Unknown" not in done.stderr, done.stderr


def test_an_oauth_dpop_org_next_to_an_api_token_org(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ingest.simulate.oauth import OAuthApp, OAuthSettings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "okta-app.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pem.chmod(0o600)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = OAuthApp("0oaservice", (("kid-1", public.decode()),), requires_dpop=True)
    secured = make_sim(None, seed=9, oauth=OAuthSettings(apps=(app,)), tokens=frozenset())
    plain = make_sim(None, seed=10)
    now = datetime.now(UTC)
    for sim in (secured, plain):
        sim.org.add(
            sim.org.generator.stream(300, now - timedelta(hours=1), now - timedelta(minutes=1))
        )
    try:
        oauth_block = (
            f'[[sources]]\nname = "secured"\norg_url = "{secured.url}"\n'
            'poll_interval = "1h"\n\n[sources.oauth]\nclient_id = "0oaservice"\n'
            f'private_key_file = "{pem}"\nkey_id = "kid-1"\ndpop = true\n'
        )
        config = write_config(
            tmp_path / "oktaduck.toml", [source_block("plain", plain), oauth_block]
        )
        check = run_cli(
            "config", "check", "--config", str(config), "--require-secrets", env={"TOK": TOKEN}
        )
        assert check.returncode == 0, check.stderr
        daemon = Daemon(config, {"TOK": TOKEN})
        daemon.wait_for(cycles_done("plain", "secured"))
        assert daemon.stop() == 0
        got = stored_uuids(tmp_path / "okta.duckdb")
        assert len(got) == len(set(got)) == 600
        assert set(got) == secured.org.visible_uuids() | plain.org.visible_uuids()
        assert secured.org.oauth is not None
    finally:
        secured.server.stop()
        plain.server.stop()

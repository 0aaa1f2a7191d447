"""Lakes for tests: a throwaway PostgreSQL cluster, and LakeConfigs on every catalog kind.

PostgreSQL refuses to run as root, so the cluster runs as an unprivileged user (created when
missing, as CI runs as root) on a free port of 127.0.0.1, with trust authentication for that
loopback only; it is stopped at the end of the session. Each lake gets a database of its own
in it, so tests never see each other's tables.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ingest.store.db import Store
from ingest.store.lake import LakeConfig

PG_USER = "oktaduck-pg"  # the OS user the cluster runs as when the tests run as root
DB_USER = "lake"  # the cluster's superuser
_databases = itertools.count(1)
# On a test that takes the ``store`` fixture (tests/conftest.py): run it on a DuckDB file and
# on new lakes with a PostgreSQL and a SQLite catalog.
ON_EVERY_STORE = pytest.mark.parametrize("store", ["file", "postgres", "sqlite"], indirect=True)


def pg_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (the newest installed)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> list[str]:
    """The prefix that runs a program as an unprivileged user (nothing when not root)."""
    if os.getuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", PG_USER, "--"]


@dataclass
class PostgresCluster:
    """A running cluster; ``database()`` makes a fresh database for one lake."""

    folder: Path
    port: int
    bin: Path

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                DB_USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout

    def database(self) -> str:
        name = f"lake{os.getpid()}_{next(_databases)}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def catalog(self, database: str) -> str:
        return f"postgres:dbname={database} host=127.0.0.1 port={self.port} user={DB_USER}"

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [
                *_run_as(),
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                mode,
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        subprocess.run(
            [
                *_run_as(),
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-l",
                str(self.folder / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
                "-o",
                "-c fsync=off -c synchronous_commit=off -c max_connections=200",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a throwaway cluster; stop it and remove its files after."""
    bin = pg_bin()
    if bin is None:
        raise RuntimeError(
            "PostgreSQL is not installed (apt-get install postgresql; `make test` does it as root)"
        )
    folder = Path(tempfile.mkdtemp(prefix="oktaduck-pg-"))
    prefix = _run_as()
    if prefix:
        shutil.chown(folder, PG_USER)
    subprocess.run(
        [
            *prefix,
            str(bin / "initdb"),
            "-D",
            str(folder / "data"),
            "-U",
            DB_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    cluster = PostgresCluster(folder, free_port(), bin)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


def make_lake(
    kind: str, folder: Path, cluster: PostgresCluster | None = None, **options: object
) -> LakeConfig:
    """A new, empty lake: its catalog of ``kind`` (postgres needs ``cluster``) and its data
    in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "postgres":
        assert cluster is not None, "a postgres lake needs the pg_cluster fixture"
        catalog = cluster.catalog(cluster.database())
    elif kind == "sqlite":
        catalog = f"sqlite:{folder / 'catalog.sqlite'}"
    else:
        catalog = f"duckdb:{folder / 'catalog.duckdb'}"
    return replace(LakeConfig(catalog=catalog, data=str(folder / "data")), **options)  # type: ignore[arg-type]


def lake_toml(lake: LakeConfig) -> str:
    """The ``[storage]`` table of a config file for ``lake``."""
    return (
        "[storage.lake]\n"
        f"catalog = {lake.catalog!r}\n"
        f"data = {lake.data!r}\n"
        f'lease_ttl = "{int(lake.lease_ttl.total_seconds())}s"\n'
        + (f"owner = {lake.owner!r}\n" if lake.owner else "")
    ).replace("'", '"')


def set_next_url(store: Store, source: str, org_url: str, url: str | None) -> None:
    """Put a source's stored ``next`` URL at ``url`` (None forgets it: a cold start), as an
    old or damaged cursor would have it; the counts stay."""
    if store.lake is None:
        store.con.execute(
            "INSERT INTO cursors (source, org_url, next_url, created_at) "
            "VALUES ($source, $org, $url, now()) "
            "ON CONFLICT (source) DO UPDATE SET next_url = excluded.next_url",
            {"source": source, "org": org_url, "url": url},
        )
        return
    store.con.execute(  # the lake's cursors are a log: its newest row is the cursor
        "INSERT INTO cursor_log SELECT $source, $org, $url, coalesce(c.pages, 0), "
        "coalesce(c.events, 0), coalesce(c.duplicates, 0), coalesce(c.rejects, 0), "
        "c.newest_published, c.last_commit, coalesce(c.created_at, now()), NULL "
        "FROM (SELECT 1) LEFT JOIN cursors c ON c.source = $source",
        {"source": source, "org": org_url, "url": url},
    )

"""The lake store: a DuckLake catalog (PostgreSQL, SQLite or a DuckDB file) with Parquet data
files on a filesystem or object storage, attached to an in-memory DuckDB.

DuckLake and its catalog drivers are DuckDB extensions. They are never downloaded: the
``lake`` extra installs the pip packages that ship them (``duckdb-extension-ducklake`` and
friends, built for the pinned DuckDB), and each is loaded by the path of that file.

Once attached, the connection is locked down like the file store's: no SQL may read or write
a file outside the lake's data path (``allowed_directories``), and a query cannot change a
setting. The catalog's password and the S3 keys are DuckDB secrets: ``duckdb_secrets()``
shows them redacted, and the attached database's path never holds them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb

from ingest.base.errors import ConfigError, LakeUnavailable, StoreError, StoreInvalidated
from ingest.base.redact import redact
from ingest.base.secrets import Secret, optional_secret

LAKE = "lake"  # the name the lake is attached as; every table is reached through USE lake
STORE = "store"  # the name a writer attaches a database file as (``db.connect``)
CATALOG_KINDS = ("postgres", "sqlite", "duckdb")
_KIND_EXTENSION = {"postgres": "postgres_scanner", "sqlite": "sqlite_scanner", "duckdb": None}
_PG_SECRET = "oktaduck_catalog"  # noqa: S105 (a DuckDB secret's name, not its value)
_S3_SECRET = "oktaduck_s3"  # noqa: S105
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# libpq keywords a catalog string may hold; a password is never one of them (password_env)
_PG_KEYWORDS = frozenset(
    (
        "host", "hostaddr", "port", "dbname", "user", "sslmode", "sslrootcert", "sslcert",
        "sslkey", "connect_timeout", "application_name", "target_session_attrs", "keepalives",
        "keepalives_idle",
    )
)  # fmt: skip


@dataclass(frozen=True)
class S3Config:
    """Object storage for the data files, through DuckDB's httpfs (the S3 API)."""

    region: str = "us-east-1"
    endpoint: str | None = None  # host[:port] of an S3-compatible service; None = AWS
    url_style: str = "vhost"  # or "path" (most self-hosted services)
    use_ssl: bool = True
    key_id_env: str | None = None
    secret_env: str | None = None
    secret_file: Path | None = None

    def secret(self) -> Secret | None:
        return optional_secret(self.secret_file, self.secret_env)

    def key_id(self) -> Secret | None:
        return optional_secret(None, self.key_id_env)


@dataclass(frozen=True)
class LakeConfig:
    """``[storage] lake = {...}``: where the catalog and the data files are."""

    catalog: str  # "postgres:dbname=... host=...", "sqlite:/path", "duckdb:/path"
    data: str | None = None  # "/path" or "s3://bucket/prefix"; readers need none
    metadata_schema: str = "oktaduck"  # the PostgreSQL schema of the catalog's tables
    password_env: str | None = None
    password_file: Path | None = None
    s3: S3Config | None = None
    lease_ttl: timedelta = timedelta(seconds=60)
    inline_rows: int = 200  # commits of fewer rows stay in the catalog until compaction
    compact_every: timedelta = timedelta(hours=1)
    keep_snapshots: timedelta = timedelta(days=1)
    owner: str | None = None  # this process's name in leases; default host:pid

    @property
    def kind(self) -> str:
        return self.catalog.partition(":")[0]

    def describe(self) -> str:
        """The lake for messages and ``status`` (the catalog string holds no password)."""
        where = f" (data {self.data})" if self.data else ""
        return f"lake {self.catalog}{where}"

    def password(self) -> Secret | None:
        return optional_secret(self.password_file, self.password_env)

    def owner_name(self) -> str:
        return self.owner or f"{socket.gethostname()}:{os.getpid()}"


def check_catalog(text: str, base: Path | None = None) -> str:
    """The catalog string, checked (and a file catalog's path made absolute against
    ``base``); a ConfigError says what is wrong."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in CATALOG_KINDS or not rest.strip():
        raise ConfigError(
            "expected postgres:KEY=VALUE ..., sqlite:PATH or duckdb:PATH "
            f"(got {redact(text[:60])!r})"
        )
    if "'" in rest or "\x00" in rest:
        raise ConfigError("a catalog string cannot hold a quote or NUL character")
    if kind == "postgres":
        for pair in rest.split():
            key, eq, value = pair.partition("=")
            if key == "password":
                raise ConfigError(
                    "no password in the catalog string: set password_env or password_file"
                )
            if not eq or not value or key not in _PG_KEYWORDS:
                raise ConfigError(f"{key!r} is not a connection keyword here (dbname, host, ...)")
        return f"postgres:{rest.strip()}"
    path = Path(rest)
    if base is not None and not path.is_absolute():
        path = base / path
    return f"{kind}:{path}"


def parse_store_spec(text: str) -> str | Path:
    """``--store``: a lake catalog string (``postgres:...``, ``sqlite:...``, ``duckdb:...``,
    with or without ``ducklake:`` before it), or the path of a DuckDB file."""
    spec = text.removeprefix("ducklake:")
    if spec.partition(":")[0] in CATALOG_KINDS:
        return check_catalog(spec, Path.cwd())
    return Path(text)


def extension_file(name: str) -> Path:
    """The ``.duckdb_extension`` file the pip package ``duckdb-extension-<name>`` ships for
    this DuckDB; LakeUnavailable when the ``lake`` extra is not installed."""
    package = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(package)
    folder = Path(spec.origin).parent if spec and spec.origin else None
    if folder is None:
        raise LakeUnavailable(
            f"the lake store needs the DuckDB extension {name!r}: install oktaduck[lake]"
        )
    found = sorted(
        (folder / "extensions" / f"v{duckdb.__version__}").glob(f"{name}.duckdb_extension")
    )
    if not found:
        raise LakeUnavailable(
            f"the installed {package} has no build for DuckDB {duckdb.__version__}; "
            "install oktaduck[lake] with the DuckDB it pins"
        )
    return found[0]


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


_CREATE_ATTEMPTS = 5  # attaching a new lake while another writer creates its catalog


def connect_lake(
    lake: LakeConfig, *, read_only: bool, files: tuple[Path, ...] = ()
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as ``lake`` and in use, in UTC, with file
    access limited to the lake's data path (and ``files``: a DuckDB file ``store copy``
    attaches, with its WAL). A writer creates the catalog on first use."""
    if not read_only and lake.data and not lake.data.startswith("s3://"):
        try:
            Path(lake.data).mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            raise LakeUnavailable(
                f"{lake.describe()}: cannot create the data folder: {err.strerror or err}"
            ) from None
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        con = duckdb.connect(
            ":memory:",
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        try:
            _attach(con, lake, read_only, files)
            return con
        except duckdb.Error as err:
            con.close()
            if read_only or attempt == _CREATE_ATTEMPTS or not _lost_creation(err):
                raise translate_lake(err, lake) from None
        except BaseException:
            con.close()
            raise
    raise AssertionError("unreachable")  # the last attempt returns or raises


def _lost_creation(err: duckdb.Error) -> bool:
    """Two writers attaching a new lake at once both create its catalog tables; the one
    whose CREATE lost finds them there when it attaches again."""
    text = str(err)
    return "duplicate key value" in text or "already exists" in text


def _attach(
    con: duckdb.DuckDBPyConnection, lake: LakeConfig, read_only: bool, files: tuple[Path, ...]
) -> None:
    needed = ["ducklake", _KIND_EXTENSION[lake.kind]]
    if lake.s3 is not None or (lake.data or "").startswith("s3://") or read_only:
        needed.append("httpfs")  # a reader learns where the data is from the catalog
    for name in needed:
        if name is None:
            continue
        try:
            path = extension_file(name)
        except LakeUnavailable:
            if name == "httpfs" and lake.s3 is None and read_only:
                continue  # a reader of a lake on a filesystem does without
            raise
        con.execute(f"LOAD {sql_literal(str(path))}")
    options = []
    password = lake.password()
    if password is not None:
        con.execute(
            f"CREATE SECRET {_PG_SECRET} (TYPE postgres, PASSWORD {sql_literal(password.reveal())})"
        )
        options.append(f"METADATA_PARAMETERS MAP {{'SECRET': '{_PG_SECRET}'}}")
    if lake.s3 is not None:
        _s3_secret(con, lake.s3)
    if lake.kind == "postgres":
        options.append(f"METADATA_SCHEMA {sql_literal(lake.metadata_schema)}")
    if read_only:
        options.append("READ_ONLY")
    else:  # an ATTACH option: ducklake_set_option crashes DuckDB 1.5.5 once a view exists
        options.append(f"DATA_INLINING_ROW_LIMIT {int(lake.inline_rows)}")
        if lake.data:
            options.append(f"DATA_PATH {sql_literal(lake.data)}")
    target = sql_literal(f"ducklake:{lake.catalog}")
    con.execute(f"ATTACH {target} AS {LAKE} ({', '.join(options)})")
    con.execute(f"USE {LAKE}")
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    rows = con.execute(
        f"SELECT value FROM ducklake_options('{LAKE}') WHERE option_name = 'data_path'"
    ).fetchall()
    data_path = str(rows[0][0]) if rows and rows[0][0] else lake.data
    allowed = [data_path.rstrip("/") + "/"] if data_path else []
    con.execute("SET allowed_directories = $dirs", {"dirs": allowed})
    if files:
        paths = [str(p) + suffix for p in files for suffix in ("", ".wal")]
        con.execute("SET allowed_paths = $paths", {"paths": paths})
    # One thread: reading ``raw`` from Parquet takes a buffer per thread as large as a column
    # chunk (128 MiB in compacted files at 1.2M events), and two of them passed the readers'
    # 512 MB on 30-day feeds where one answers in 2-4 s (docs/performance.md).
    con.execute("SET threads = 1")
    con.execute("SET enable_external_access = false")


def open_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of ``con`` that sees the store's tables. DuckDB starts every cursor in the
    instance's first database, which for a lake, and for a database file a writer opened
    (``db.connect``), is an empty in-memory one: ``USE`` puts it in the store (it is allowed
    after the configuration is locked). Use this, never ``con.cursor()``, on a store's
    connection."""
    cursor = con.cursor()
    attached = cursor.execute(
        "SELECT database_name FROM duckdb_databases() "
        "WHERE (database_name = $lake AND type = 'ducklake') OR database_name = $store",
        {"lake": LAKE, "store": STORE},
    ).fetchall()
    if attached:
        cursor.execute(f"USE {attached[0][0]}")
    return cursor


def _s3_secret(con: duckdb.DuckDBPyConnection, s3: S3Config) -> None:
    parts = [
        "TYPE s3",
        f"REGION {sql_literal(s3.region)}",
        f"URL_STYLE {sql_literal(s3.url_style)}",
        f"USE_SSL {'true' if s3.use_ssl else 'false'}",
    ]
    if s3.endpoint:
        parts.append(f"ENDPOINT {sql_literal(s3.endpoint)}")
    key_id, secret = s3.key_id(), s3.secret()
    if key_id is not None:
        parts.append(f"KEY_ID {sql_literal(key_id.reveal())}")
    if secret is not None:
        parts.append(f"SECRET {sql_literal(secret.reveal())}")
    con.execute(f"CREATE SECRET {_S3_SECRET} ({', '.join(parts)})")


_UNAVAILABLE = (
    "Unable to connect",
    "could not connect",
    "Connection refused",
    "connection to server",
    "server closed the connection",
    "Failed to open",
    "No such file or directory",
    "HTTP",
    "Could not establish connection",
    "database is locked",
)


# how libpq ends the line of a connection that failed or broke (``_unreachable``)
_CONNECTION = (
    "Connection refused",
    "server closed the connection",
    "could not connect",
    "Connection timed out",
    "No route to host",
    "could not translate host name",
)


def is_conflict(err: BaseException) -> bool:
    """A commit lost an optimistic-concurrency race with another writer of the lake (or
    DuckLake gave up its own retries of a snapshot id other writers kept taking first)."""
    if not isinstance(err, duckdb.Error):
        return False
    text = str(err).lower()
    return "conflict" in text or "maximum retry count" in text


def translate_lake(err: duckdb.Error, lake: LakeConfig | str) -> StoreError:
    """One line for a DuckDB error on the lake. DuckLake's messages can run to kilobytes
    (a failed commit lists column statistics): the first line, cut to 300 characters."""
    where = lake.describe() if isinstance(lake, LakeConfig) else f"lake {lake}"
    text = str(err).strip()
    first = next((line for line in text.splitlines() if line.strip()), type(err).__name__)
    first = redact(first)
    if len(first) > 300:
        first = first[:297] + "..."
    if stale(err):
        return StoreInvalidated(f"{where}: {first} (the connection must be opened again)")
    if "database is locked" in text:  # often on a later line, under a generic first one
        return LakeUnavailable(
            f"{where}: the catalog is locked by another writer; a SQLite catalog takes one "
            "writing process at a time (PostgreSQL takes many)"
        )
    if any(marker in text for marker in _UNAVAILABLE) or isinstance(err, duckdb.IOException):
        reason = _unreachable(text)
        if reason:  # "Connection refused" said last, after the catalog string twice over
            return LakeUnavailable(f"{where}: cannot reach the catalog: {redact(reason)[:200]}")
        return LakeUnavailable(f"{where}: {first}")
    return StoreError(f"{where}: {first}")


def stale(err: duckdb.Error) -> bool:
    """Whether a connection is of no use after ``err``: DuckDB invalidates a database after an
    internal error, and a connection to a lake that still names an inlined-data table a
    flush of another connection dropped fails every read of that table from then on, with
    one of these messages (DuckDB 1.5.5; duckdb/ducklake issues 1305 and 1413)."""
    text = str(err)
    return (
        isinstance(err, duckdb.InternalException | duckdb.FatalException)
        or "unsuccessful query result" in text
        or "ducklake_inlined_data_" in text
    )


def _unreachable(text: str) -> str | None:
    """Why a connection to the catalog failed, as libpq says it at the end of its line
    ("Connection refused", "server closed the connection unexpectedly"), if it does."""
    for line in text.splitlines():
        reason = line.rsplit(": ", 1)[-1].strip()
        if any(marker in reason for marker in _CONNECTION):
            return reason
    return None


def check_metadata_schema(name: str) -> str:
    if not _SCHEMA_NAME.match(name):
        raise ConfigError("a lower-case SQL name: letters, digits and _ (at most 63)")
    return name

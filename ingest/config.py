"""Configuration: a TOML file (or command-line flags) turned into frozen dataclasses.

Validation happens here, without touching the network or the database, and every problem
names the key at fault. Secrets are referenced (``token_env``, ``token_file``), never inlined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ingest.base.errors import ConfigError, UnsafeURL
from ingest.base.secrets import Secret, optional_secret
from ingest.base.timeparse import parse_duration
from ingest.base.tomlfile import read_toml
from ingest.collect.settings import (
    DEFAULT_GROUP_BYTES,
    DEFAULT_GROUP_EVENTS,
    DEFAULT_TOKEN_ENV,
    SourceConfig,
)
from ingest.export.settings import SinkSpec, parse_sink
from ingest.mapping import default_mapping_dir
from ingest.okta.client import MAX_RESPONSE_BYTES, ClientPolicy
from ingest.okta.oauth_config import OAuthConfig
from ingest.okta.urls import OrgURL, is_loopback
from ingest.store.lake import LakeConfig, S3Config, check_catalog, check_metadata_schema
from ingest.store.limits import DEFAULT_QUERY_TIMEOUT, QueryLimits

MAX_LOOKBACK = timedelta(days=90)
MAX_GROUP_EVENTS = 1_000_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def normalized_mapping_path() -> Path:
    """The shipped normalized mapping (``OKTADUCK_MAPPINGS`` overrides the folder)."""
    return default_mapping_dir() / "okta" / "normalized.toml"


@dataclass(frozen=True)
class ApiConfig:
    """The daemon's local HTTP API (health, metrics, feeds, read-only SQL)."""

    host: str = "127.0.0.1"
    port: int = 8765
    enabled: bool = True
    token_env: str | None = None
    token_file: Path | None = None
    workers: int = 8  # requests served at once; more wait briefly or get a 503
    request_timeout: float = 10.0  # seconds for request line, headers and body together
    max_result_bytes: int = 256 << 20  # a larger answer ends with an error line

    def token(self) -> Secret | None:
        """The configured token (``token_file`` wins over ``token_env``); None when neither
        is set, and the daemon then generates one next to the database."""
        return optional_secret(self.token_file, self.token_env)


def _api(table: _Table, base: Path) -> ApiConfig:
    listen = table.get("listen", "127.0.0.1:8765", str)
    host, sep, port_text = listen.rpartition(":")
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port_text) or not host:
        raise ConfigError(f"{table.key('listen')}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    if int(port_text) > 65535:
        raise ConfigError(f"{table.key('listen')}: the port is from 0 to 65535")
    host = host.strip("[]")
    token_env = table.get("token_env", None, str)
    token_file = table.get("token_file", None, str)
    config = ApiConfig(
        host=host,
        port=int(port_text),
        enabled=table.get("enabled", True, bool),
        token_env=token_env,
        token_file=(base / token_file) if token_file else None,
        workers=_bounded_int(table, "workers", 8, 1, 64),
        request_timeout=_seconds(table, "request_timeout", 10.0),
        max_result_bytes=_bounded_int(table, "max_result_bytes", 256 << 20, 1, 1 << 40),
    )
    table.done()
    if not is_loopback(host) and not (token_env or token_file):
        raise ConfigError(
            f"{table.key('listen')}: {host} is not a loopback address; set api.token_env or "
            "api.token_file so the API requires a token"
        )
    return config


def _lake(table: _Table, base: Path) -> LakeConfig:
    """``[storage] lake = {...}``; the secrets are named (env, file), never written here."""
    catalog = table.get("catalog", None, str)
    if not catalog:
        raise ConfigError(
            f"{table.key('catalog')}: required: postgres:KEY=VALUE ..., sqlite:PATH or duckdb:PATH"
        )
    try:
        catalog = check_catalog(catalog, base)
    except ConfigError as err:
        raise ConfigError(f"{table.key('catalog')}: {err}") from None
    data = table.get("data", None, str)
    if not data:
        raise ConfigError(f"{table.key('data')}: required: a folder, or s3://bucket/prefix")
    if not data.startswith("s3://"):
        if "://" in data or "'" in data:
            raise ConfigError(f"{table.key('data')}: a folder, or s3://bucket/prefix")
        data = str(base / data)
    elif "'" in data:
        raise ConfigError(f"{table.key('data')}: cannot hold a quote")
    schema = table.get("metadata_schema", "oktaduck", str)
    try:
        check_metadata_schema(schema)
    except ConfigError as err:
        raise ConfigError(f"{table.key('metadata_schema')}: {err}") from None
    password_file = table.get("password_file", None, str)
    s3 = table.get("s3", None, dict)
    owner = table.get("owner", None, str)
    if owner is not None and not _NAME.match(owner):
        raise ConfigError(f"{table.key('owner')}: letters, digits, '_', '.', ':', '-'")
    lake = LakeConfig(
        catalog=catalog,
        data=data,
        metadata_schema=schema,
        password_env=table.get("password_env", None, str),
        password_file=(base / password_file) if password_file else None,
        s3=_s3(_Table(s3, table.key("s3")), base) if s3 is not None else None,
        lease_ttl=timedelta(seconds=_seconds(table, "lease_ttl", 60.0)),
        inline_rows=_bounded_int(table, "inline_rows", 200, 0, 1_000_000),
        compact_every=timedelta(seconds=_seconds(table, "compact_every", 3600.0)),
        keep_snapshots=timedelta(seconds=_seconds(table, "keep_snapshots", 86400.0)),
        owner=owner,
    )
    table.done()
    if lake.lease_ttl < timedelta(seconds=5) or lake.lease_ttl > timedelta(hours=1):
        raise ConfigError(f"{table.key('lease_ttl')}: from 5s to 1h")
    if (lake.data or "").startswith("s3://") and lake.s3 is None:
        raise ConfigError(f"{table.key('s3')}: an s3:// data path needs [storage.lake.s3]")
    return lake


def _s3(table: _Table, base: Path) -> S3Config:
    secret_file = table.get("secret_file", None, str)
    url_style = table.get("url_style", "vhost", str)
    if url_style not in ("vhost", "path"):
        raise ConfigError(f"{table.key('url_style')}: vhost or path")
    endpoint = table.get("endpoint", None, str)
    if endpoint is not None and not re.fullmatch(r"[A-Za-z0-9.\[\]:-]{1,255}", endpoint):
        raise ConfigError(f"{table.key('endpoint')}: HOST or HOST:PORT, no scheme")
    config = S3Config(
        region=table.get("region", "us-east-1", str),
        endpoint=endpoint,
        url_style=url_style,
        use_ssl=table.get("use_ssl", True, bool),
        key_id_env=table.get("key_id_env", None, str),
        secret_env=table.get("secret_env", None, str),
        secret_file=(base / secret_file) if secret_file else None,
    )
    table.done()
    if "'" in config.region:
        raise ConfigError(f"{table.key('region')}: cannot hold a quote")
    return config


def _bounded_int(table: _Table, name: str, default: int, low: int, high: int) -> int:
    value: int = table.get(name, default, int)
    if not low <= value <= high:
        raise ConfigError(f"{table.key(name)}: a whole number from {low} to {high}")
    return value


def _seconds(table: _Table, name: str, default: float) -> float:
    seconds = parse_duration(table.get(name, default), table.key(name)).total_seconds()
    if seconds <= 0:
        raise ConfigError(f"{table.key(name)}: must be longer than 0s")
    return seconds


@dataclass(frozen=True)
class StorageConfig:
    path: Path = Path("state/oktaduck.duckdb")  # the file store, or the state folder's anchor
    lake: LakeConfig | None = None  # [storage] lake = {...}: a DuckLake store instead
    retention: timedelta | None = None  # keep everything unless configured
    retention_every: timedelta = timedelta(hours=6)
    memory_limit: str | None = None  # DuckDB's memory_limit, e.g. "1GB"

    def target(self) -> Path | LakeConfig:
        """Where the events go: the lake when one is configured, else the file."""
        return self.lake or self.path


@dataclass(frozen=True)
class DaemonConfig:
    """``[daemon]``: how ``oktaduck run`` shares its memory between sources."""

    max_inflight_bytes: int = 64 << 20  # pages fetched and not yet committed, all sources


def _daemon(table: _Table) -> DaemonConfig:
    config = DaemonConfig(
        max_inflight_bytes=_bounded_int(table, "max_inflight_bytes", 64 << 20, 1 << 20, 1 << 34)
    )
    table.done()
    return config


@dataclass(frozen=True)
class Config:
    sources: tuple[SourceConfig, ...]
    storage: StorageConfig = field(default_factory=StorageConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    sinks: tuple[SinkSpec, ...] = ()
    mapping: Path | None = None  # the normalized mapping file; None = the shipped one
    query: QueryLimits = field(default_factory=QueryLimits)  # [query]: bounds on every query
    daemon: DaemonConfig = field(default_factory=DaemonConfig)

    def mapping_path(self) -> Path:
        return self.mapping or normalized_mapping_path()

    def sink(self, name: str) -> SinkSpec:
        for sink in self.sinks:
            if sink.name == name:
                return sink
        known = ", ".join(s.name for s in self.sinks) or "none"
        raise ConfigError(f"no sink named {name!r} (configured: {known})")

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} (configured: {known})")


class _Table:
    """A TOML table that remembers which keys were read, to report the unknown ones."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'the file'}: expected a table")
        self.data: dict[str, Any] = data
        self.where = where
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str, default: Any = None, kind: type | tuple[type, ...] = object) -> Any:
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            raise ConfigError(f"{self.key(name)}: wrong type {type(value).__name__}")
        if isinstance(value, str) and "\x00" in value:
            raise ConfigError(f"{self.key(name)}: contains a NUL character")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(f"{self.key(unknown[0])}: unknown key")


def _source(table: _Table, base: Path) -> SourceConfig:
    name = table.get("name", kind=str)
    if not name or not _NAME.match(name):
        raise ConfigError(f"{table.key('name')}: required; letters, digits, '_', '.', '-'")
    org_text = table.get("org_url", kind=str)
    if not org_text:
        raise ConfigError(f"{table.key('org_url')}: required, e.g. https://acme.okta.com")
    try:
        org = OrgURL.parse(org_text)
    except (ConfigError, UnsafeURL) as err:  # plain http:// to a remote host is a config error
        raise ConfigError(f"{table.key('org_url')}: {err}") from None
    token_env = table.get("token_env", None, str)
    token_file = table.get("token_file", None, str)
    if token_env and token_file:
        raise ConfigError(f"{table.key('token_env')}: give token_env or token_file, not both")
    if "token" in table.data:
        raise ConfigError(
            f"{table.key('token')}: secrets are not allowed in the config file; "
            "use token_env or token_file"
        )
    lookback = parse_duration(table.get("lookback", "24h"), table.key("lookback"))
    if lookback > MAX_LOOKBACK or lookback <= timedelta(0):
        raise ConfigError(f"{table.key('lookback')}: must be more than 0 and at most 90 days")
    interval = parse_duration(table.get("poll_interval", "60s"), table.key("poll_interval"))
    if interval < timedelta(seconds=1):
        raise ConfigError(f"{table.key('poll_interval')}: must be at least 1s")
    group = table.get("group_events", DEFAULT_GROUP_EVENTS, int)
    if not 1 <= group <= MAX_GROUP_EVENTS:
        raise ConfigError(f"{table.key('group_events')}: must be between 1 and {MAX_GROUP_EVENTS}")
    group_bytes = table.get("group_bytes", DEFAULT_GROUP_BYTES, int)
    if not 1 << 20 <= group_bytes <= 1 << 30:
        raise ConfigError(f"{table.key('group_bytes')}: must be between 1048576 and 1073741824")
    limit = table.get("page_limit", 1000, int)
    if not 1 <= limit <= 1000:
        raise ConfigError(f"{table.key('page_limit')}: must be between 1 and 1000")
    share = table.get("rate_limit_reserve", 0.2, (int, float))
    if not 0 <= share < 1:
        raise ConfigError(f"{table.key('rate_limit_reserve')}: must be at least 0 and below 1")
    retry_for = parse_duration(table.get("retry_for", "5m"), table.key("retry_for"))
    timeout = parse_duration(table.get("timeout", "60s"), table.key("timeout"))
    max_bytes = table.get("max_response_bytes", MAX_RESPONSE_BYTES, int)
    if not 65536 <= max_bytes <= 2**34:
        raise ConfigError(
            f"{table.key('max_response_bytes')}: must be between 65536 and 17179869184 (16 GiB)"
        )
    if timeout <= timedelta(0):
        raise ConfigError(f"{table.key('timeout')}: must be more than 0")
    ca = table.get("ca_bundle", None, str)
    proxy = table.get("proxy", None, str)
    if proxy is not None and org.scheme == "http":
        raise ConfigError(
            f"{table.key('proxy')}: refusing a proxy for the plain http:// org_url: the proxy "
            "would read the API token; use https:// or no proxy"
        )
    oauth_data = table.get("oauth", None, dict)
    oauth = _oauth(oauth_data, table.key("oauth"), base) if oauth_data is not None else None
    if oauth is not None and (token_env or token_file):
        raise ConfigError(f"{table.key('oauth')}: use an API token or oauth, not both")
    every = table.get("completeness_check", None, (str, int))
    window = parse_duration(
        table.get("completeness_window", "1h"), table.key("completeness_window")
    )
    delay = parse_duration(table.get("completeness_delay", "15m"), table.key("completeness_delay"))
    if window <= timedelta(0):
        raise ConfigError(f"{table.key('completeness_window')}: must be more than 0")
    if every and parse_duration(every, table.key("completeness_check")) <= timedelta(0):
        raise ConfigError(f"{table.key('completeness_check')}: must be more than 0")
    table.done()
    return SourceConfig(
        name=name,
        org=org,
        token_env=token_env if token_env or token_file else DEFAULT_TOKEN_ENV,
        token_file=(base / token_file) if token_file else None,
        lookback=lookback,
        poll_interval=interval,
        page_limit=limit,
        group_events=group,
        group_bytes=group_bytes,
        client=ClientPolicy(
            reserve_share=float(share),
            retry_for=retry_for.total_seconds(),
            max_response_bytes=max_bytes,
        ),
        timeout=timeout.total_seconds(),
        ca_bundle=(base / ca) if ca else None,
        proxy=proxy,
        oauth=oauth,
        completeness_every=(
            parse_duration(every, table.key("completeness_check")) if every else None
        ),
        completeness_window=window,
        completeness_delay=delay,
    )


def _oauth(data: object, where: str, base: Path) -> OAuthConfig:
    t = _Table(data, where)
    client_id = t.get("client_id", None, str)
    key_file = t.get("private_key_file", None, str)
    if not client_id or not key_file:
        raise ConfigError(f"{where}: client_id and private_key_file are required")
    scopes = t.get("scopes", ["okta.logs.read"], list)
    if not all(isinstance(s, str) for s in scopes):
        raise ConfigError(f"{t.key('scopes')}: expected a list of strings")
    dpop_key = t.get("dpop_key_file", None, str)
    lifetime = parse_duration(t.get("assertion_lifetime", "5m"), t.key("assertion_lifetime"))
    key_id = t.get("key_id", None, str)
    algorithm = t.get("algorithm", None, str)
    dpop = t.get("dpop", False, bool)
    t.done()
    try:
        return OAuthConfig(
            client_id,
            base / key_file,
            key_id,
            algorithm,
            tuple(scopes),
            dpop,
            base / dpop_key if dpop_key else None,
            lifetime,
        )
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def parse_config(data: dict[str, Any], base: Path) -> Config:
    root = _Table(data, "")
    storage_t = _Table(root.get("storage", {}), "storage")
    retention = storage_t.get("retention", None, (str, int))
    memory = storage_t.get("memory_limit", None, str)
    if memory is not None and not re.fullmatch(
        r"[0-9]{1,12}(\.[0-9]{1,6})?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", memory
    ):
        raise ConfigError("storage.memory_limit: e.g. '512MB' or '2GB'")
    lake = storage_t.get("lake", None, dict)
    storage = StorageConfig(
        path=base / storage_t.get("path", "state/oktaduck.duckdb", str),
        lake=_lake(_Table(lake, "storage.lake"), base) if lake is not None else None,
        retention=parse_duration(retention, "storage.retention") if retention else None,
        retention_every=parse_duration(
            storage_t.get("retention_every", "6h"), "storage.retention_every"
        ),
        memory_limit=memory,
    )
    if storage.retention is not None and storage.retention < timedelta(days=1):
        raise ConfigError("storage.retention: at least 1d")
    if storage.retention_every < timedelta(seconds=1):
        raise ConfigError("storage.retention_every: at least 1s")
    storage_t.done()
    api = _api(_Table(root.get("api", {}), "api"), base)
    query_t = _Table(root.get("query", {}), "query")
    query = QueryLimits(timeout=_seconds(query_t, "timeout", DEFAULT_QUERY_TIMEOUT))
    query_t.done()
    daemon = _daemon(_Table(root.get("daemon", {}), "daemon"))
    sinks = tuple(
        parse_sink(s, f"sinks[{i}]", base) for i, s in enumerate(root.get("sinks", [], list))
    )
    if twice := _used_twice(s.name for s in sinks):
        raise ConfigError(f"sinks: the name {twice!r} is used twice")
    mapping = root.get("mapping", None, str)
    raw_sources = root.get("sources", [], list)
    if not raw_sources:
        raise ConfigError("sources: at least one [[sources]] table is required")
    sources = tuple(_source(_Table(s, f"sources[{i}]"), base) for i, s in enumerate(raw_sources))
    if twice := _used_twice(s.name for s in sources):
        raise ConfigError(f"sources: the name {twice!r} is used twice")
    root.done()
    return Config(
        sources=sources,
        storage=storage,
        api=api,
        sinks=sinks,
        mapping=(base / mapping) if mapping else None,
        query=query,
        daemon=daemon,
    )


def _used_twice(names: Iterable[str]) -> str | None:
    """The first name that comes again, in one pass (a config may list thousands)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def load_config(path: Path) -> Config:
    """Read and check a config file. Unreadable, binary, over-nested or oversized files
    (more than 16 MiB) are a one-line ConfigError naming the file."""
    _, data = read_toml(path, "config")
    try:
        return parse_config(data, path.resolve().parent)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None

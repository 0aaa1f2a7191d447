"""``[[sinks]]`` in the config file: how each sink is fed (Delivery) and built (Sink).

Validated without the network: every key is checked, secrets are referenced (``token_env``,
``token_file``) and read only when the sink is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.base.clock import Clock
from ingest.base.errors import ConfigError
from ingest.base.secrets import Secret, optional_secret
from ingest.base.timeparse import parse_duration, parse_time
from ingest.export.deliver import Delivery
from ingest.export.formats import FORMATS
from ingest.export.sinks.base import Sink

KINDS = ("file", "stdout", "http", "syslog")


@dataclass(frozen=True)
class SinkSpec:
    """One configured sink: its delivery settings and how to build it."""

    delivery: Delivery
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    interval: timedelta = timedelta(seconds=10)
    token_env: str | None = None
    token_file: Path | None = None

    @property
    def name(self) -> str:
        return self.delivery.sink

    def token(self) -> Secret | None:
        return optional_secret(self.token_file, self.token_env)

    def build(self, clock: Clock) -> Sink:
        """Construct the sink (reads its secret; opens nothing on the network yet)."""
        # imported here: loading a config (which every poll does) needs no sink module
        from ingest.export.sinks import (
            FileSink,
            FileSinkConfig,
            HttpSink,
            HttpSinkConfig,
            StdoutSink,
            SyslogSink,
            SyslogSinkConfig,
        )

        opts = dict(self.options)
        if self.kind == "file":
            return FileSink(FileSinkConfig(name=self.name, finish_on_flush=False, **opts), clock)
        if self.kind == "stdout":
            return StdoutSink(name=self.name)
        if self.kind == "http":
            return HttpSink(HttpSinkConfig(name=self.name, token=self.token(), **opts), clock=clock)
        if opts.get("protocol") == "relp":
            from ingest.export.sinks import RelpSink

            return RelpSink(SyslogSinkConfig(name=self.name, **opts), clock)
        return SyslogSink(SyslogSinkConfig(name=self.name, **opts), clock)


def _duration(value: Any, key: str) -> timedelta:
    return parse_duration(value, key)


def _path(base: Path) -> Callable[[Any, str], Path]:
    def convert(value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: expected a path")
        return base / value

    return convert


def _typed(kind: type | tuple[type, ...]) -> Callable[[Any, str], Any]:
    def convert(value: Any, key: str) -> Any:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise ConfigError(f"{key}: wrong type {type(value).__name__}")
        return value

    return convert


def _table(value: Any, key: str) -> dict[str, str]:
    """HTTP headers: a table of names (RFC 9110 tokens) to values without control characters,
    which httpx would refuse at every request."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{key}: expected a table of strings")
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name) or _CONTROL.search(text):
            raise ConfigError(
                f"{key}.{name[:40]}: a header name is letters, digits and -, its value has "
                "no line break or other control character"
            )
    return dict(value)


def _header_part(*, name: bool) -> Callable[[Any, str], str]:
    """``token_header`` (a header name) or ``token_scheme`` (the start of its value)."""

    def convert(value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: wrong type {type(value).__name__}")
        if not _HEADER_NAME.fullmatch(value) if name else _CONTROL.search(value):
            what = "a header name: letters, digits and -" if name else "no control character"
            raise ConfigError(f"{key}: {what}")
        return value

    return convert


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed in a field value


def _options(kind: str, base: Path) -> dict[str, Callable[[Any, str], Any]]:
    s, i, b, f = _typed(str), _typed(int), _typed(bool), _typed((int, float))
    if kind == "file":
        return {
            "path": _path(base),
            "prefix": s,
            "max_bytes": i,
            "max_age": _duration,
            "gzip": b,
            "gzip_level": i,
        }
    if kind == "http":
        return {
            "url": s,
            "preset": s,
            "headers": _table,
            "token_header": _header_part(name=True),
            "token_scheme": _header_part(name=False),
            "timeout": f,
            "verify": b,
            "ca_file": _path(base),
            "max_batch_bytes": i,
            "gzip": b,
            "allow_insecure": b,
            "sourcetype": s,
            "source": s,
            "host": s,
            "index": s,
            "channel": s,
            "proxy": s,
        }
    if kind == "syslog":
        return {
            "host": s,
            "port": i,
            "framing": s,
            "tls": b,
            "ca_file": _path(base),
            "verify": b,
            "cert_file": _path(base),
            "key_file": _path(base),
            "server_name": s,
            "app_name": s,
            "hostname": s,
            "facility": i,
            "severity": i,
            "bom": b,
            "timeout": f,
            "protocol": s,
            "window": i,
            "resend_bytes": i,
        }
    return {}


COMMON = {
    "name", "type", "format", "start", "interval", "batch_events", "batch_bytes", "retry_for",
    "fields", "token_env", "token_file",
}  # fmt: skip


def parse_sink(data: Any, where: str, base: Path) -> SinkSpec:
    """One ``[[sinks]]`` table -> SinkSpec; the sink's own dataclass validates its values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: required")
    kind = data.get("type")
    if kind not in KINDS:
        raise ConfigError(f"{where}.type: one of {', '.join(KINDS)}")
    fmt = data.get("format", "raw")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}.format: one of {', '.join(FORMATS)}")
    allowed = _options(kind, base)
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key in COMMON:
            continue
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key for a {kind} sink")
        converted = allowed[key](value, f"{where}.{key}")
        if key == "ca_file" and kind == "http":
            options["verify"] = converted
        else:
            options[key] = converted
    fields = data.get("fields", {})
    if not isinstance(fields, dict):
        raise ConfigError(f'{where}.fields: expected a table, e.g. {{ org = "acme" }}')
    delivery = Delivery(
        sink=name,
        format=fmt,
        start=str(data.get("start", "beginning")),
        batch_events=_typed(int)(data.get("batch_events", 1000), f"{where}.batch_events"),
        batch_bytes=_typed(int)(data.get("batch_bytes", 4 << 20), f"{where}.batch_bytes"),
        fields=dict(fields),
        retry_for=_duration(data.get("retry_for", "60s"), f"{where}.retry_for").total_seconds(),
    )
    token_env = data.get("token_env")
    token_file = data.get("token_file")
    spec = SinkSpec(
        delivery=delivery,
        kind=kind,
        options=options,
        interval=_duration(data.get("interval", "10s"), f"{where}.interval"),
        token_env=_typed(str)(token_env, f"{where}.token_env") if token_env else None,
        token_file=_path(base)(token_file, f"{where}.token_file") if token_file else None,
    )
    _check(spec, where)
    return spec


def _check(spec: SinkSpec, where: str) -> None:
    """Build the sink's config dataclass now so its own checks run at load time."""
    from ingest.export.sinks import FileSinkConfig, HttpSinkConfig, SyslogSinkConfig

    required = {"file": "path", "http": "url", "syslog": "host"}.get(spec.kind)
    if required and required not in spec.options:
        raise ConfigError(f"{where}.{required}: required for a {spec.kind} sink")
    start = spec.delivery.start.lower()
    if start not in ("beginning", "now"):
        parse_time(spec.delivery.start, datetime.now(UTC), f"{where}.start")
    if spec.delivery.batch_events < 1:
        raise ConfigError(f"{where}.batch_events: must be at least 1")
    if spec.delivery.batch_bytes < 1024:
        raise ConfigError(f"{where}.batch_bytes: must be at least 1024")
    try:
        if spec.kind == "file":
            FileSinkConfig(**spec.options)
        elif spec.kind == "http":
            HttpSinkConfig(**spec.options)
        elif spec.kind == "syslog":
            SyslogSinkConfig(**spec.options)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None
    except ConfigError as err:  # the sink's own checks say "key: problem"
        text = str(err)
        joined = "." if re.match(r"[a-z_]+: ", text) else ": "
        raise ConfigError(f"{where}{joined}{text}") from None
    if spec.kind == "syslog":  # keys that mean nothing for the chosen protocol
        relp = spec.options.get("protocol") == "relp"
        for key in ("framing", "resend_bytes") if relp else ("window",):
            if key in spec.options:
                other = "tcp" if relp else "relp"
                raise ConfigError(f"{where}.{key}: only with protocol = {other}")

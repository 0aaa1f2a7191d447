"""Exports that are not a sink's regular delivery: a replay of a time range to a configured
sink (its cursor does not move), or a one-off export to a file, stdout or a URL."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ingest.base.errors import ConfigError
from ingest.base.secrets import secret_from_env
from ingest.export.formats import columns_for, format_batch, formatter
from ingest.export.reader import read_range
from ingest.export.sinks.base import Sink
from ingest.filters.okta_filter import search_to_sql
from ingest.mapping import CompiledMapping


@dataclass(frozen=True)
class Selection:
    """Which stored events an export takes, and how they are written."""

    format: str
    since: datetime
    until: datetime
    filter: str | None = None
    q: str | None = None
    fields: dict[str, Any] | None = None
    batch: int = 1000


def select_lines(
    con: duckdb.DuckDBPyConnection, selection: Selection, normalized: CompiledMapping
) -> Iterator[list[bytes]]:
    """Formatted NDJSON lines of the selected events, a batch at a time, in ingest order."""
    condition = search_to_sql(selection.filter, selection.q)
    where, params = (condition.sql, condition.params) if condition else ("", {})
    fmt = formatter(selection.format, selection.fields)
    columns = columns_for(selection.format, normalized)
    for stored in read_range(
        con, selection.since, selection.until, selection.batch, columns, where, params
    ):
        yield format_batch(fmt, stored)


def destination(text: str, clock: Any) -> Sink:
    """``file:PATH`` (one file, published whole on success), ``stdout`` or ``-``,
    ``http(s)://...`` (NDJSON POSTs; bearer token from OKTADUCK_EXPORT_TOKEN), or
    ``syslog://HOST:PORT`` (RFC 5424 over TCP, octet counting) or ``relp://HOST:PORT`` (the
    same messages over RELP, each acknowledged)."""
    # imported here, as in export/settings.py: the sink modules load only when a sink is used
    from ingest.export.sinks import (
        FileSink,
        FileSinkConfig,
        HttpSink,
        HttpSinkConfig,
        RelpSink,
        StdoutSink,
        SyslogSink,
        SyslogSinkConfig,
    )

    if text in ("stdout", "-"):
        return StdoutSink()
    if text.startswith("file:"):
        if not text[5:] or text.endswith("/") or Path(text[5:]).is_dir():
            raise ConfigError(f"--to {text}: give a file name, e.g. file:okta.ndjson")
        if Path(text[5:]).exists() and not Path(text[5:]).is_file():
            # the finished export is renamed over it: a device or FIFO would be replaced
            raise ConfigError(f"--to {text}: exists and is not a regular file")
        return FileSink(FileSinkConfig(path=Path(text[5:]), single_file=True), clock)
    if text.startswith(("http://", "https://")):
        import os

        token = None
        if os.environ.get("OKTADUCK_EXPORT_TOKEN", "").strip():  # checked like a source's
            token = secret_from_env("OKTADUCK_EXPORT_TOKEN")
        return HttpSink(HttpSinkConfig(url=text, token=token), clock=clock)
    for scheme in ("syslog", "relp"):
        if text.startswith(f"{scheme}://"):
            host, _, port = text[len(scheme) + 3 :].rpartition(":")
            valid = port.isascii() and port.isdigit() and len(port) <= 5
            if not host or not valid or not 0 < int(port) < 65536:
                raise ConfigError(f"--to {scheme}://HOST:PORT")
            if scheme == "relp":
                config = SyslogSinkConfig(host=host.strip("[]"), port=int(port), protocol="relp")
                return RelpSink(config, clock)
            return SyslogSink(SyslogSinkConfig(host=host.strip("[]"), port=int(port)), clock)
    raise ConfigError(
        f"--to {text!r}: use file:PATH, stdout, http(s)://URL, syslog://HOST:PORT or "
        "relp://HOST:PORT"
    )


def deliver_all(batches: Iterator[list[bytes]], sink: Sink, progress: bool = True) -> int:
    """Send every batch (no retries: a one-off export fails loudly); return lines sent."""
    sent = 0
    shown = time.monotonic()
    for lines in batches:
        if lines:
            sink.send(lines)
            sent += len(lines)
        if progress and time.monotonic() - shown > 2:
            print(f"  exported {sent} events ...", file=sys.stderr, flush=True)
            shown = time.monotonic()
    sink.close()
    return sent

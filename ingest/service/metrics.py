"""``/metrics`` in Prometheus text format: per source and per sink, read at scrape time; on a
lake also its data files, their bytes and its snapshots (from the catalog)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ingest.base.clock import Clock
from ingest.okta.client import ClientStats
from ingest.store.db import Store
from ingest.store.lake import open_cursor
from ingest.store.lakeinfo import lake_summary
from ingest.store.query import SINK_STATUS_SQL


# What a scrape reads of the daemon's runners (its ``SourceRunner`` and ``SinkRunner``),
# as protocols: the daemon hands its runners down, metrics never reaches up for them.
class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _Counted(Protocol):
    @property
    def stats(self) -> ClientStats: ...


class SourceState(Protocol):
    @property
    def source(self) -> _Named: ...
    @property
    def client(self) -> _Counted | None: ...
    @property
    def failures(self) -> int: ...


class SinkState(Protocol):
    @property
    def spec(self) -> _Named: ...
    @property
    def last_error(self) -> str | None: ...


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, doc: str, samples: Iterable[tuple[dict[str, str], Any]]
    ) -> None:
        self.lines.append(f"# HELP oktaduck_{name} {doc}")
        self.lines.append(f"# TYPE oktaduck_{name} {kind}")
        for labels, value in samples:
            if value is None:
                continue
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            series = f"oktaduck_{name}{{{text}}}" if text else f"oktaduck_{name}"
            self.lines.append(f"{series} {float(value):g}")


def render_metrics(
    store: Store,
    runners: Sequence[SourceState],
    exporters: Sequence[SinkState],
    clock: Clock,
) -> str:
    now = clock.now()
    con = open_cursor(store.con)
    cursors = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT source, events, pages, duplicates, newest_published, last_commit FROM cursors"
        ).fetchall()
    }
    rejects = dict(
        con.execute(
            "SELECT source, count(*) FROM rejects WHERE resolved_at IS NULL GROUP BY 1"
        ).fetchall()
    )
    sinks = {
        r[0]: r for r in con.execute(SINK_STATUS_SQL, {"now": now}).fetchall()
    }  # sink, last_seq, events_behind, seconds_behind, delivered, ...
    out = _Out()
    names = [r.source.name for r in runners]

    def per_source(index: int) -> list[tuple[dict[str, str], Any]]:
        return [({"source": n}, cursors[n][index] if n in cursors else 0) for n in names]

    out.metric("events_stored_total", "counter", "Events stored.", per_source(0))
    out.metric("pages_stored_total", "counter", "Pages committed.", per_source(1))
    out.metric("duplicates_skipped_total", "counter", "Events skipped as already stored.",
               per_source(2))  # fmt: skip
    out.metric("rejects", "gauge", "Events kept apart because they could not be mapped.",
               [({"source": n}, rejects.get(n, 0)) for n in names])  # fmt: skip
    out.metric(
        "cursor_lag_seconds",
        "gauge",
        "Now minus the newest published time stored.",
        [
            ({"source": n}, (now - cursors[n][3]).total_seconds())
            for n in names
            if n in cursors and cursors[n][3] is not None
        ],
    )
    out.metric(
        "last_commit_age_seconds",
        "gauge",
        "Seconds since the source's last commit.",
        [
            ({"source": n}, (now - cursors[n][4]).total_seconds())
            for n in names
            if n in cursors and cursors[n][4] is not None
        ],
    )
    requests = []
    for r in runners:
        stats = r.client.stats if r.client else None
        for status, count in sorted((stats.requests if stats else {}).items()):
            requests.append(({"source": r.source.name, "status": str(status)}, count))
    out.metric("requests_total", "counter", "Requests to Okta by HTTP status.", requests)

    def stat(attr: str) -> list[tuple[dict[str, str], Any]]:
        return [
            ({"source": r.source.name}, getattr(r.client.stats, attr) if r.client else None)
            for r in runners
        ]

    out.metric("rate_limited_total", "counter", "429 answers from Okta.", stat("rate_limited"))
    out.metric("retries_total", "counter", "Requests retried after a failure.", stat("retries"))
    out.metric("rate_limit_remaining", "gauge", "X-Rate-Limit-Remaining of the last answer.",
               stat("remaining"))  # fmt: skip
    out.metric("rate_limit_limit", "gauge", "X-Rate-Limit-Limit of the last answer.",
               stat("limit"))  # fmt: skip
    out.metric("paced_seconds_total", "counter", "Seconds spent waiting for a rate-limit reset.",
               stat("paced_seconds"))  # fmt: skip
    out.metric("source_up", "gauge", "1 when the source's last poll cycle succeeded.",
               [({"source": r.source.name}, 0 if r.failures else 1) for r in runners])  # fmt: skip
    out.metric("poll_failures", "gauge", "Consecutive failed poll cycles.",
               [({"source": r.source.name}, r.failures) for r in runners])  # fmt: skip
    sink_names = [x.spec.name for x in exporters]

    def per_sink(index: int) -> list[tuple[dict[str, str], Any]]:
        return [({"sink": n}, sinks[n][index]) for n in sink_names if n in sinks]

    out.metric("export_events_behind", "gauge", "Stored events the sink has not received.",
               per_sink(2))  # fmt: skip
    out.metric("export_lag_seconds", "gauge", "Age of the oldest event the sink has not received.",
               per_sink(3))  # fmt: skip
    out.metric("export_delivered_total", "counter", "Events the sink accepted.", per_sink(4))
    out.metric("export_up", "gauge", "1 when the sink's last export cycle succeeded.",
               [({"sink": x.spec.name}, 0 if x.last_error else 1) for x in exporters])  # fmt: skip
    if store.lake is not None:
        lake = lake_summary(con)
        out.metric("lake_data_files", "gauge",
                   "Parquet files of the lake's current snapshot, delete files included.",
                   [({}, lake.files)])  # fmt: skip
        out.metric("lake_data_bytes", "gauge", "Bytes of those files.", [({}, lake.bytes)])
        out.metric("lake_snapshots", "gauge", "Snapshots the lake's catalog keeps.",
                   [({}, lake.snapshots)])  # fmt: skip
    return "\n".join(out.lines) + "\n"

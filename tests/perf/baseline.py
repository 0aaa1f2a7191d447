"""A straightforward System Log client, the yardstick ``make bench`` holds ``oktaduck poll`` to.

What a competent engineer writes in an afternoon to keep Okta's System Log in DuckDB: httpx,
orjson, plain dicts, ~40 columns as Arrow arrays (nanoarrow), no raw JSON. One thread fetches
pages (following Okta's ``next`` links from ``/api/v1/logs?since=...&limit=1000``, SSWS token)
while the main thread parses them, and every 10 pages go into DuckDB in one ``INSERT``, which
leaves out any uuid already stored within those pages' ``published`` window. It stops at a
page that comes back empty or without a ``next`` link and prints ``N events stored``.

    OKTA_API_TOKEN=... python -m tests.perf.baseline --org URL --db PATH [--lookback-days 89]

Not a product: no retries, no cursor, no rate-limit handling (the bench's org has none).
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import nanoarrow as na
import orjson
from nanoarrow.c_array_stream import CArrayStream

PAGES_PER_INSERT = 10
PAGE_LIMIT = 1000

# (column, path into the event, DuckDB type); the Arrow type follows from the DuckDB one
FIELDS: list[tuple[str, tuple[str, ...], str]] = [
    ("uuid", ("uuid",), "VARCHAR"),
    ("published", ("published",), "TIMESTAMPTZ"),
    ("event_type", ("eventType",), "VARCHAR"),
    ("version", ("version",), "VARCHAR"),
    ("severity", ("severity",), "VARCHAR"),
    ("legacy_event_type", ("legacyEventType",), "VARCHAR"),
    ("display_message", ("displayMessage",), "VARCHAR"),
    ("actor_id", ("actor", "id"), "VARCHAR"),
    ("actor_type", ("actor", "type"), "VARCHAR"),
    ("actor_alternate_id", ("actor", "alternateId"), "VARCHAR"),
    ("actor_display_name", ("actor", "displayName"), "VARCHAR"),
    ("user_agent", ("client", "userAgent", "rawUserAgent"), "VARCHAR"),
    ("client_os", ("client", "userAgent", "os"), "VARCHAR"),
    ("client_browser", ("client", "userAgent", "browser"), "VARCHAR"),
    ("client_zone", ("client", "zone"), "VARCHAR"),
    ("client_device", ("client", "device"), "VARCHAR"),
    ("client_ip", ("client", "ipAddress"), "VARCHAR"),
    ("city", ("client", "geographicalContext", "city"), "VARCHAR"),
    ("state", ("client", "geographicalContext", "state"), "VARCHAR"),
    ("country", ("client", "geographicalContext", "country"), "VARCHAR"),
    ("postal_code", ("client", "geographicalContext", "postalCode"), "VARCHAR"),
    ("lat", ("client", "geographicalContext", "geolocation", "lat"), "DOUBLE"),
    ("lon", ("client", "geographicalContext", "geolocation", "lon"), "DOUBLE"),
    ("outcome_result", ("outcome", "result"), "VARCHAR"),
    ("outcome_reason", ("outcome", "reason"), "VARCHAR"),
    ("transaction_type", ("transaction", "type"), "VARCHAR"),
    ("transaction_id", ("transaction", "id"), "VARCHAR"),
    ("request_id", ("debugContext", "debugData", "requestId"), "VARCHAR"),
    ("request_uri", ("debugContext", "debugData", "requestUri"), "VARCHAR"),
    ("threat_suspected", ("debugContext", "debugData", "threatSuspected"), "VARCHAR"),
    ("auth_provider", ("authenticationContext", "authenticationProvider"), "VARCHAR"),
    ("credential_type", ("authenticationContext", "credentialType"), "VARCHAR"),
    ("auth_step", ("authenticationContext", "authenticationStep"), "BIGINT"),
    ("external_session_id", ("authenticationContext", "externalSessionId"), "VARCHAR"),
    ("as_number", ("securityContext", "asNumber"), "BIGINT"),
    ("as_org", ("securityContext", "asOrg"), "VARCHAR"),
    ("isp", ("securityContext", "isp"), "VARCHAR"),
    ("is_proxy", ("securityContext", "isProxy"), "BOOLEAN"),
    ("target", ("target",), "JSON"),
    ("auth_interface", ("authenticationContext", "interface"), "VARCHAR"),
]

# published travels as Okta's text and DuckDB casts it, target as JSON text
_ARROW = {
    "VARCHAR": na.string(),
    "TIMESTAMPTZ": na.string(),
    "JSON": na.string(),
    "DOUBLE": na.float64(),
    "BIGINT": na.int64(),
    "BOOLEAN": na.bool_(),
}
_SCHEMA = na.c_schema(na.struct({name: _ARROW[kind] for name, _, kind in FIELDS}))


def dig(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = event
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _scalar(kind: str) -> Callable[[Any], Any]:
    if kind == "DOUBLE":
        return lambda v: (
            float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
        )
    if kind == "BIGINT":
        return lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None
    if kind == "BOOLEAN":
        return lambda v: v if isinstance(v, bool) else None
    if kind == "JSON":
        return lambda v: None if v is None else orjson.dumps(v).decode()
    return lambda v: None if v is None else str(v)


_CONVERT = [_scalar(kind) for _, _, kind in FIELDS]


class Batch:
    """Rows of a few pages, column by column, readable by DuckDB as an Arrow stream."""

    def __init__(self, columns: list[list[Any]]) -> None:
        arrays = [
            na.c_array(values, _ARROW[kind])
            for values, (_, _, kind) in zip(columns, FIELDS, strict=True)
        ]
        self.array = na.c_array_from_buffers(_SCHEMA, len(columns[0]), [None], children=arrays)

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        stream = CArrayStream.from_c_arrays([self.array], _SCHEMA)
        return stream.__arrow_c_stream__(requested_schema)


def fetch(
    org: str, token: str, since: datetime, pages: queue.Queue[bytes | None], failed: list[str]
) -> None:
    """Put every page body on ``pages``, then ``None``; a failure goes to ``failed``."""
    link: str | None = f"{org.rstrip('/')}/api/v1/logs"
    params: dict[str, Any] | None = {
        "since": since.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "limit": PAGE_LIMIT,
    }
    headers = {"Authorization": f"SSWS {token}", "Accept": "application/json"}
    try:
        with httpx.Client(headers=headers, timeout=60) as client:
            while link:
                response = client.get(link, params=params)
                response.raise_for_status()
                body = response.content
                if body.strip() == b"[]":
                    break
                pages.put(body)
                link = response.links.get("next", {}).get("url")
                params = None  # the next link carries them
    except httpx.HTTPError as exc:
        failed.append(str(exc).splitlines()[0])
    finally:
        pages.put(None)


CREATE = "CREATE TABLE IF NOT EXISTS events ({})".format(
    ", ".join(f"{name} {kind}" for name, _, kind in FIELDS)
)
INSERT = """
INSERT INTO events
SELECT b.* REPLACE (b.published::TIMESTAMPTZ AS published, b.target::JSON AS target)
FROM batch b ANTI JOIN (
    SELECT uuid FROM events WHERE published BETWEEN $lo::TIMESTAMPTZ AND $hi::TIMESTAMPTZ
) USING (uuid)
"""


def store(con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]) -> int:
    """Insert ``events`` not stored yet; return how many went in."""
    seen: set[str] = set()
    columns: list[list[Any]] = [[] for _ in FIELDS]
    stamps: list[str] = []
    for event in events:
        uuid = event.get("uuid")
        if not isinstance(uuid, str) or uuid in seen:
            continue
        seen.add(uuid)
        published = event.get("published")
        if isinstance(published, str):
            stamps.append(published)
        for values, (_, path, _), convert in zip(columns, FIELDS, _CONVERT, strict=True):
            values.append(convert(dig(event, path)))
    if not stamps:
        return 0
    con.register("batch", Batch(columns))
    try:
        inserted = con.execute(INSERT, {"lo": min(stamps), "hi": max(stamps)}).fetchone()
    finally:
        con.unregister("batch")
    return int(inserted[0]) if inserted else 0


def run(org: str, db: Path, token: str, since: datetime) -> int:
    pages: queue.Queue[bytes | None] = queue.Queue(maxsize=2 * PAGES_PER_INSERT)
    failed: list[str] = []
    fetcher = threading.Thread(target=fetch, args=(org, token, since, pages, failed), daemon=True)
    con = duckdb.connect(str(db))
    con.execute(CREATE)
    stored = 0
    fetcher.start()
    pending: list[dict[str, Any]] = []
    count = 0
    while (body := pages.get()) is not None:
        pending += orjson.loads(body)
        count += 1
        if count % PAGES_PER_INSERT == 0:
            stored += store(con, pending)
            pending = []
    stored += store(con, pending)
    fetcher.join()
    con.close()
    if failed:
        raise SystemExit(f"baseline: fetching failed after {stored} events stored: {failed[0]}")
    return stored


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--org", required=True, help="the org's URL (http://127.0.0.1:PORT)")
    parser.add_argument("--db", type=Path, required=True, help="DuckDB file to store into")
    parser.add_argument("--lookback-days", type=float, default=89.0, help="since this long ago")
    args = parser.parse_args(argv)
    token = os.environ.get("OKTA_API_TOKEN")
    if not token:
        print("baseline: set OKTA_API_TOKEN", file=sys.stderr)
        return 2
    since = datetime.now(UTC) - timedelta(days=args.lookback_days)
    stored = run(args.org, args.db, token, since)
    print(f"{stored} events stored")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

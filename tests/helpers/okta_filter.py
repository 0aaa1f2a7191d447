"""The events the Okta ``filter`` and ``q`` tests run against, and the SQL side of the
comparison: a minimal ``events`` table built from them and the uuids a condition selects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ingest.filters.okta_filter import SqlCondition
from ingest.mapping.types import to_string
from ingest.simulate.generator import EventGenerator
from tests.helpers import SAMPLES

HOSTILE = (
    "'); DROP TABLE events; --",
    'O\'Brien "the" \\ admin',
    "100%_real@example.com",
    "%",
    "_",
    "a\\%b",
    "nul\x00char",
    "İSTANBUL ΟΔΟΣ café 😀",
    "$f0",
    "?",
)

# Shapes the generator does not produce: hostile text, odd nesting, odd types, empty values.
EDGE_EVENTS: list[dict[str, Any]] = [
    {
        "uuid": "edge-hostile",
        "eventType": "user.session.start",
        "actor": {"id": "00uhostile", "alternateId": HOSTILE[2], "displayName": HOSTILE[1]},
        "displayMessage": HOSTILE[0],
        "client": {"zone": "", "geographicalContext": {"city": "San Francisco"}},
        "target": [
            {"id": "%", "type": "User"},
            {"id": "_", "type": "User", "alternateId": "a\\%b"},
        ],
        "transaction": {"type": "WEB", "id": "XOxBw-2JIRnCFd0gG0GjHAAABjY"},
        "debugContext": {"debugData": {"note": HOSTILE[6], "place": HOSTILE[7], "p": "$f0 ?"}},
    },
    {
        "uuid": "edge-shapes",
        "eventType": 5,
        "actor": {"id": "00ushapes", "detailEntry": {}},
        "outcome": None,
        "target": [[{"id": "nested"}], {"id": "flat"}, "str", None],
        "device": {"a": None, "b": {"c": ""}, "d": []},
        "securityContext": {"asNumber": 18446744073709551615, "isProxy": False},
        "debugContext": {
            "debugData": {
                "list": ["a", ["b"], {"c": 1}],
                "dot.key": "v",
                "dash-key": "dashed",
                "big": 2**70,
                "tiny": -0.0,
                "huge": 1e300,
                "asNumber": "394089",
                "threatSuspected": "false",
            }
        },
    },
    {
        "uuid": "edge-empty",
        "actor": {"id": "", "alternateId": None},
        "device": {"a": {"b": False}},
        "target": [],
        "client": {"zone": "null", "ipAddress": "null"},
        "request": {"ipChain": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2", "source": None}]},
    },
]


def load_events() -> list[dict[str, Any]]:
    """2000 generated events, the 17 public samples and the edge events above.

    Some samples share a uuid with different content; repeats get a ``#n`` suffix so that
    every event can be told apart by uuid.
    """
    start = datetime(2026, 1, 5, tzinfo=UTC)
    events = EventGenerator(seed=1).stream(2000, start, datetime(2026, 1, 6, tzinfo=UTC))
    for path in sorted(SAMPLES.glob("*.ndjson")):
        events.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    events.extend(EDGE_EVENTS)
    seen: dict[str, int] = {}
    unique = []
    for event in events:
        n = seen[event["uuid"]] = seen.get(event["uuid"], 0) + 1
        unique.append(event if n == 1 else {**event, "uuid": f"{event['uuid']}#{n}"})
    return unique


def build_db(path: Path, events: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """A minimal ``events`` table, ``event_type`` as the normalized mapping writes it, and raw
    text with and without \\u escapes."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE events (uuid VARCHAR, event_type VARCHAR, raw JSON)")
    rows = [
        (
            e["uuid"],
            to_string(e["eventType"]) if "eventType" in e else None,
            json.dumps(e, ensure_ascii=i % 2 == 0),
        )
        for i, e in enumerate(events)
    ]
    con.execute(
        "INSERT INTO events SELECT r[1], r[2], r[3]::JSON FROM (SELECT unnest($rows) AS r)",
        {"rows": [list(r) for r in rows]},
    )
    return con


def sql_uuids(con: duckdb.DuckDBPyConnection, condition: SqlCondition) -> set[str]:
    rows = con.execute(f"SELECT uuid FROM events WHERE {condition.sql}", condition.params)
    return {row[0] for row in rows.fetchall()}

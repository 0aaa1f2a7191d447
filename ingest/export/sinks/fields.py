"""A few facts sinks read from an exported event: its time, its type and its severity.

Exported lines come in several shapes (Okta's own event, the normalized, ECS and OCSF
mappings), so each fact is looked up under the names those shapes use, first match wins. A
dotted name is tried as a flat key first, then as a path into nested objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

# published: Okta and normalized; @timestamp: ECS; time: OCSF (epoch milliseconds).
TIME_KEYS = ("published", "@timestamp", "time")
# eventType: Okta; event_type: normalized; event.action: ECS; metadata.event_code: OCSF.
TYPE_KEYS = ("eventType", "event_type", "event.action", "metadata.event_code")
# severity: Okta, normalized (DEBUG..ERROR) and OCSF (its caption); log.level: ECS.
SEVERITY_KEYS = ("severity", "log.level")

# Okta's four levels plus OCSF's captions, to RFC 5424 severities (3 error, 4 warning,
# 5 notice, 6 informational, 7 debug; 2 critical, 1 alert).
_SYSLOG_SEVERITY = {
    "debug": 7,
    "info": 6,
    "informational": 6,
    "warn": 4,
    "warning": 4,
    "error": 3,
    "low": 5,
    "medium": 4,
    "high": 3,
    "critical": 2,
    "fatal": 1,
}

# Epoch numbers above this are milliseconds (as seconds it would be the year 5138).
_MS_THRESHOLD = 1e11


def lookup(event: Mapping[str, Any], name: str) -> Any:
    """The value under ``name``: a flat key, else a dotted path into nested objects."""
    if name in event:
        return event[name]
    node: Any = event
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def event_time(event: Mapping[str, Any]) -> float | None:
    """Seconds since the epoch from the first time field present, or None.

    RFC 3339 strings need a zone (Okta's end in ``Z``); naive ones are ignored rather than
    guessed. Numbers are epoch seconds, or milliseconds when they are that large.
    """
    for key in TIME_KEYS:
        value = lookup(event, key)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue
            if parsed.tzinfo is not None:
                return parsed.timestamp()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return value / 1000 if value > _MS_THRESHOLD else float(value)
    return None


def event_type(event: Mapping[str, Any]) -> str | None:
    for key in TYPE_KEYS:
        value = lookup(event, key)
        if isinstance(value, str) and value:
            return value
    return None


def syslog_severity(event: Mapping[str, Any]) -> int | None:
    """The RFC 5424 severity (0-7) for the event's level, or None when it has none we know."""
    for key in SEVERITY_KEYS:
        value = lookup(event, key)
        if isinstance(value, str):
            found = _SYSLOG_SEVERITY.get(value.lower())
            if found is not None:
                return found
    return None

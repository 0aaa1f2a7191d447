"""Structured logs: one JSON object per line on stderr, with a stable dotted event name."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_LOGGER = logging.getLogger("oktaduck")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        if record.name != _LOGGER.name:  # a library's own log line
            doc["event"] = f"{record.name.split('.')[0]}.message"
            doc["message"] = record.getMessage()
        doc.update(getattr(record, "fields", {}))
        return orjson.dumps(doc, default=str).decode()


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    _LOGGER.handlers[:] = [handler]
    _LOGGER.setLevel(level.upper())
    _LOGGER.propagate = False
    # APScheduler warns when a job is still running at its next tick (a long poll or export
    # cycle: normal here, since jobs never overlap); only its errors are worth a line.
    scheduler = logging.getLogger("apscheduler")
    scheduler.handlers[:] = [handler]
    scheduler.setLevel(logging.ERROR)
    scheduler.propagate = False


def emit(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` (a stable dotted name such as ``poll.page_stored``) with fields."""
    if _LOGGER.isEnabledFor(level):
        _LOGGER.log(level, event, extra={"fields": fields})

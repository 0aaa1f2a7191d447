"""Structured logs: one JSON object per line on stderr, with a stable dotted event name.

Every line passes through :func:`ingest.base.redact.redact` once it is serialized, so no field, no
library message and no error text in it can carry a registered secret. ``setup`` also makes
Python's last-resort report of an unexpected exception (main thread or any other) redacted.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

from ingest.base.redact import redact

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
        return redact(orjson.dumps(doc, default=str).decode())


def _report(
    kind: type[BaseException] | None,
    value: BaseException | None,
    tb: TracebackType | None,
    thread: str | None = None,
) -> None:
    """Print an unexpected exception's traceback to stderr with every secret redacted."""
    text = "".join(traceback.format_exception(kind, value, tb)) if kind else ""
    where = f"Exception in thread {thread}:\n" if thread else ""
    sys.stderr.write(redact(where + text))
    sys.stderr.flush()


def _thread_report(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    _report(args.exc_type, args.exc_value, args.exc_traceback, name)


def redact_unexpected() -> None:
    """Route uncaught exceptions (main thread and others) through the redaction."""
    sys.excepthook = _report
    threading.excepthook = _thread_report


def setup(level: str = "info") -> None:
    redact_unexpected()
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
    # Any other library's warnings (and Python's warnings) become JSON lines too, redacted,
    # instead of reaching stderr as they are through logging's last-resort handler.
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _RootHandler)]
    root.addHandler(_RootHandler(handler))
    logging.captureWarnings(True)


class _RootHandler(logging.Handler):
    """Passes the root logger's records (WARNING and up) to the JSON handler."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(logging.WARNING)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.handle(record)


def emit(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` (a stable dotted name such as ``poll.pages_stored``) with fields."""
    if _LOGGER.isEnabledFor(level):
        _LOGGER.log(level, event, extra={"fields": fields})

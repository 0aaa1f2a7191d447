"""The one exception tree of oktaduck.

Library exceptions (httpx, DuckDB, tomllib, OSError) are translated into these where they
enter the program; everything above that boundary only knows this tree. Every message is one
line meant for a person and never contains a secret: every registered secret value (see
``ingest.redact``) is replaced by ``***`` in the message, whatever text went into it.
"""

from __future__ import annotations

from typing import Any

from ingest.redact import redact


class OktaduckError(Exception):
    """Base of every expected failure. The CLI prints ``str(err)`` and exits non-zero.

    The message is redacted when the error is made and again when it is shown (a secret
    registered in between is hidden too).
    """

    exit_code = 1

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))

    def __str__(self) -> str:
        return redact(super().__str__())


class ConfigError(OktaduckError):
    """The configuration (file, flags or environment) is wrong; nothing was contacted."""

    exit_code = 2


class SourceError(OktaduckError):
    """A source (one Okta org) failed. Carries Okta's error envelope where there was one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        error_summary: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.error_code = _clean(error_code)
        self.error_summary = _clean(error_summary)
        self.request_id = _clean(request_id)
        super().__init__(self._line(message))

    def _line(self, message: str) -> str:
        parts = [message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.error_code:
            parts.append(self.error_code)
        if self.error_summary:
            parts.append(self.error_summary)
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return ": ".join(parts[:1]) + (" (" + ", ".join(parts[1:]) + ")" if parts[1:] else "")


def _clean(text: str | None) -> str | None:
    return redact(text) if text else text


class AuthFailed(SourceError):
    """401 / 403: the token or client is invalid or lacks permission. Not retried."""


class BadRequest(SourceError):
    """400: Okta rejected the query (bad date, bad filter, since too old). Not retried."""


class RateLimited(SourceError):
    """429 that could not be waited out within the allowed time."""


class BadResponse(SourceError):
    """Okta (or something in between) kept answering with something unusable."""


class UnsafeURL(SourceError):
    """A URL that would send the token in clear text, or a next link to another host."""


class MappingError(OktaduckError):
    """A mapping file is invalid (names the file, the field and the problem)."""


class EventRejected(OktaduckError):
    """One event could not be mapped cleanly; it is stored apart with this reason."""


class StoreError(OktaduckError):
    """The DuckDB store could not be opened or written."""


class DatabaseLocked(StoreError):
    """Another process (normally the daemon) holds the database's write lock."""


class QueryRefused(OktaduckError):
    """A query that is not a single read-only SELECT, or one that touches files."""

    exit_code = 2


class QueryTimeout(OktaduckError):
    """A query ran past its time limit and was interrupted; the message names the limit."""


class QueryCancelled(OktaduckError):
    """A query was cancelled while it ran (its client went away, or the process stops)."""


class ExportError(OktaduckError):
    """A sink failed to accept a batch."""

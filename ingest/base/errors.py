"""The one exception tree of oktaduck.

Library exceptions (httpx, DuckDB, tomllib, OSError) are translated into these where they
enter the program; everything above that boundary only knows this tree. Every message is one
line meant for a person and never contains a secret: every registered secret value (see
``ingest.base.redact``) is replaced by ``***`` in the message, whatever text went into it.

The shape (exit code 2 where marked, 1 otherwise)::

    OktaduckError
    |-- ConfigError (2)             the configuration is wrong; nothing was contacted
    |-- SourceError                 one Okta org failed; carries Okta's error envelope
    |   |-- AuthFailed              401 / 403, not retried
    |   |-- BadRequest              400, not retried
    |   |-- RateLimited             429 that could not be waited out
    |   |-- BadResponse             kept answering with something unusable
    |   `-- UnsafeURL               clear text to a remote host, or a link to another host
    |-- MappingError                a mapping file is invalid
    |   `-- InvalidMapping          all of one file's problems, one per line
    |-- MapperFailed                the mapping child process could not start or died
    |-- EventRejected               one event could not be mapped; stored apart
    |-- StoreError                  the DuckDB store could not be opened or written
    |   |-- DatabaseLocked          another process holds the write lock
    |   |-- LakeUnavailable         the lake's catalog or data path cannot be reached
    |   |-- StoreInvalidated        DuckDB ended the connection: open it again
    |   `-- LeaseLost               another daemon owns this source or sink now
    |-- FilterSyntaxError (2)       a filter or q Okta would refuse, with its position
    |-- QueryRefused (2)            not a single read-only SELECT
    |-- QueryTimeout                a query ran past its limit
    |-- QueryCancelled              a query's client went away, or the process stops
    |-- ResultTooLarge              an API answer passed api.max_result_bytes
    |-- ArchiveError                an archive file given to `import` cannot be read on
    `-- ExportError                 a sink failed to accept a batch
        |-- SinkUnavailable         try again later (``retry_after`` when the sink said)
        `-- SinkRejected            refused for good; a person has to act

Exceptions that never leave their module stay there, private to it: control flow inside a retry
loop or a parser (``ingest.okta.client``'s ``Stopped``, ``_Transient`` and
``_RateLimitedWait``; ``ingest.okta.transport``'s ``RequestAbandoned``, ``CorruptBody`` and
``Oversize``; ``ingest.okta.body.BadBody``; the mapping engine's ``Invalid``, ``Partial``,
``PathError`` and ``BadLookupFile``, which become ``InvalidMapping`` problems or
``EventRejected`` reasons; the RELP sink's ``RelpProtocolError`` and ``SessionEnded``, which
become ``SinkUnavailable``; the API's refusals, answered as HTTP statuses). The simulator's
``QueryError`` describes an HTTP 400 it answers, not a failure of oktaduck.
``tests/test_errors_tree.py`` keeps this true.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.base.redact import redact


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


class InvalidMapping(MappingError):
    """A mapping file with one or more problems; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class MapperFailed(OktaduckError):
    """The mapping process could not start or stopped unexpectedly."""


class EventRejected(OktaduckError):
    """One event could not be mapped cleanly; it is stored apart with this reason."""


class StoreError(OktaduckError):
    """The DuckDB store could not be opened or written."""


class DatabaseLocked(StoreError):
    """Another process (normally the daemon) holds the database's write lock."""


class LakeUnavailable(StoreError):
    """The lake's catalog or data path cannot be reached (or its extensions are missing);
    nothing was committed, and the work is tried again later."""


class StoreInvalidated(StoreError):
    """DuckDB ended the store's connection after an internal error, or (on a lake) the
    connection names an inlined-data table that a flush dropped: every later statement on it
    fails the same way, and only a new connection works. Nothing of the failed transaction
    was committed."""


class LeaseLost(StoreError):
    """A source or sink of a lake is owned by another process now: its commit was refused
    and nothing of it was stored."""


class ArchiveError(OktaduckError):
    """An archive file given to ``oktaduck import`` cannot be read (on): missing, not
    readable, a broken gzip or zstd stream, a JSON array broken beyond recovery. The message
    names the file; the other files are imported all the same."""


class FilterSyntaxError(OktaduckError):
    """A ``filter`` or ``q`` that Okta would reject with HTTP 400; says where and why.

    ``position`` counts characters from 0; ``code`` is the Okta error code the same input
    would get (``E0000053`` invalid filter, ``E0000031`` unsupported operator and field,
    ``E0000001`` invalid ``q``).
    """

    exit_code = 2

    def __init__(
        self, reason: str, position: int, *, parameter: str = "filter", code: str = "E0000053"
    ) -> None:
        self.reason = reason
        self.position = position
        self.parameter = parameter
        self.code = code
        super().__init__(f"Invalid {parameter} at position {position}: {reason}")


class QueryRefused(OktaduckError):
    """A query that is not a single read-only SELECT, or one that touches files."""

    exit_code = 2


class QueryTimeout(OktaduckError):
    """A query ran past its time limit and was interrupted; the message names the limit."""


class QueryCancelled(OktaduckError):
    """A query was cancelled while it ran (its client went away, or the process stops)."""


class ResultTooLarge(OktaduckError):
    """An answer of the API passed its cap (``api.max_result_bytes``); the rows sent so far
    are followed by this error's line."""


class ExportError(OktaduckError):
    """A sink failed to accept a batch."""


class SinkUnavailable(ExportError):
    """The destination could not take the batch now; resend it later (after ``retry_after``).

    ``retry_after`` is the wait in seconds the destination asked for (HTTP ``Retry-After``), or
    None when it did not say.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None
    ) -> None:
        self.retry_after = retry_after
        self.status = status
        if retry_after is not None:
            message = f"{message} (retry after {retry_after:g} s)"
        super().__init__(message)


class SinkRejected(ExportError):
    """The destination refused the batch for good (bad request, auth, too large, bad config).

    Resending the same batch to the same configuration will fail the same way; a person has to
    act. ``status`` is the HTTP status when there was one, ``excerpt`` the start of the answer.
    """

    def __init__(
        self, message: str, *, status: int | None = None, excerpt: str | None = None
    ) -> None:
        self.status = status
        self.excerpt = excerpt
        super().__init__(message)

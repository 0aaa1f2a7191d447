"""What the simulated org answers: a status, header lines and body bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

JSON = "application/json"

E_VALIDATION = "E0000001"
E_NOT_FOUND = "E0000007"
E_INTERNAL = "E0000009"
E_TOKEN = "E0000011"  # noqa: S105
E_METHOD = "E0000022"
E_RATE_LIMIT = "E0000047"
E_SEARCH = "E0000053"

SUMMARIES = {
    E_NOT_FOUND: "Not found: Resource not found",
    E_INTERNAL: "Internal Server Error",
    E_TOKEN: "Invalid token provided",
    E_METHOD: "The endpoint does not support the provided HTTP method",
    E_RATE_LIMIT: "API call exceeded rate limit due to too many requests.",
}

UNAVAILABLE_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
    b"<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your "
    b"request. Please try again later.</p></body></html>\n"
)
NOT_JSON = b"<html><body>Okta is undergoing scheduled maintenance</body></html>\n"


@dataclass(frozen=True)
class SimResponse:
    """One HTTP answer. ``headers`` keeps repeated names (two ``link`` lines) as separate pairs.

    ``cut_at`` asks the server to send only that many body bytes (while declaring the full
    ``Content-Length``) and drop the connection; ``reset`` asks it to drop the connection
    without answering at all.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    cut_at: int | None = None
    reset: bool = False

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), if present."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` in order."""
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


def envelope(
    code: str, error_id: str, summary: str | None = None, causes: list[str] | None = None
) -> bytes:
    """Okta's error body."""
    return orjson.dumps(
        {
            "errorCode": code,
            "errorSummary": summary or SUMMARIES.get(code, "Error"),
            "errorLink": code,
            "errorId": error_id,
            "errorCauses": [{"errorSummary": c} for c in causes or []],
        }
    )

"""What a page's body must be: a JSON array of events. Kept apart from the HTTP client so
that a mapping process can decode bodies without loading it."""

from __future__ import annotations

from typing import Any

import orjson


class BadBody(ValueError):
    """An HTTP 200 whose body is not a page; the client retries it like a 5xx."""


def json_array(body: bytes) -> list[Any]:
    """The events of a page body."""
    try:
        events = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadBody("HTTP 200 with a body that is not JSON") from None
    if not isinstance(events, list):
        raise BadBody("HTTP 200 with a JSON body that is not an array")
    return events

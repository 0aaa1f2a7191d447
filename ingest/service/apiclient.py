"""The CLI's way in while the daemon holds the database: its local HTTP API.

The daemon announces its URL and token in ``<database>.api.json`` (readable by its owner
only); ``OKTADUCK_API_TOKEN`` overrides the token. An answer the daemon had to cut short (a
query that failed midway, a result past ``api.max_result_bytes``) ends with a line
``{"error": "..."}`` and no final chunk: the rows before it are printed, then the message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import orjson

from ingest.base.errors import DatabaseLocked, OktaduckError, QueryRefused
from ingest.base.secrets import Secret
from ingest.service.api import announce_path

# No read timeout: the daemon bounds every query ([query] timeout, an export's own limit) and
# sends nothing until a long aggregate has finished; a hang-up would cancel it there.
_TIMEOUT = httpx.Timeout(None, connect=5)
TOKEN_ENV = "OKTADUCK_API_TOKEN"  # noqa: S105 - a variable name
HELD = 1 << 20  # bytes of output held back at most while waiting for the next newline


@dataclass(frozen=True)
class Api:
    """Where the daemon's API is and the token it wants."""

    url: str
    token: Secret | None = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "*/*"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.reveal()}"
        return headers


def find_api(db: Path, locked: DatabaseLocked) -> Api:
    """The daemon's API for ``db``, or the lock error with a hint."""
    path = announce_path(db)
    try:
        doc = orjson.loads(path.read_bytes())
        url = str(doc["url"])
    except PermissionError:
        raise DatabaseLocked(
            f"{locked}; the daemon's API announce file {path} is not readable by this user"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise DatabaseLocked(
            f"{locked}; no daemon API is announced in {path} (is the API disabled?)"
        ) from None
    token = os.environ.get(TOKEN_ENV) or doc.get("token")
    return Api(url, Secret(str(token), origin=f"file:{path}") if token else None)


def fetch(
    api: Api,
    path: str,
    *,
    params: dict[str, str] | None = None,
    body: str | None = None,
    out: IO[bytes] | None = None,
) -> None:
    """GET (or POST the SQL ``body`` to) ``path`` and stream the answer to ``out``."""
    out = out or sys.stdout.buffer
    headers = api.headers()
    method = "GET"
    if body is not None:
        method = "POST"
        headers["Content-Type"] = "application/sql"
    held = b""
    try:
        with (
            httpx.Client(trust_env=False, timeout=_TIMEOUT) as client,
            client.stream(
                method, api.url + path, params=params, content=body, headers=headers
            ) as r,
        ):
            if r.status_code != 200:
                r.read()
                raise _error(r)
            try:
                for chunk in r.iter_bytes():
                    # the last line waits for the next one: it may be the daemon's error line
                    data = held + chunk
                    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
                    if len(data) - cut > HELD:
                        cut = len(data) - HELD
                    out.write(data[:cut])
                    held = data[cut:]
            except httpx.RemoteProtocolError:
                raise _cut_short(held) from None
            out.write(held)
            out.flush()
    except httpx.HTTPError as err:
        raise OktaduckError(f"daemon API at {api.url} did not answer: {err}") from None


def stream_lines(
    api: Api, path: str, params: dict[str, str], batch: int = 1000
) -> Iterator[list[bytes]]:
    """NDJSON lines from the API, ``batch`` at a time."""
    try:
        with (
            httpx.Client(trust_env=False, timeout=_TIMEOUT) as client,
            client.stream("GET", api.url + path, params=params, headers=api.headers()) as r,
        ):
            if r.status_code != 200:
                r.read()
                raise _error(r)
            lines: list[bytes] = []
            last: bytes | None = None  # held back: it may be the daemon's error line
            try:
                for line in r.iter_lines():
                    if not line:
                        continue
                    if last is not None:
                        lines.append(last)
                    last = line.encode()
                    if len(lines) >= batch:
                        yield lines
                        lines = []
            except httpx.RemoteProtocolError:
                if lines:
                    yield lines
                raise _cut_short(last or b"") from None
            if last is not None:
                lines.append(last)
            if lines:
                yield lines
    except httpx.HTTPError as err:
        raise OktaduckError(f"daemon API at {api.url} did not answer: {err}") from None


def _cut_short(tail: bytes) -> OktaduckError:
    """The error of an answer that ended without its final chunk."""
    try:
        message = str(orjson.loads(tail)["error"])
    except (ValueError, KeyError, TypeError):
        message = "the daemon's answer was cut short"
    return OktaduckError(message)


def _error(response: httpx.Response) -> OktaduckError:
    try:
        message = str(orjson.loads(response.content)["error"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}"
    if response.status_code == 403:
        return QueryRefused(message)
    return OktaduckError(message)

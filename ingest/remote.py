"""The CLI's way in while the daemon holds the database: its local HTTP API."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import orjson

from ingest.api import announce_path
from ingest.errors import DatabaseLocked, OktaduckError, QueryRefused

TOKEN_ENV = "OKTADUCK_API_TOKEN"  # noqa: S105 - a variable name


def find_api(db: Path, locked: DatabaseLocked) -> str:
    """The URL of the daemon's API for ``db``, or the lock error with a hint."""
    path = announce_path(db)
    try:
        return str(orjson.loads(path.read_bytes())["url"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DatabaseLocked(
            f"{locked}; no daemon API is announced in {path} (is the API disabled?)"
        ) from None


def fetch(
    base: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    body: str | None = None,
    out: IO[bytes] | None = None,
) -> None:
    """GET (or POST ``body`` to) ``base + path`` and stream the answer to ``out``."""
    out = out or sys.stdout.buffer
    headers = {"Accept": "*/*"}
    token = os.environ.get(TOKEN_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    method = "POST" if body is not None else "GET"
    try:
        with (
            httpx.Client(trust_env=False, timeout=httpx.Timeout(300, connect=5)) as client,
            client.stream(method, base + path, params=params, content=body, headers=headers) as r,
        ):
            if r.status_code != 200:
                r.read()
                raise _error(r)
            for chunk in r.iter_bytes():
                out.write(chunk)
            out.flush()
    except httpx.HTTPError as err:
        raise OktaduckError(f"daemon API at {base} did not answer: {err}") from None


def stream_lines(
    base: str, path: str, params: dict[str, str], batch: int = 1000
) -> Iterator[list[bytes]]:
    """NDJSON lines from the API, ``batch`` at a time."""
    headers = {}
    token = os.environ.get(TOKEN_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with (
            httpx.Client(trust_env=False, timeout=httpx.Timeout(300, connect=5)) as client,
            client.stream("GET", base + path, params=params, headers=headers) as r,
        ):
            if r.status_code != 200:
                r.read()
                raise _error(r)
            lines: list[bytes] = []
            for line in r.iter_lines():
                if line:
                    lines.append(line.encode())
                if len(lines) >= batch:
                    yield lines
                    lines = []
            if lines:
                yield lines
    except httpx.HTTPError as err:
        raise OktaduckError(f"daemon API at {base} did not answer: {err}") from None


def _error(response: httpx.Response) -> OktaduckError:
    try:
        message = str(orjson.loads(response.content)["error"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}"
    if response.status_code == 403:
        return QueryRefused(message)
    return OktaduckError(message)

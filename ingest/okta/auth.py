"""Credentials as ``httpx.Auth`` flows, so the client never handles a secret itself."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ingest.base.secrets import Secret


class SswsAuth(httpx.Auth):
    """Okta API token: ``Authorization: SSWS <token>``."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "SswsAuth(token=***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"SSWS {self._token.reveal()}"
        yield request

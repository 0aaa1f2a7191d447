"""Build the HTTP client for one configured source."""

from __future__ import annotations

import threading

import httpx

from ingest.clock import Clock
from ingest.config import SourceConfig
from ingest.okta.auth import SswsAuth
from ingest.okta.client import OktaClient


def open_client(
    source: SourceConfig, clock: Clock, stop: threading.Event | None = None
) -> OktaClient:
    """An ``OktaClient`` with the source's token, TLS settings, proxy and timeouts."""
    auth: httpx.Auth
    if source.oauth is not None:
        # imported here: JWT and cryptography cost ~9 MB that token sources do not need
        from ingest.okta.oauth import OAuthAuth

        auth = OAuthAuth(source.oauth, source.org.origin, clock)
    else:
        auth = SswsAuth(source.token())
    http = httpx.Client(
        auth=auth,
        timeout=httpx.Timeout(source.timeout, connect=min(source.timeout, 15.0)),
        verify=str(source.ca_bundle) if source.ca_bundle else True,
        proxy=source.proxy,
        follow_redirects=False,
        trust_env=False,
    )
    return OktaClient(source.org, http, clock, source.client, stop)

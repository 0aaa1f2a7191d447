"""Build the HTTP client for one configured source."""

from __future__ import annotations

import threading

import httpx

from ingest.clock import Clock
from ingest.config import SourceConfig
from ingest.okta.auth import SswsAuth
from ingest.okta.client import OktaClient
from ingest.okta.oauth import OAuthAuth


def open_client(
    source: SourceConfig, clock: Clock, stop: threading.Event | None = None
) -> OktaClient:
    """An ``OktaClient`` with the source's token, TLS settings, proxy and timeouts."""
    http = httpx.Client(
        auth=(
            OAuthAuth(source.oauth, source.org.origin, clock)
            if source.oauth is not None
            else SswsAuth(source.token())
        ),
        timeout=httpx.Timeout(source.timeout, connect=min(source.timeout, 15.0)),
        verify=str(source.ca_bundle) if source.ca_bundle else True,
        proxy=source.proxy,
        follow_redirects=False,
        trust_env=False,
    )
    return OktaClient(source.org, http, clock, source.client, stop)

"""Build the HTTP client for one configured source.

The client takes nothing from the environment (``trust_env=False``): no ``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY``, ``SSL_CERT_FILE`` or ``.netrc``. A proxy is used only when the
source configures one, and never for a plain ``http://`` org (the proxy would read the token).
"""

from __future__ import annotations

import threading
from urllib.parse import unquote

import httpx

from ingest.base.clock import Clock
from ingest.base.errors import ConfigError, UnsafeURL
from ingest.base.redact import register
from ingest.collect.settings import SourceConfig
from ingest.okta.auth import SswsAuth
from ingest.okta.client import OktaClient
from ingest.okta.transport import deadline_transport


def open_client(
    source: SourceConfig, clock: Clock, stop: threading.Event | None = None
) -> OktaClient:
    """An ``OktaClient`` with the source's token, TLS settings, proxy and timeouts."""
    proxy = _proxy(source)
    auth: httpx.Auth
    if source.oauth is not None:
        # imported here: JWT and cryptography cost ~9 MB that token sources do not need
        from ingest.okta.oauth import OAuthAuth

        auth = OAuthAuth(source.oauth, source.org.origin, clock)
    else:
        auth = SswsAuth(source.token())
    # TLS settings and proxy go to the transport, whose network backend makes ``timeout``
    # the deadline of a whole request and lets ``stop`` end one mid-way (ingest.okta.transport)
    transport = deadline_transport(
        verify=source.tls_verify(),
        proxy=proxy,
        max_bytes=source.client.max_response_bytes,
    )
    http = httpx.Client(
        auth=auth,
        timeout=httpx.Timeout(source.timeout, connect=min(source.timeout, 15.0)),
        transport=transport,
        follow_redirects=False,
        trust_env=False,
    )
    return OktaClient(source.org, http, clock, source.client, stop, timeout=source.timeout)


def _proxy(source: SourceConfig) -> str | None:
    """The source's proxy, checked: a URL, and never in front of a plain http:// org."""
    if source.proxy is None:
        return None
    if source.org.scheme == "http":
        raise UnsafeURL(
            f"source {source.name}: refusing a proxy for the plain http:// org "
            f"{source.org.origin}: the proxy would read the API token"
        )
    try:
        url = httpx.URL(source.proxy)
    except (httpx.InvalidURL, TypeError) as err:
        raise ConfigError(f"source {source.name}: proxy is not a URL: {err}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(
            f"source {source.name}: proxy must look like http://proxy.example.com:3128"
        )
    if url.password:
        register(unquote(url.password))  # never shown in an error or a log line
    return source.proxy

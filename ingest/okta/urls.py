"""Which URLs may carry the token: HTTPS anywhere, plain HTTP only to loopback."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import httpx

from ingest.base.errors import ConfigError, UnsafeURL
from ingest.base.redact import redact

LOGS_PATH = "/api/v1/logs"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OrgURL:
    """An Okta org's origin (scheme, host, port), checked to be safe for the token."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> OrgURL:
        try:
            url = httpx.URL(text.strip())
        except (httpx.InvalidURL, TypeError) as err:
            raise ConfigError(f"org URL {text!r} is not a URL: {err}") from None
        if url.scheme not in ("https", "http") or not url.host:
            raise ConfigError(f"org URL {text!r} must look like https://your-org.okta.com")
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ConfigError(f"org URL {text!r} must be the org's origin only, without a path")
        if url.userinfo:
            raise ConfigError("org URL must not contain credentials")
        if url.port is not None and not 0 < url.port <= 65535:
            raise ConfigError(f"org URL {text!r}: the port is from 1 to 65535")
        if url.scheme == "http" and not is_loopback(url.host):
            raise UnsafeURL(
                f"refusing plain http:// to {url.host}: the API token would travel in clear "
                "text; use https:// (plain http is allowed only for loopback addresses)"
            )
        return cls(url.scheme, url.host, url.port)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port else "")

    @property
    def logs_url(self) -> str:
        return self.origin + LOGS_PATH

    def owns(self, link: str) -> bool:
        """True when ``link`` points at this org's logs endpoint (same scheme, host, port)."""
        try:
            url = httpx.URL(link)
        except httpx.InvalidURL:
            return False
        return (
            url.scheme == self.scheme
            and url.host == self.host
            and url.port == self.port
            and url.path == LOGS_PATH
        )

    def check_link(self, link: str) -> str:
        if not self.owns(link):
            raise UnsafeURL(
                f"refusing to follow a link outside {self.logs_url}: {httpx.URL(link).host!r}"
            )
        if redact(link) != link:  # it would be stored as the cursor and sent back
            raise UnsafeURL(f"refusing a link from {self.logs_url} that carries a secret")
        return link

"""The token only travels over HTTPS, or plain HTTP to loopback, and only to the org."""

from __future__ import annotations

import pytest

from ingest.base.errors import ConfigError, UnsafeURL
from ingest.okta.urls import OrgURL


@pytest.mark.parametrize(
    "url", ["http://acme.okta.com", "http://10.0.0.1:8080", "http://[2001:db8::1]:80"]
)
def test_cleartext_to_a_non_loopback_host_is_refused(url: str) -> None:
    with pytest.raises(UnsafeURL, match="clear text"):
        OrgURL.parse(url)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9000", "https://a.okta.com"],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert OrgURL.parse(url).logs_url.endswith("/api/v1/logs")


@pytest.mark.parametrize("url", ["acme.okta.com", "ftp://acme.okta.com", "https://a.okta.com/x"])
def test_malformed_org_urls_say_what_is_expected(url: str) -> None:
    with pytest.raises(ConfigError):
        OrgURL.parse(url)


def test_next_links_to_another_host_or_path_are_refused() -> None:
    org = OrgURL.parse("https://acme.okta.com")
    assert org.check_link("https://acme.okta.com/api/v1/logs?after=1_2")
    for link in (
        "https://evil.example.com/api/v1/logs?after=1_2",
        "http://acme.okta.com/api/v1/logs?after=1_2",
        "https://acme.okta.com:8443/api/v1/logs",
        "https://acme.okta.com/api/v1/users",
    ):
        with pytest.raises(UnsafeURL):
            org.check_link(link)

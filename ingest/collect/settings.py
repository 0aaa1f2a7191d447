"""What collecting from one Okta org needs to know: the source's settings.

``SourceConfig`` is made by ``ingest.config`` from a ``[[sources]]`` table (or by the CLI from
its flags) and read by everything in ``ingest.collect``; living here, below the parser, it
lets collecting go on without importing the whole configuration.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ingest.base.errors import ConfigError
from ingest.base.secrets import Secret, secret_from_env, secret_from_file
from ingest.okta.client import ClientPolicy
from ingest.okta.oauth_config import OAuthConfig
from ingest.okta.urls import OrgURL

DEFAULT_TOKEN_ENV = "OKTA_API_TOKEN"  # noqa: S105 - a variable name
# A source left at these commits what suits its store (``Store.default_group``): a row
# group's worth in a one-shot ingest of a file.
DEFAULT_GROUP_EVENTS = 2000
DEFAULT_GROUP_BYTES = 16 << 20


@dataclass(frozen=True)
class SourceConfig:
    """One Okta org to collect from."""

    name: str
    org: OrgURL
    token_env: str | None = DEFAULT_TOKEN_ENV
    token_file: Path | None = None
    lookback: timedelta = timedelta(hours=24)
    poll_interval: timedelta = timedelta(seconds=60)
    page_limit: int = 1000
    group_events: int = DEFAULT_GROUP_EVENTS  # events committed per transaction while catching up
    group_bytes: int = DEFAULT_GROUP_BYTES  # and at most this many bytes of their JSON
    client: ClientPolicy = field(default_factory=ClientPolicy)
    timeout: float = 60.0
    ca_bundle: Path | None = None
    proxy: str | None = field(default=None, repr=False)  # may hold a password
    oauth: OAuthConfig | None = None  # an Okta API Services app instead of an API token
    completeness_every: timedelta | None = None  # off unless configured
    completeness_window: timedelta = timedelta(hours=1)
    completeness_delay: timedelta = timedelta(minutes=15)

    def token(self) -> Secret:
        if self.token_file is not None:
            return secret_from_file(self.token_file)
        return secret_from_env(self.token_env or DEFAULT_TOKEN_ENV)

    def tls_verify(self) -> str | bool:
        """What the HTTP client verifies the org with: True, or the ``ca_bundle`` path once it
        is known to load (a PEM file, or a folder of hashed certificates)."""
        if self.ca_bundle is None:
            return True
        try:
            if self.ca_bundle.is_dir():
                ssl.create_default_context(capath=str(self.ca_bundle))
            else:
                ssl.create_default_context(cafile=str(self.ca_bundle))
        except ssl.SSLError:
            raise ConfigError(
                f"ca_bundle {self.ca_bundle} of source {self.name}: no PEM certificate in it"
            ) from None
        except OSError as err:
            raise ConfigError(
                f"ca_bundle {self.ca_bundle} of source {self.name}: {err.strerror or err}"
            ) from None
        except ValueError:  # a NUL character
            raise ConfigError(f"ca_bundle of source {self.name}: not a valid path") from None
        return str(self.ca_bundle)

    def check_credentials(self) -> list[str]:
        """Read the token, or the OAuth keys, and the CA bundle now; return warnings (raise
        when one is missing or unusable)."""
        warnings: list[str] = []
        self.tls_verify()
        if self.oauth is None:
            if self.token_file is not None:
                secret_from_file(self.token_file, warnings)
            else:
                self.token()
            return warnings
        # imported here: cryptography costs memory that token sources never need
        from ingest.okta.keys import load_dpop_key, load_signing_key

        load_signing_key(
            self.oauth.private_key_file, self.oauth.key_id, self.oauth.algorithm, warnings
        )
        if self.oauth.dpop_key_file is not None:
            load_dpop_key(self.oauth.dpop_key_file)
        return warnings

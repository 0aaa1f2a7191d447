"""How a source authenticates as an Okta API Services app: the settings, checked on load.

Kept apart from :mod:`ingest.okta.oauth` so that reading a configuration does not import the
JWT and cryptography libraries (about 9 MB of memory) for sources that use an API token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ingest.base.errors import ConfigError

LOGS_SCOPE = "okta.logs.read"
MAX_ASSERTION_LIFETIME = timedelta(hours=1)  # Okta refuses an assertion expiring later
# the JWS algorithms Okta accepts for private_key_jwt (RSA keys of 2048 bits or more; EC curves)
RSA_ALGORITHMS = ("RS256", "RS384", "RS512")
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
ALGORITHMS = (*RSA_ALGORITHMS, *EC_ALGORITHMS.values())


@dataclass(frozen=True)
class OAuthConfig:
    """How one source authenticates as an Okta API Services app.

    ``algorithm`` is inferred from the key when None (RS256 for RSA, ES256/384/512 for EC).
    ``dpop_key_file`` is optional with ``dpop``: without it an in-memory key is made per run.
    """

    client_id: str
    private_key_file: Path
    key_id: str | None = None
    algorithm: str | None = None
    scopes: tuple[str, ...] = (LOGS_SCOPE,)
    dpop: bool = False
    dpop_key_file: Path | None = None
    assertion_lifetime: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", tuple(self.scopes))
        if not self.client_id or self.client_id != self.client_id.strip():
            raise ConfigError("client_id must be the app's Client ID, without spaces")
        if not self.scopes or any(not s or s.split() != [s] for s in self.scopes):
            raise ConfigError(f"scopes must be non-empty scope names, e.g. [{LOGS_SCOPE!r}]")
        if self.key_id is not None and not self.key_id.strip():
            raise ConfigError("key_id is empty; remove it or set the KID shown in Okta")
        if self.algorithm is not None and self.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"algorithm {self.algorithm!r} is not one Okta accepts for private_key_jwt; "
                f"use one of {', '.join(ALGORITHMS)} (or leave it out to infer it from the key)"
            )
        if not timedelta(seconds=1) <= self.assertion_lifetime <= MAX_ASSERTION_LIFETIME:
            raise ConfigError(
                "assertion_lifetime must be between 1 second and 1 hour (Okta rejects client "
                "assertions that expire more than an hour ahead; the default of 5 minutes also "
                "survives a slightly fast clock)"
            )
        if self.dpop_key_file is not None and not self.dpop:
            raise ConfigError(
                "dpop_key_file is set but dpop is false; set dpop = true or remove dpop_key_file"
            )

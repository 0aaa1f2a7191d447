"""Secrets: read from the environment or a file, never shown.

Creating a :class:`Secret` registers its value with :mod:`ingest.base.redact`, so the value is
replaced by ``***`` in every error message and log line from then on, wherever the text came
from (an Okta error body, a proxy's answer, a library's message).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ingest.base.errors import ConfigError
from ingest.base.redact import register


@dataclass(frozen=True)
class Secret:
    """A secret value whose repr and str never reveal it.

    ``transient`` marks a value minted at run time (an OAuth access token): the redaction
    registry keeps only the recent ones of those.
    """

    value: str = field(repr=False)
    origin: str = "unknown"
    transient: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        register(self.value, transient=self.transient)

    def __repr__(self) -> str:
        return f"Secret(origin={self.origin!r})"

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        return self.value


MAX_SECRET_FILE = 1 << 20  # a token is bytes, a key or JWK set kilobytes
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KEY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # PEM and JSON have lines


def secret_from_env(name: str) -> Secret:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set or empty")
    if _CONTROL.search(value):
        raise ConfigError(f"environment variable {name} holds a line break or control character")
    return Secret(value, origin=f"env:{name}")


def secret_from_file(path: Path, warn: list[str] | None = None, *, lines: bool = False) -> Secret:
    """The file's text, stripped: at most 1 MiB of UTF-8 with no control character (line
    breaks and tabs allowed with ``lines``, for key files); a token goes into a header."""
    try:
        mode = path.stat().st_mode
        with path.open("rb") as file:
            raw = file.read(MAX_SECRET_FILE + 1)
    except OSError as err:
        raise ConfigError(f"cannot read secret file {path}: {err.strerror}") from None
    if len(raw) > MAX_SECRET_FILE:
        raise ConfigError(f"secret file {path} is larger than 1 MiB")
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"secret file {path} is not UTF-8 text") from None
    if (_KEY_CONTROL if lines else _CONTROL).search(value):
        what = "a control character" if lines else "a line break or control character"
        raise ConfigError(f"secret file {path} holds {what}")
    if mode & (stat.S_IRGRP | stat.S_IROTH) and warn is not None:
        warn.append(f"secret file {path} is readable by other users; chmod 600 it")
    if not value:
        raise ConfigError(f"secret file {path} is empty")
    return Secret(value, origin=f"file:{path}")


def optional_secret(file: Path | None, env: str | None) -> Secret | None:
    """The secret of an optional ``token_file`` / ``token_env`` pair (the file wins)."""
    if file is not None:
        return secret_from_file(file)
    if env is not None:
        return secret_from_env(env)
    return None

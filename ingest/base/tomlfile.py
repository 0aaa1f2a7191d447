"""Reading a TOML file (a config or a mapping) that may be hostile.

``tomllib`` raises ``UnicodeDecodeError`` on binary files, ``RecursionError`` on deeply
nested arrays or inline tables, and reads a file of any size whole. Here each of those is
one ``ConfigError`` line naming the file, and no more than ``MAX_TOML_BYTES`` are read.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ingest.base.errors import ConfigError

MAX_TOML_BYTES = 16 * 1024 * 1024  # a config or mapping file is kilobytes; more is a mistake


def read_toml(path: Path, what: str = "config") -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its parsed TOML; every failure is a ``ConfigError`` naming it
    (``what`` says which kind of file was expected)."""
    try:
        with path.open("rb") as file:
            content = file.read(MAX_TOML_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the file: {err.strerror or err}") from None
    except ValueError:  # a NUL character in the path
        raise ConfigError(f"{path!r}: cannot read the file: not a valid path") from None
    if len(content) > MAX_TOML_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_TOML_BYTES // 1024 // 1024} MiB; not a {what} file"
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); not a {what} file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except ValueError as err:  # after TOMLDecodeError, its subclass: an integer too long
        raise ConfigError(f"{path}: invalid TOML: {str(err).splitlines()[0][:120]}") from None
    return content, data

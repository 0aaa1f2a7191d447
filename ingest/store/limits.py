"""The bounds every query a person sends runs within (kept free of DuckDB, for the config)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_QUERY_TIMEOUT = 60.0


@dataclass(frozen=True)
class QueryLimits:
    """``timeout``: seconds a query may take, executing and fetching together, before it is
    interrupted (``[query] timeout`` in the config file, ``--timeout`` on the command line)."""

    timeout: float = DEFAULT_QUERY_TIMEOUT

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError("a query's timeout must be longer than 0s")


def shown_seconds(seconds: float) -> str:
    """60.0 -> '60s', 0.5 -> '0.5s', 5400 -> '90m', for messages that name a limit."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


DEFAULT_LIMITS = QueryLimits()

"""What ``oktaduck simulate`` serves, and its command-line options.

Kept apart from the server so that building ``oktaduck``'s command line does not load the
simulated org (and with it the JWT and cryptography libraries, some 12 MB resident).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ingest.base.errors import ConfigError

DEFAULT_PORT = 8089


@dataclass(frozen=True)
class SimulateOptions:
    """What ``oktaduck simulate`` serves: where, how much history, and how it behaves."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    events: int = 2000
    hours: float = 24.0
    seed: int = 0
    trickle_per_minute: float = 0.0
    rate_limit: int = 600
    window_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {self.port}")
        if not (0 <= self.events <= 10_000_000 and 0 < self.hours <= 24 * 90):
            raise ValueError("events must be from 0 to 10000000 and hours above 0, at most 2160")
        if not (
            0 <= self.trickle_per_minute <= 1e6
            and 0 <= self.rate_limit <= 1e9
            and 0 < self.window_seconds <= 86400
        ):
            raise ValueError(
                "trickle (at most 1000000/min) and rate limit must be >= 0, "
                "window_seconds above 0, at most 86400"
            )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``oktaduck simulate``."""
    defaults = SimulateOptions()
    parser.add_argument("--host", default=defaults.host, help="address to listen on")
    parser.add_argument("--port", type=int, default=defaults.port, help="port (0 = any free)")
    parser.add_argument(
        "--events", type=int, default=defaults.events, help="events to seed the org with"
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=defaults.hours,
        help="the seeded events span this many hours up to now",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument(
        "--trickle",
        type=float,
        default=defaults.trickle_per_minute,
        metavar="PER_MINUTE",
        help="keep adding this many events per minute",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=defaults.rate_limit,
        help="requests per window for /api/v1/logs (0 = off)",
    )
    parser.add_argument(
        "--window-seconds",
        type=float,
        default=defaults.window_seconds,
        help="length of the rate-limit window",
    )


def options_from(args: argparse.Namespace) -> SimulateOptions:
    """``SimulateOptions`` from parsed ``add_arguments`` options."""
    try:
        return SimulateOptions(
            host=args.host,
            port=args.port,
            events=args.events,
            hours=args.hours,
            seed=args.seed,
            trickle_per_minute=args.trickle,
            rate_limit=args.rate_limit,
            window_seconds=args.window_seconds,
        )
    except ValueError as err:
        raise ConfigError(f"simulate: {err}") from err

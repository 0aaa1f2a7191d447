"""The ``oktaduck`` command: a thin layer over the modules that do the work.

``parser`` builds the argument parser (every command's options, help and examples, with the
formatter of ``help``); ``commands`` holds one function per command, grouped by what they do;
``main`` here parses, sets up logging and turns every error into one line and an exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from ingest.base import logs, runtime
from ingest.base.errors import OktaduckError
from ingest.base.redact import redact
from ingest.base.tablewriter import visible
from ingest.cli.help import COMMAND_GROUPS, commands_overview
from ingest.cli.parser import LOG_LEVELS, build_parser

__all__ = ["COMMAND_GROUPS", "INTERNAL_ERROR", "build_parser", "commands_overview", "main"]

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(0o077)  # database, WAL and exports: private to the service user
    runtime.tune()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "feed":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if args.log_level not in LOG_LEVELS:  # the default comes from OKTADUCK_LOG_LEVEL unchecked
        parser.error(f"OKTADUCK_LOG_LEVEL: choose from {', '.join(LOG_LEVELS)}")
    logs.setup(args.log_level)
    handler: Handler = args.func
    try:
        return handler(args)
    except OktaduckError as err:
        # a message may quote stored text (a failed cast names the value): shown, not obeyed
        print(f"oktaduck: error: {visible(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # the last line of defence, see _internal_error
        return _internal_error(err, args.log_level == "debug")


INTERNAL_ERROR = 70  # EX_SOFTWARE of sysexits.h


def _internal_error(err: Exception, debug: bool) -> int:
    """An exception no part of oktaduck expected: one line on stderr (the traceback with
    ``--log-level debug``), exit 70. A bug to report, never a way to leak a secret."""
    if debug:  # redacted too: the message, and the source lines, may hold a secret
        print(redact("".join(traceback.format_exception(err))), end="", file=sys.stderr)
    message = visible(redact(" ".join(str(err).split())))[:300]
    hint = "" if debug else " (--log-level debug shows the traceback)"
    print(f"oktaduck: internal error: {type(err).__name__}: {message}{hint}", file=sys.stderr)
    return INTERNAL_ERROR

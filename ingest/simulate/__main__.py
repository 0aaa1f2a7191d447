"""``python -m ingest.simulate``: the same as ``oktaduck simulate`` (handy in subprocess tests)."""

from __future__ import annotations

import argparse
import sys

from ingest.base.errors import OktaduckError
from ingest.simulate.options import add_arguments
from ingest.simulate.server import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest.simulate", description=__doc__)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except OktaduckError as err:
        print(f"simulate: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    raise SystemExit(main())

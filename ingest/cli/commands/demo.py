"""The commands with a simulated Okta org: ``demo`` and ``simulate``."""

from __future__ import annotations

import argparse


def cmd_simulate(args: argparse.Namespace) -> int:
    from ingest.simulate import server

    return server.run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ingest import demo

    return demo.run(args.db, events=args.events)

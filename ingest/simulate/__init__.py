"""A simulated Okta org: a realistic event generator and a faithful ``/api/v1/logs`` server."""

from ingest.simulate.generator import EventGenerator
from ingest.simulate.org import DEMO_TOKEN, FAULT_KINDS, OrgConfig, SimulatedOrg
from ingest.simulate.responses import SimResponse
from ingest.simulate.server import (
    SimulateOptions,
    SimulatorServer,
    add_arguments,
    run,
    serve_forever,
)

__all__ = [
    "DEMO_TOKEN",
    "FAULT_KINDS",
    "EventGenerator",
    "OrgConfig",
    "SimResponse",
    "SimulateOptions",
    "SimulatedOrg",
    "SimulatorServer",
    "add_arguments",
    "run",
    "serve_forever",
]

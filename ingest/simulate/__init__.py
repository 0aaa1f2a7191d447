"""A simulated Okta org: a realistic event generator and a faithful ``/api/v1/logs`` server.

The names below load their modules on first use, so that ``oktaduck`` can build the simulate
command's options (``ingest.simulate.options``) without loading the org, and with it the JWT
and cryptography libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.simulate.generator import EventGenerator
    from ingest.simulate.options import SimulateOptions, add_arguments
    from ingest.simulate.org import DEMO_TOKEN, FAULT_KINDS, OrgConfig, SimulatedOrg
    from ingest.simulate.responses import SimResponse
    from ingest.simulate.server import SimulatorServer, run, serve_forever

_MODULES = {
    "DEMO_TOKEN": "org",
    "FAULT_KINDS": "org",
    "EventGenerator": "generator",
    "OrgConfig": "org",
    "SimResponse": "responses",
    "SimulateOptions": "options",
    "SimulatedOrg": "org",
    "SimulatorServer": "server",
    "add_arguments": "options",
    "run": "server",
    "serve_forever": "server",
}
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


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

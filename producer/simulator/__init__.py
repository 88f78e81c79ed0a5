"""The built-in Zendesk: the incremental ticket export, its faults and a ground truth.

sim = Simulator(SimulatorConfig(tickets=500), ScaledClock(speed=60))
with SimulatorServer(sim) as server:
    httpx.get(f"{server.base_url}/api/v2/incremental/tickets.json?start_time=0", ...)
"""

from producer.simulator.activity import LiveActivity
from producer.simulator.auth import basic_header
from producer.simulator.config import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_EMAIL,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_TOKEN,
    SimulatorConfig,
)
from producer.simulator.export import decode_cursor, encode_cursor
from producer.simulator.faults import Faults
from producer.simulator.server import SimulatorServer, run_simulator
from producer.simulator.simulator import RequestRecord, SimRequest, SimResponse, Simulator
from producer.simulator.truth import ChangeOp, ContentChange, GroundTruth, Observed, TicketTruth

__all__ = [
    "DEFAULT_ACCESS_TOKEN",
    "DEFAULT_EMAIL",
    "DEFAULT_OAUTH_CLIENT_ID",
    "DEFAULT_OAUTH_CLIENT_SECRET",
    "DEFAULT_REFRESH_TOKEN",
    "DEFAULT_TOKEN",
    "ChangeOp",
    "ContentChange",
    "Faults",
    "GroundTruth",
    "LiveActivity",
    "Observed",
    "RequestRecord",
    "SimRequest",
    "SimResponse",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "TicketTruth",
    "basic_header",
    "decode_cursor",
    "encode_cursor",
    "run_simulator",
]

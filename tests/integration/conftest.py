"""Simulator fixtures: a built-in Zendesk over real HTTP on an accelerated clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from producer.clock import ScaledClock
from producer.simulator import Simulator, SimulatorConfig, SimulatorServer, basic_header


@dataclass
class RunningSimulator:
    sim: Simulator
    server: SimulatorServer
    clock: ScaledClock
    base_url: str
    auth_header: str  # Authorization value for the default API token

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on the simulator, authenticated with the API token; closed by you."""
        headers = {"Authorization": self.auth_header, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 10)
        return httpx.Client(base_url=self.base_url, headers=headers, **kwargs)

    def export_url(self, **params: Any) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{self.base_url}/api/v2/incremental/tickets.json?{query}"


SimulatorFactory = Callable[..., RunningSimulator]


@pytest.fixture
def simulator_factory() -> Iterator[SimulatorFactory]:
    """make(speed=1.0, start=None, config=None, **config_overrides) -> RunningSimulator.

    Builds a Simulator on a ScaledClock (pass `speed` to accelerate, `start` to pin its
    start), serves it on a free port and stops it at teardown.
    """
    running: list[SimulatorServer] = []

    def make(
        *,
        speed: float = 1.0,
        start: float | None = None,
        config: SimulatorConfig | None = None,
        **overrides: Any,
    ) -> RunningSimulator:
        cfg = dataclasses.replace(config or SimulatorConfig(), **overrides)
        clock = ScaledClock(start=start, speed=speed)
        sim = Simulator(cfg, clock)
        server = SimulatorServer(sim).start()
        running.append(server)
        return RunningSimulator(
            sim, server, clock, server.base_url, basic_header(cfg.email, cfg.api_token)
        )

    yield make
    for server in running:
        server.stop()

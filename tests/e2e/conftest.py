"""E2E fixtures: `zendesk-cdc` as a user runs it (a subprocess), against a simulator served
from this process on the real clock and a real broker."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from producer.broker import free_port
from producer.simulator import Simulator, SimulatorConfig, SimulatorServer

CLI = str(Path(sys.executable).with_name("zendesk-cdc"))
# The service's budget follows the account's: let the simulator allow 100 a minute,
# so a page costs 0.6 s of real time instead of 6 s.
FAST_ACCOUNT = SimulatorConfig(rate_limit_per_minute=100)


@pytest.fixture
def sim_server() -> Iterator[Callable[..., SimulatorServer]]:
    """make(**SimulatorConfig overrides) -> a started SimulatorServer on the real clock."""
    servers: list[SimulatorServer] = []

    def make(**overrides: Any) -> SimulatorServer:
        server = SimulatorServer(Simulator(dataclasses.replace(FAST_ACCOUNT, **overrides)))
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without any ZENDESK_CDC_ setting, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("ZENDESK_CDC_")}
    return {**base, "PYTHONUNBUFFERED": "1", **env}


@dataclass
class CliRun:
    process: subprocess.Popen[bytes]
    stderr_path: Path
    http: str  # base URL of /metrics, /livez, /readyz

    def stderr_lines(self) -> list[str]:
        return self.stderr_path.read_text(encoding="utf-8").splitlines()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Callable[..., CliRun]]:
    """start(args, env) -> a `zendesk-cdc ...` subprocess with stderr captured to a file.

    `{http}` in args is replaced by a free 127.0.0.1:PORT; killed at teardown if still running.
    """
    runs: list[CliRun] = []

    def start(args: Sequence[str], env: dict[str, str] | None = None) -> CliRun:
        address = f"127.0.0.1:{free_port()}"
        stderr_path = tmp_path / f"stderr-{len(runs)}.log"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [CLI, *(a.replace("{http}", address) for a in args)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=clean_env(**(env or {})),
                cwd=tmp_path,
            )
        run = CliRun(process, stderr_path, f"http://{address}")
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGKILL)
            run.process.wait(10)

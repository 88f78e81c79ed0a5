"""The simulator over real HTTP: stdlib ThreadingHTTPServer in a background thread."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from producer.clock import Clock, ScaledClock
from producer.simulator.activity import LiveActivity
from producer.simulator.config import SimulatorConfig
from producer.simulator.simulator import SimRequest, SimResponse, Simulator

MAX_BODY = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or self.server.address
        req = SimRequest(
            method=self.command,
            path=url.path,
            query=tuple(parse_qsl(url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=f"http://{host}",
        )
        try:
            resp = self.server.simulator.handle(req)
        except Exception:  # a simulator bug must not look like a dropped connection
            logging.getLogger(__name__).exception("simulator failed on %s", self.path)
            resp = SimResponse(
                500, b'{"error":"SimulatorBug"}', (("Content-Type", "application/json"),)
            )
        if resp.delay > 0:
            time.sleep(resp.delay)  # the slow-response fault is real time: it tests client timeouts
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and the demo read the simulator's request log instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!r}:{port}" if isinstance(host, bytes) else f"{host}:{port}"


class SimulatorServer:
    """Serves a `Simulator` on host:port (port 0 picks a free one); also a context manager."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self._server = _Server((host, port), simulator)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sim-http", daemon=True
        )
        self._activity: LiveActivity | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self._server.address}"

    def start(self) -> SimulatorServer:
        self._thread.start()
        if self.simulator.config.activity_per_minute > 0:
            self._activity = LiveActivity(self.simulator, self.simulator.config.activity_per_minute)
            self._activity.start()
        return self

    def stop(self) -> None:
        if self._activity is not None:
            self._activity.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_simulator(
    port: int = 8080,
    tickets: int = 1000,
    seed: int = 1,
    speed: float = 1.0,
    activity_rate: float = 0.0,
    *,
    host: str = "127.0.0.1",
    activity_per_minute: float | None = None,
    rate_limit: int | None = None,
    config: SimulatorConfig | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve until interrupted (or `stop` is set): the `zendesk-cdc simulate` command.

    `activity_per_minute` is an alias of `activity_rate` (events per simulated minute);
    `rate_limit` sets the incremental-export requests per minute.
    """
    cfg = dataclasses.replace(
        config or SimulatorConfig(),
        tickets=tickets,
        seed=seed,
        activity_per_minute=activity_rate if activity_per_minute is None else activity_per_minute,
    )
    if rate_limit is not None:
        cfg = dataclasses.replace(cfg, rate_limit_per_minute=rate_limit)
    clock: Clock = ScaledClock(speed=speed)
    with SimulatorServer(Simulator(cfg, clock), host, port) as server:
        print(
            f"Zendesk simulator: {cfg.tickets} tickets on {server.base_url} (clock x{speed}, "
            f"{cfg.rate_limit_per_minute} export requests/min); try:\n"
            f"  curl -u '{cfg.email}/token:{cfg.api_token}' "
            f"'{server.base_url}/api/v2/incremental/tickets.json?start_time=0&per_page=2'",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()

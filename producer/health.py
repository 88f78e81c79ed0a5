"""The service's HTTP face: /metrics, /livez and /readyz on one address.

/livez answers "is the loop itself wedged?" and nothing else: it stays healthy while
Zendesk or Kafka is unreachable (the loop keeps iterating through its retries), so a
Zendesk outage never turns into a restart loop. /readyz is true once the cursor is
loaded, the store caught up and the producer initialised.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from producer.clock import Clock
from producer.metrics import Metrics


class Health:
    """What the probes read; the poller writes it."""

    def __init__(self, clock: Clock, wedged_after_seconds: float) -> None:
        self._clock = clock
        self._wedged_after = wedged_after_seconds
        self._last_beat = clock.now()
        self.ready = False

    def beat(self) -> None:
        """The loop went round (or is waiting on purpose: a rate-budget or poll wait)."""
        self._last_beat = self._clock.now()

    def alive(self) -> tuple[bool, str]:
        silent = self._clock.now() - self._last_beat
        if silent > self._wedged_after:
            return False, f"no loop iteration for {silent:.0f}s"
        return True, "ok"


def _handler(metrics: Metrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/livez":
                ok, why = health.alive()
                self._send(200 if ok else 503, why.encode() + b"\n")
            elif path == "/readyz":
                ok = health.ready
                self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            else:
                self._send(404, b"not found\n")

        def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the real log

    return Handler


class HealthServer:
    def __init__(self, address: str, metrics: Metrics, health: Health) -> None:
        host, _, port = address.rpartition(":")
        bind = (host or "0.0.0.0", int(port))  # noqa: S104 - probes come from outside the pod
        self._server = ThreadingHTTPServer(bind, _handler(metrics, health))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

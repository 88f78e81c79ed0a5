"""Health and its HTTP face: /livez fails only when the loop stops beating, /readyz follows
`ready`, /metrics serves the registry."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from producer.clock import ScaledClock
from producer.health import Health, HealthServer
from producer.metrics import Metrics


@pytest.fixture
def clock() -> ScaledClock:
    return ScaledClock(start=1_800_000_000, speed=1e-9)  # effectively frozen; tests advance it


@pytest.fixture
def served(clock: ScaledClock) -> Iterator[tuple[Health, Metrics, str]]:
    health, metrics = Health(clock, wedged_after_seconds=300), Metrics()
    server = HealthServer("127.0.0.1:0", metrics, health).start()
    try:
        yield health, metrics, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("silent", "alive"), [(0, True), (299, True), (300, True), (301, False), (10_000, False)]
)
def test_alive_until_no_beat_for_longer_than_wedged_after(
    clock: ScaledClock, silent: float, alive: bool
) -> None:
    health = Health(clock, wedged_after_seconds=300)
    clock.advance(silent)
    ok, why = health.alive()
    assert ok is alive
    assert (why == "ok") is alive
    if not alive:
        assert f"{silent:.0f}s" in why


def test_a_beat_makes_a_wedged_loop_alive_again(clock: ScaledClock) -> None:
    health = Health(clock, wedged_after_seconds=60)
    clock.advance(61)
    assert health.alive()[0] is False
    health.beat()
    assert health.alive() == (True, "ok")
    clock.advance(59)
    assert health.alive()[0] is True


def test_not_ready_until_told(clock: ScaledClock) -> None:
    assert Health(clock, 60).ready is False


def test_probes_over_http(served: tuple[Health, Metrics, str], clock: ScaledClock) -> None:
    health, _, base = served
    assert httpx.get(f"{base}/readyz").status_code == 503
    assert httpx.get(f"{base}/livez").status_code == 200
    health.ready = True
    ready = httpx.get(f"{base}/readyz?verbose=1")  # query strings are ignored
    assert (ready.status_code, ready.text) == (200, "ready\n")
    clock.advance(301)
    wedged = httpx.get(f"{base}/livez")
    assert wedged.status_code == 503
    assert "no loop iteration for 301s" in wedged.text
    assert httpx.get(f"{base}/readyz").status_code == 200  # readiness is a separate question


def test_metrics_endpoint_serves_the_registry(served: tuple[Health, Metrics, str]) -> None:
    _, metrics, base = served
    metrics.tickets_fetched.inc(42)
    response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "zendesk_cdc_tickets_fetched_total 42.0" in response.text.splitlines()


def test_unknown_paths_are_404(served: tuple[Health, Metrics, str]) -> None:
    _, _, base = served
    assert httpx.get(f"{base}/").status_code == 404
    assert httpx.get(f"{base}/metricsx").status_code == 404

"""Operations, in process: the metrics appear at 0 and move, and the probes tell the truth.

The service is wired by `build_service` exactly as `zendesk-cdc run` wires it, against the
simulator over HTTP and a real broker, on one accelerated clock; /metrics, /livez and
/readyz are read over HTTP from the real HealthServer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from producer import __version__
from producer.clock import ScaledClock
from producer.health import Health, HealthServer
from producer.metrics import ENDPOINTS, ERROR_KINDS, OPS, SKIP_REASONS, STATUS_CLASSES, Metrics
from producer.service import Service, build_service
from tests.e2e.support import Scrape, probe, scrape, service_settings, wait_until
from tests.integration.conftest import RunningSimulator, SimulatorFactory

P = "zendesk_cdc_"
# Fast enough that the 10-per-minute budget costs ~0.1 s a page, slow enough that the
# 360-clock-second liveness window is still several real seconds.
SPEED = 60.0


class Running:
    """A built service with its HealthServer on a free port."""

    def __init__(self, service: Service, server: HealthServer, stop: threading.Event) -> None:
        self.service = service
        self.stop = stop
        self.base = f"http://127.0.0.1:{server.port}"

    def scrape(self) -> Scrape:
        return scrape(self.base)


@pytest.fixture
def running_service(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> Iterator[tuple[RunningSimulator, Running]]:
    sim = simulator_factory(speed=SPEED, tickets=1200)
    settings = service_settings(sim.base_url, kafka_bootstrap, tmp_path, unique_name("ops-metrics"))
    stop = threading.Event()
    metrics = Metrics()
    with build_service(settings, stop=stop, clock=sim.clock, metrics=metrics) as service:
        server = HealthServer("127.0.0.1:0", metrics, service.health).start()
        try:
            yield sim, Running(service, server, stop)
        finally:
            stop.set()
            server.stop()


def test_every_series_is_exported_at_zero_before_the_first_poll(
    running_service: tuple[RunningSimulator, Running],
) -> None:
    _, running = running_service
    first = running.scrape()

    for endpoint in ENDPOINTS:
        for status in STATUS_CLASSES:
            assert first.value(f"{P}api_requests_total", endpoint=endpoint, status=status) == 0
        assert first.value(f"{P}api_request_duration_seconds_count", endpoint=endpoint) == 0
    for op in OPS:
        assert first.value(f"{P}changes_published_total", op=op) == 0
    for reason in SKIP_REASONS:
        assert first.value(f"{P}tickets_skipped_total", reason=reason) == 0
    for kind in ERROR_KINDS:
        assert first.value(f"{P}errors_total", kind=kind) == 0
    for outcome in ("committed", "aborted"):
        assert first.value(f"{P}transactions_total", outcome=outcome) == 0
    for name in (
        "tickets_fetched_total", "pages_fetched_total", "rate_limited_total",
        "rate_limit_waits_total", "dead_lettered_total", "export_cursor_timestamp_seconds",
        "last_commit_timestamp_seconds", "store_entries", "ready",
        "caught_up_timestamp_seconds",
    ):  # fmt: skip
        assert first.value(P + name) == 0, name
    assert first.value(f"{P}build_info", version=__version__) == 1
    # the budget is known before any request, so a dashboard can draw it from the start
    assert first.value(f"{P}rate_budget_requests_per_minute") == 10


def test_metrics_move_with_a_drain(running_service: tuple[RunningSimulator, Running]) -> None:
    sim, running = running_service
    poller = running.service.poller
    poller.start()
    before_drain = sim.clock.now()
    pages = poller.drain()
    after = running.scrape()

    requests_ok = sim.sim.request_count(status=200)
    assert pages >= 3  # 1,200 tickets at 500 a page
    assert after.value(f"{P}api_requests_total", endpoint="incremental_tickets", status="2xx") == (
        requests_ok
    )
    durations = after.value(
        f"{P}api_request_duration_seconds_count", endpoint="incremental_tickets"
    )
    assert durations == requests_ok
    assert after.value(f"{P}pages_fetched_total") == pages
    assert after.value(f"{P}tickets_fetched_total") == poller.progress.tickets >= 1200

    # every ticket of the history is new to the store: created, or first seen deleted
    truth = sim.sim.ground_truth()
    expected: Counter[str] = Counter(
        "delete" if t.deleted else "create" for t in truth.tickets.values()
    )
    for op in OPS:
        assert after.value(f"{P}changes_published_total", op=op) == expected[op], op
    assert (
        after.value(f"{P}tickets_skipped_total", reason="duplicate")
        == (poller.progress.skipped["duplicate"])
    )
    assert after.value(f"{P}transactions_total", outcome="committed") == pages
    assert after.value(f"{P}transactions_total", outcome="aborted") == 0

    assert poller.cursor is not None
    assert after.value(f"{P}export_cursor_timestamp_seconds") == poller.cursor.start_time
    assert poller.cursor.start_time > truth.visible_until - 3600  # it reached the present
    assert before_drain <= after.value(f"{P}last_commit_timestamp_seconds") <= sim.clock.now()
    # the drain reached the export's end: the lag alert measures from this moment
    assert before_drain <= after.value(f"{P}caught_up_timestamp_seconds") <= sim.clock.now()
    assert after.value(f"{P}store_entries") == len(truth.tickets)
    assert after.value(f"{P}store_bytes") > 0
    assert after.value(f"{P}transaction_duration_seconds_count") == pages
    assert after.value(f"{P}ready") == 1


def test_readyz_is_503_until_state_is_restored_then_200(
    running_service: tuple[RunningSimulator, Running],
) -> None:
    _, running = running_service
    # built: topics exist and the producer is initialised, but the cursor is not loaded
    assert probe(running.base, "/readyz") == 503
    assert probe(running.base, "/livez") == 200
    running.service.poller.start()
    assert probe(running.base, "/readyz") == 200


def test_readyz_stays_503_while_the_restore_runs(
    running_service: tuple[RunningSimulator, Running],
) -> None:
    _, running = running_service
    poller = running.service.poller
    restoring, release = threading.Event(), threading.Event()
    real_restore = poller._restore  # held open to look inside

    def slow_restore() -> Any:
        restoring.set()
        release.wait(10)
        return real_restore()

    poller._restore = slow_restore
    starter = threading.Thread(target=poller.start)
    starter.start()
    try:
        assert restoring.wait(5)
        assert probe(running.base, "/readyz") == 503
    finally:
        release.set()
        starter.join(10)
    assert probe(running.base, "/readyz") == 200


def test_last_loop_iteration_gauge_moves_while_the_loop_runs(
    running_service: tuple[RunningSimulator, Running],
) -> None:
    _, running = running_service
    poller = running.service.poller
    poller.start()
    loop = threading.Thread(target=poller.run_forever, daemon=True)
    loop.start()
    try:
        wait_until(lambda: running.scrape().value(f"{P}pages_fetched_total") >= 3, 20, "a drain")
        assert running.scrape().value(f"{P}last_loop_iteration_timestamp_seconds") > 0
    finally:
        running.stop.set()
        loop.join(20)


def test_livez_fails_when_the_loop_stops_beating() -> None:
    clock = ScaledClock(speed=1.0)
    health = Health(clock, wedged_after_seconds=120)
    server = HealthServer("127.0.0.1:0", Metrics(), health).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        health.beat()
        assert probe(base, "/livez") == 200
        clock.advance(100)
        assert probe(base, "/livez") == 200  # waiting is not being wedged
        clock.advance(30)  # 130 s without a beat: the loop is stuck somewhere
        assert probe(base, "/livez") == 503
        health.beat()
        assert probe(base, "/livez") == 200
    finally:
        server.stop()

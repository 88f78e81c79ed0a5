"""Operations under bad input, at the service level: each fault has a defined behaviour,
a test and a metric. The client's own unit tests cover the classification in detail;
here the whole service (build_service, the poller, a real broker) lives through it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from producer.avro_mapping import ticket_from_avro
from producer.broker import EmbeddedBroker
from producer.codec import RecordDecoder
from producer.config import Settings
from producer.errors import MalformedResponseError
from producer.health import HealthServer
from producer.kafka_log import read_topic
from producer.metrics import Metrics
from producer.service import Service, build_service, kafka_connection
from producer.simulator import Observed
from producer.simulator.generator import TicketFactory
from tests.e2e.support import probe, service_settings
from tests.integration.conftest import RunningSimulator, SimulatorFactory

SPEED = 60.0  # the liveness window (360 clock-seconds) is 6 real seconds
TICKETS = 800


@pytest.fixture
def make_service(
    kafka_bootstrap: str, tmp_path: Path, unique_name: Callable[[str], str]
) -> Iterator[Callable[..., tuple[Service, Settings]]]:
    """make(sim, bootstrap=None, **settings) -> (a built service, its settings)."""
    with_stack: list[Any] = []
    stop = threading.Event()

    def make(
        sim: RunningSimulator, bootstrap: str | None = None, **overrides: Any
    ) -> tuple[Service, Settings]:
        settings = service_settings(
            sim.base_url, bootstrap or kafka_bootstrap, tmp_path, unique_name("ops"), **overrides
        )
        context = build_service(settings, stop=stop, clock=sim.clock, metrics=Metrics())
        with_stack.append(context)
        service = context.__enter__()
        service.poller.start()
        return service, settings

    yield make
    stop.set()
    for context in reversed(with_stack):
        context.__exit__(None, None, None)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"zendesk_cdc_{name}", labels)
    assert value is not None, f"no series {name}{labels}"
    return value


def stop_service(service: Service) -> None:
    service.poller._stop.set()  # the event build_service was given, as SIGTERM sets it


def published(settings: Settings) -> list[dict[str, Any]]:
    decoder = RecordDecoder()
    records = read_topic(kafka_connection(settings), settings.records_topic)
    return [decoder.decode(r.value).value for r in records if r.value is not None]


def assert_nothing_lost(sim: RunningSimulator, settings: Settings) -> None:
    values = published(settings)
    observed = [
        Observed(int(v["ticket"]["id"]), int(v["ticket"]["generated_timestamp"])) for v in values
    ]
    assert sim.sim.ground_truth().missed(observed) == []
    versions = Counter((o.ticket_id, o.generated_timestamp) for o in observed)
    assert max(versions.values()) == 1  # and nothing twice


def test_429_storm_waits_counts_and_loses_nothing(
    simulator_factory: SimulatorFactory, make_service: Callable[..., tuple[Service, Settings]]
) -> None:
    sim = simulator_factory(speed=SPEED, tickets=TICKETS)
    service, settings = make_service(sim, per_page=200)
    # another integration eats the account's export budget: Zendesk answers 429 + Retry-After
    with sim.client() as other:
        for _ in range(sim.sim.config.rate_limit_per_minute):
            other.get("/api/v2/incremental/tickets.json", params={"start_time": 0, "per_page": 1})
    sim.sim.faults.fail_next(2, (429,))  # and two 429s without Retry-After on top
    service.poller.drain()

    m = service.metrics
    refused = sim.sim.request_count(status=429)
    assert refused >= 3
    assert sample(m, "rate_limited_total") == refused
    assert sample(m, "errors_total", kind="rate_limited") == refused
    assert sample(m, "api_requests_total", endpoint="incremental_tickets", status="429") == refused
    assert sample(m, "rate_limit_wait_seconds_total") > 0
    assert_nothing_lost(sim, settings)


def test_5xx_burst_is_retried_and_counted_as_transient(
    simulator_factory: SimulatorFactory, make_service: Callable[..., tuple[Service, Settings]]
) -> None:
    sim = simulator_factory(speed=SPEED, tickets=TICKETS)
    service, settings = make_service(sim)
    sim.sim.faults.fail_next(4, (500, 502, 503, 504))
    service.poller.drain()

    m = service.metrics
    assert sample(m, "errors_total", kind="transient") == 4
    assert sample(m, "api_requests_total", endpoint="incremental_tickets", status="5xx") == 4
    assert sample(m, "transactions_total", outcome="aborted") == 0
    assert_nothing_lost(sim, settings)


def test_malformed_page_keeps_the_cursor_and_counts(
    simulator_factory: SimulatorFactory, make_service: Callable[..., tuple[Service, Settings]]
) -> None:
    sim = simulator_factory(speed=SPEED, tickets=TICKETS)
    service, settings = make_service(sim)
    poller, m = service.poller, service.metrics
    start = poller.cursor
    # more invalid bodies in a row than the client retries: the page fails as a whole
    sim.sim.faults.set(invalid_json_next=10)
    with pytest.raises(MalformedResponseError):
        poller.drain()

    assert poller.cursor == start
    assert sample(m, "errors_total", kind="malformed_response") >= 2
    assert sample(m, "transactions_total", outcome="committed") == 0
    assert start is not None
    assert sample(m, "export_cursor_timestamp_seconds") == start.start_time
    assert published(settings) == []

    sim.sim.faults.clear()
    poller.drain()  # the same cursor again, once Zendesk answers properly
    assert_nothing_lost(sim, settings)


def test_unknown_ticket_fields_are_preserved_in_the_record(
    simulator_factory: SimulatorFactory,
    make_service: Callable[..., tuple[Service, Settings]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generate = TicketFactory.ticket

    def with_future_fields(self: TicketFactory, *args: Any, **kwargs: Any) -> dict[str, Any]:
        ticket = generate(self, *args, **kwargs)
        if ticket["id"] % 3 == 0:  # fields Zendesk adds one day, of several shapes
            ticket["ai_summary"] = {"text": "résumé ✓", "confidence": 0.93, "tags": ["x"]}
            ticket["sla_breach_at"] = None
            ticket["escalation_level"] = 2
        return ticket

    monkeypatch.setattr(TicketFactory, "ticket", with_future_fields)
    sim = simulator_factory(speed=SPEED, tickets=60)
    service, settings = make_service(sim)
    service.poller.drain()

    values = published(settings)
    with_extras = [v for v in values if int(v["ticket"]["id"]) % 3 == 0]
    assert with_extras
    for value in values:
        ticket = ticket_from_avro(value["ticket"])
        assert ticket == sim.sim.ticket(int(ticket["id"]))  # lossless, new fields included


def test_livez_stays_healthy_while_the_broker_is_unreachable(
    simulator_factory: SimulatorFactory, make_service: Callable[..., tuple[Service, Settings]]
) -> None:
    sim = simulator_factory(speed=SPEED, tickets=TICKETS)
    with EmbeddedBroker() as broker:
        # failed deliveries surface after 3 s instead of a minute, so the test stays short
        service, _ = make_service(sim, broker.bootstrap_servers, transaction_timeout_ms=3000)
        server = HealthServer("127.0.0.1:0", service.metrics, service.health).start()
        base = f"http://127.0.0.1:{server.port}"
        service.poller.drain()
        committed = sample(service.metrics, "transactions_total", outcome="committed")
        broker.stop()
        loop = threading.Thread(target=service.poller.run_forever, daemon=True)
        loop.start()
        statuses = []
        # longer than the 6 s liveness window: a loop stuck in one Kafka call would fail it
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:
            statuses.append(probe(base, "/livez"))
            time.sleep(0.25)
        stopping = time.monotonic()
        stop_service(service)
        loop.join(10)
        stopped_after = time.monotonic() - stopping
        server.stop()

    m = service.metrics
    assert set(statuses) == {200}
    # the loop kept going round: each attempt aborted and was counted
    assert sample(m, "transactions_total", outcome="aborted") >= 2
    assert sample(m, "errors_total", kind="kafka_abortable") >= 2
    assert sample(m, "transactions_total", outcome="committed") == committed
    assert not loop.is_alive()
    assert stopped_after < 5


def test_readyz_and_livez_over_http_reflect_a_zendesk_outage(
    simulator_factory: SimulatorFactory, make_service: Callable[..., tuple[Service, Settings]]
) -> None:
    """Zendesk down is not a reason to restart the pod: /livez stays 200."""
    sim = simulator_factory(speed=SPEED, tickets=TICKETS)
    service, _ = make_service(sim)
    server = HealthServer("127.0.0.1:0", service.metrics, service.health).start()
    base = f"http://127.0.0.1:{server.port}"
    sim.sim.faults.fail_next(1000, (503,))
    loop = threading.Thread(target=service.poller.run_forever, daemon=True)
    loop.start()
    try:
        statuses = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            statuses.append((probe(base, "/livez"), probe(base, "/readyz")))
            time.sleep(0.25)
        assert set(statuses) == {(200, 200)}
        assert sample(service.metrics, "errors_total", kind="transient") >= 3
        assert httpx.get(f"{base}/nope", timeout=5).status_code == 404
    finally:
        stop_service(service)
        loop.join(10)
        server.stop()

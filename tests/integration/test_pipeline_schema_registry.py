"""End to end with Confluent framing: the pipeline against a Schema Registry over HTTP.

The registry is the HTTP double in tests/fakes (no real one can be installed here);
the broker and the simulator are real processes/servers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from producer.codec import RecordDecoder
from producer.config import Settings
from producer.errors import FatalSchemaRegistryError, RetryableSchemaRegistryError
from producer.kafka_log import read_topic
from producer.metrics import Metrics
from producer.service import build_service, kafka_connection
from producer.simulator import Observed
from tests.fakes.schema_registry import FakeSchemaRegistry
from tests.integration.conftest import SimulatorFactory
from tests.integration.pipeline_support import (
    audit,
    pipeline_settings,
    run_pipeline,
)


def test_records_carry_registry_ids_and_decode_through_the_registry(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    running = simulator_factory(speed=600, tickets=400, seed=31)
    with FakeSchemaRegistry() as registry:
        settings = pipeline_settings(
            running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("registry"),
            schema_registry_url=registry.url,
        )  # fmt: skip
        run_pipeline(settings, running.clock)

        records = read_topic(kafka_connection(settings), settings.records_topic)
        values = [r for r in records if r.value is not None]
        assert values
        # Confluent framing: magic byte 0, then the id the registry gave the value schema
        value_ids = {int.from_bytes(r.value[1:5], "big") for r in values if r.value}
        key_ids = {int.from_bytes(r.key[1:5], "big") for r in records if r.key}
        assert {r.value[0] for r in values if r.value} == {0}
        assert len(value_ids) == 1
        assert len(key_ids) == 1
        topic = settings.records_topic
        assert {f"{topic}-key", f"{topic}-value"} <= set(registry.state.subjects)
        assert registry.state.subjects[f"{topic}-value"] == list(value_ids)

        decoder = RecordDecoder(SchemaRegistryClient({"url": registry.url}))
        decoded = [decoder.decode(r.value) for r in values if r.value]
        observed = registry_observed(settings, registry.url)
    assert {d.framing for d in decoded} == {"registry"}
    assert {d.schema for d in decoded} == {"com.zendesk_cdc.TicketChange"}
    assert audit(running.sim.ground_truth(), observed).exactly_once


def test_an_unreachable_registry_commits_nothing_and_the_page_is_redone(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    running = simulator_factory(speed=600, tickets=300, seed=32)
    with FakeSchemaRegistry() as registry:
        settings = pipeline_settings(
            running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("registry-down"),
            schema_registry_url=registry.url,
        )  # fmt: skip
        registry.state.fail_status = 503
        with build_service(
            settings, stop=threading.Event(), clock=running.clock, metrics=Metrics()
        ) as svc:
            svc.poller.start()
            start = svc.poller.cursor
            with pytest.raises(RetryableSchemaRegistryError, match="503"):
                svc.poller.drain()
            assert svc.poller.cursor == start  # the page in hand did not commit
            assert read_topic(kafka_connection(settings), settings.records_topic) == []
            registry.state.fail_status = None  # the registry is back: the same page again
            svc.poller.drain()
        observed = registry_observed(settings, registry.url)
    assert audit(running.sim.ground_truth(), observed).exactly_once


def registry_observed(settings: Settings, registry_url: str) -> list[Observed]:
    records = read_topic(kafka_connection(settings), settings.records_topic)
    decoder = RecordDecoder(SchemaRegistryClient({"url": registry_url}))
    decoded = [decoder.decode(r.value) for r in records if r.value is not None]
    return [
        Observed(int(d.value["ticket"]["id"]), int(d.value["ticket"]["generated_timestamp"]))
        for d in decoded
    ]


@pytest.mark.parametrize("status", [401, 409])
def test_a_registry_that_refuses_stops_the_service(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    status: int,
) -> None:
    running = simulator_factory(speed=600, tickets=50, seed=33)
    with FakeSchemaRegistry() as registry:
        settings = pipeline_settings(
            running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("registry-no"),
            schema_registry_url=registry.url,
        )  # fmt: skip
        registry.state.fail_status = status
        with build_service(
            settings, stop=threading.Event(), clock=running.clock, metrics=Metrics()
        ) as svc:
            svc.poller.start()
            with pytest.raises(FatalSchemaRegistryError, match=f"refused \\({status}\\)"):
                svc.poller.drain()

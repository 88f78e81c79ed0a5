"""End to end with Confluent framing: the pipeline against a Schema Registry over HTTP.

The registry is the HTTP double in tests/fakes (no real one can be installed here);
the broker and the simulator are real processes/servers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from producer.codec import Decoded, RecordDecoder
from producer.config import Settings
from producer.errors import FatalSchemaRegistryError, RetryableSchemaRegistryError
from producer.kafka_log import LogRecord, read_topic
from producer.metrics import Metrics
from producer.service import Service, build_service, kafka_connection
from producer.simulator import Observed
from tests.fakes.schema_registry import FakeSchemaRegistry
from tests.integration.conftest import RunningSimulator, SimulatorFactory
from tests.integration.pipeline_support import audit, pipeline_settings, run_pipeline


@dataclass
class Rig:
    running: RunningSimulator
    registry: FakeSchemaRegistry
    settings: Settings

    def service(self) -> contextlib.AbstractContextManager[Service]:
        return build_service(
            self.settings, stop=threading.Event(), clock=self.running.clock, metrics=Metrics()
        )

    def records(self) -> list[LogRecord]:
        return read_topic(kafka_connection(self.settings), self.settings.records_topic)

    def decoded(self) -> list[Decoded]:
        decoder = RecordDecoder(SchemaRegistryClient({"url": self.registry.url}))
        return [decoder.decode(r.value) for r in self.records() if r.value is not None]

    def exactly_once(self) -> bool:
        observed = [
            Observed(int(d.value["ticket"]["id"]), int(d.value["ticket"]["generated_timestamp"]))
            for d in self.decoded()
        ]
        return audit(self.running.sim.ground_truth(), observed).exactly_once


@pytest.fixture
def rig(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[Rig]:
    running = simulator_factory(speed=600, tickets=300, seed=31)
    with FakeSchemaRegistry() as registry:
        settings = pipeline_settings(
            running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("registry"),
            schema_registry_url=registry.url,
        )  # fmt: skip
        yield Rig(running, registry, settings)


def test_records_carry_registry_ids_and_decode_through_the_registry(rig: Rig) -> None:
    run_pipeline(rig.settings, rig.running.clock)
    records = rig.records()
    values = [r.value for r in records if r.value is not None]
    assert values
    # Confluent framing: magic byte 0, then the id the registry gave the value schema
    assert {v[0] for v in values} == {0}
    value_ids = {int.from_bytes(v[1:5], "big") for v in values}
    key_ids = {int.from_bytes(r.key[1:5], "big") for r in records if r.key}
    assert len(value_ids) == len(key_ids) == 1
    topic = rig.settings.records_topic
    subjects = rig.registry.state.subjects
    assert {f"{topic}-key", f"{topic}-value"} <= set(subjects)
    assert subjects[f"{topic}-value"] == list(value_ids)
    decoded = rig.decoded()
    assert {d.framing for d in decoded} == {"registry"}
    assert {d.schema for d in decoded} == {"com.zendesk_cdc.TicketChange"}
    assert rig.exactly_once()


def test_an_unreachable_registry_commits_nothing_and_the_page_is_redone(rig: Rig) -> None:
    rig.registry.state.fail_status = 503
    with rig.service() as svc:
        svc.poller.start()
        start = svc.poller.cursor
        with pytest.raises(RetryableSchemaRegistryError, match="503"):
            svc.poller.drain()
        assert svc.poller.cursor == start  # the page in hand did not commit
        assert rig.records() == []
        rig.registry.state.fail_status = None  # the registry is back: the same page again
        svc.poller.drain()
    assert rig.exactly_once()


@pytest.mark.parametrize("status", [401, 409])
def test_a_registry_that_refuses_stops_the_service(rig: Rig, status: int) -> None:
    rig.registry.state.fail_status = status
    with rig.service() as svc:
        svc.poller.start()
        with pytest.raises(FatalSchemaRegistryError, match=f"refused \\({status}\\)"):
            svc.poller.drain()

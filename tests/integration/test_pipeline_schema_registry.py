"""End to end with Confluent framing: the pipeline against a Schema Registry over HTTP.

The registry is the HTTP double in tests/fakes (no real one can be installed here);
the broker and the simulator are real processes/servers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from confluent_kafka.schema_registry import SchemaRegistryClient

from producer.codec import RecordDecoder
from producer.kafka_log import read_topic
from producer.service import kafka_connection
from producer.simulator import Observed
from tests.fakes.schema_registry import FakeSchemaRegistry
from tests.integration.conftest import SimulatorFactory
from tests.integration.pipeline_support import audit, pipeline_settings, run_pipeline


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
    assert {d.framing for d in decoded} == {"registry"}
    assert {d.schema for d in decoded} == {"com.zendesk_cdc.TicketChange"}
    observed = [
        Observed(int(d.value["ticket"]["id"]), int(d.value["ticket"]["generated_timestamp"]))
        for d in decoded
    ]
    assert audit(running.sim.ground_truth(), observed).exactly_once

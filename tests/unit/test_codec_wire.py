"""Wire formats: CRC-64-AVRO, single-object and Schema Registry framing, golden bytes."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.avro_mapping import SourceInfo, change_record, dead_letter_record, ticket_from_avro
from producer.codec import encode_plan
from producer.errors import (
    ConfigError,
    EncodeError,
    FatalSchemaRegistryError,
    RetryableSchemaRegistryError,
)
from producer.model import ExportCursor, ExportPage, MalformedTicket
from producer.plan import plan_page
from producer.wire import (
    SCHEMA_DIR,
    DecodeError,
    RecordDecoder,
    RecordSerializer,
    RegistrySerializer,
    SingleObjectSerializer,
    SubjectStrategy,
    avro_long,
    crc64_avro,
    load_schema,
)
from tests.strategies import tickets

GOLDEN = Path(__file__).parent / "golden"
TICKET: dict[str, Any] = json.loads((GOLDEN / "ticket.json").read_text(encoding="utf-8"))
SOURCE = SourceInfo(
    "acme", 1709500000, 1709574011, "time", datetime(2024, 3, 4, 17, 45, 0, 125000, tzinfo=UTC)
)
CHANGE = change_record("update", TICKET, SOURCE)
DEAD = dead_letter_record(
    ticket_id=35437,
    reason="subject: expected a string, got int",
    raw_json='{"id":35437,"subject":42}',
    account="acme",
    generated_timestamp=1709574012,
    failed_at=1709574300.5,
)
SCHEMAS = ("ticket_change.v1", "ticket_key.v1", "dead_letter.v1")


def registry() -> SchemaRegistryClient:
    return SchemaRegistryClient.new_client({"url": "mock://test"})


# --- CRC-64-AVRO and schema files ---------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    # from the Avro specification's test data (share/test/data/schema-tests.txt)
    [('"null"', 7195948357588979594), ('"int"', 8247732601305521295)],
)
def test_crc64_avro_matches_the_spec_vectors(schema: str, expected: int) -> None:
    value = crc64_avro(schema.encode())
    assert int.from_bytes(value.to_bytes(8, "big"), "big", signed=True) == expected


@pytest.mark.parametrize("name", SCHEMAS)
def test_single_object_header_agrees_with_fastavro(name: str) -> None:
    schema = load_schema(name)
    canonical = to_parsing_canonical_form(schema.parsed)
    assert schema.header[:2] == b"\xc3\x01"
    # fastavro prints the fingerprint's little-endian bytes as hex
    assert schema.header[2:].hex() == fastavro_fingerprint(canonical, "CRC-64-AVRO")


def test_schema_files_parse_and_have_the_documented_names() -> None:
    names: dict[str, Any] = {}
    for path in sorted(SCHEMA_DIR.glob("*.avsc")):
        parsed: Any = fastavro.parse_schema(json.loads(path.read_text()), named_schemas={})
        names[path.stem] = parsed if isinstance(parsed, str) else parsed["name"]
    assert names == {
        "dead_letter.v1": "com.zendesk_cdc.DeadLetter",
        "ticket_change.v1": "com.zendesk_cdc.TicketChange",
        "ticket_key.v1": "long",
    }


# --- golden bytes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "schema", "expected", "encode"),
    [
        ("ticket_change.single_object.bin", "com.zendesk_cdc.TicketChange", CHANGE, "value"),
        ("ticket_key.single_object.bin", "long", 35436, "key"),
        ("dead_letter.single_object.bin", "com.zendesk_cdc.DeadLetter", DEAD, "dead_letter"),
    ],
)
def test_single_object_golden_bytes(file: str, schema: str, expected: Any, encode: str) -> None:
    golden = (GOLDEN / file).read_bytes()
    decoded = RecordDecoder().decode(golden)
    assert (decoded.schema, decoded.framing, decoded.value) == (schema, "single-object", expected)
    assert getattr(SingleObjectSerializer(), encode)(expected) == golden


def test_registry_golden_bytes() -> None:
    client = registry()
    serializer = RegistrySerializer(
        client, topic="zendesk.tickets", dead_letter_topic="zendesk.tickets.dlq"
    )
    value_golden = (GOLDEN / "ticket_change.registry.bin").read_bytes()
    key_golden = (GOLDEN / "ticket_key.registry.bin").read_bytes()
    # value first, so the mock registry hands out ids 1 (value) and 2 (key) as recorded
    assert serializer.value(CHANGE) == value_golden
    assert serializer.key(35436) == key_golden
    assert value_golden[0] == 0
    assert int.from_bytes(value_golden[1:5], "big") == 1
    assert client.get_subjects() == ["zendesk.tickets-value", "zendesk.tickets-key"]
    decoded = RecordDecoder(client).decode(value_golden)
    assert (decoded.schema, decoded.framing) == ("com.zendesk_cdc.TicketChange", "registry")
    assert decoded.value == CHANGE
    assert ticket_from_avro(decoded.value["ticket"]) == TICKET
    assert RecordDecoder(client).decode(key_golden).value == 35436


def test_single_object_and_registry_share_the_avro_body() -> None:
    single = SingleObjectSerializer().value(CHANGE)
    framed = RegistrySerializer(registry(), topic="t", dead_letter_topic="d").value(CHANGE)
    assert single[10:] == framed[5:]


@settings(max_examples=40)
@given(st.lists(tickets, min_size=2, max_size=4))
def test_registry_bytes_are_exactly_avro_serializers_for_every_record(
    batch: list[dict[str, Any]],
) -> None:
    # after the first record the frame is ours around the compiled body: prove the bytes
    client = registry()
    ours = RegistrySerializer(client, topic="t", dead_letter_topic="d")
    theirs = AvroSerializer(client, load_schema("ticket_change.v1").text)
    ctx = SerializationContext("t", MessageField.VALUE)
    for ticket in batch:
        record = change_record("update", ticket, SOURCE, tagged=True)
        assert ours.value(record) == theirs(record, ctx)
    theirs_key = AvroSerializer(client, load_schema("ticket_key.v1").text)
    for ticket in batch:
        key_ctx = SerializationContext("t", MessageField.KEY)
        assert ours.key(ticket["id"]) == theirs_key(ticket["id"], key_ctx)


def test_the_frame_is_learned_from_avro_serializers_first_record() -> None:
    serializer = RegistrySerializer(registry(), topic="t", dead_letter_topic="d")
    first = serializer.value(CHANGE)
    assert serializer._value._frame == first[:5] == b"\x00\x00\x00\x00\x01"
    assert serializer.value(CHANGE) == first


def test_with_use_latest_version_the_latest_schema_writes_every_record() -> None:
    client = registry()
    RegistrySerializer(client, topic="t", dead_letter_topic="d").value(CHANGE)
    newer = json.loads(load_schema("ticket_change.v1").text)
    newer["fields"].append({"name": "added_later", "type": "string", "default": "x"})
    client.register_schema("t-value", Schema(json.dumps(newer), "AVRO"))
    latest = RegistrySerializer(
        client, topic="t", dead_letter_topic="d", auto_register=False, use_latest_version=True
    )
    for _ in range(2):  # no frame is learned: the second record is the latest schema's too
        data = latest.value({**CHANGE, "added_later": "y"})
        assert data[1:5] == (2).to_bytes(4, "big")
        assert RecordDecoder(client).decode(data).value["added_later"] == "y"
    assert latest._value._frame is None


# --- registry options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "value_subject", "dead_subject"),
    [
        (SubjectStrategy.TOPIC, "t-value", "t.dlq-value"),
        (SubjectStrategy.RECORD, "com.zendesk_cdc.TicketChange", "com.zendesk_cdc.DeadLetter"),
        (
            SubjectStrategy.TOPIC_RECORD,
            "t-com.zendesk_cdc.TicketChange",
            "t.dlq-com.zendesk_cdc.DeadLetter",
        ),
    ],
)
def test_subject_name_strategy(
    strategy: SubjectStrategy, value_subject: str, dead_subject: str
) -> None:
    client = registry()
    serializer = RegistrySerializer(
        client, topic="t", dead_letter_topic="t.dlq", subject_strategy=strategy
    )
    serializer.value(CHANGE)
    serializer.dead_letter(DEAD)
    serializer.key(1)
    assert set(client.get_subjects()) == {value_subject, dead_subject, "t-key"}


def test_without_auto_register_an_unregistered_schema_fails() -> None:
    serializer = RegistrySerializer(
        registry(), topic="t", dead_letter_topic="d", auto_register=False
    )
    # a person must register the schema or allow auto-registration: the service stops
    with pytest.raises(FatalSchemaRegistryError, match=r"refused \(404\)") as info:
        serializer.value(CHANGE)
    assert isinstance(info.value.__cause__, SchemaRegistryError)


def test_without_auto_register_a_registered_schema_is_used() -> None:
    client = registry()
    RegistrySerializer(client, topic="t", dead_letter_topic="d").value(CHANGE)
    reuse = RegistrySerializer(client, topic="t", dead_letter_topic="d", auto_register=False)
    assert reuse.value(CHANGE)[1:5] == (1).to_bytes(4, "big")


def test_use_latest_version_with_auto_register_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="schema_registry"):
        RegistrySerializer(
            registry(), topic="t", dead_letter_topic="d", use_latest_version=True
        ).value(CHANGE)


def test_use_latest_version_writes_with_the_registered_id() -> None:
    client = registry()
    RegistrySerializer(client, topic="t", dead_letter_topic="d").value(CHANGE)
    latest = RegistrySerializer(
        client, topic="t", dead_letter_topic="d", auto_register=False, use_latest_version=True
    )
    data = latest.value(CHANGE)
    assert data[1:5] == (1).to_bytes(4, "big")
    assert RecordDecoder(client).decode(data).value == CHANGE


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "serializer",
    [SingleObjectSerializer(), RegistrySerializer(registry(), topic="t", dead_letter_topic="d")],
)
def test_an_invalid_record_is_an_encode_error(serializer: RecordSerializer) -> None:
    broken = {**CHANGE, "op": "merge"}  # not a symbol of the Op enum
    with pytest.raises(EncodeError) as info:
        serializer.value(broken)
    assert info.value.ticket_id == 35436


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unknown framing"),
        (b"\x7bjson", "unknown framing"),
        (b"\xc3\x01" + bytes(8) + b"\x02", "unknown schema fingerprint"),
        (load_schema("ticket_key.v1").header, "not a valid Avro body"),
        (load_schema("ticket_key.v1").header + b"\x02\x02", "trailing bytes"),
        (b"\x00\x00\x00\x00\x01\x02", "no Schema Registry"),
    ],
)
def test_decoder_rejects_what_it_cannot_read(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        RecordDecoder().decode(data)


# --- encode_plan --------------------------------------------------------------------


def test_encode_plan_publishes_in_order_with_tombstones_and_dead_letters() -> None:
    deleted = {**TICKET, "id": 2, "status": "deleted"}
    bad = {**TICKET, "id": 3, "subject": 42}
    page = ExportPage(
        tickets=(TICKET, deleted, bad),
        start=ExportCursor(1709500000),
        next_cursor=ExportCursor(1709574011),
        end_of_stream=False,
        fetched_at=1709574020.0,
        malformed=(MalformedTicket(None, "id missing", '{"subject":"x"}'),),
    )
    plan = plan_page(page, {})
    serializer = SingleObjectSerializer()
    encoded = encode_plan(plan, page, account="acme", serializer=serializer, now=1709574030.0)
    decoder = RecordDecoder()

    keys = [decoder.decode(k).value for k, _ in encoded.records]
    assert keys == [35436, 2, 2]
    values = [None if v is None else decoder.decode(v).value for _, v in encoded.records]
    assert values[2] is None  # the tombstone after the delete
    assert [v["op"] for v in values[:2] if v is not None] == ["create", "delete"]
    first = values[0]
    assert first is not None
    assert first["source"]["account"] == "acme"
    assert first["source"]["window_end"] == 1709574011
    assert ticket_from_avro(first["ticket"]) == TICKET
    assert encoded.published == Counter({"create": 1, "delete": 1})

    letters = [(k, decoder.decode(v).value) for k, v in encoded.dead_letters]
    assert [(None if k is None else decoder.decode(k).value) for k, _ in letters] == [3, None]
    assert letters[0][1]["reason"].startswith("subject: expected a string")
    assert json.loads(letters[0][1]["raw_json"]) == bad
    assert letters[0][1]["generated_timestamp"] == TICKET["generated_timestamp"]
    assert letters[1][1]["reason"] == "id missing"
    assert letters[1][1]["raw_json"] == '{"subject":"x"}'
    assert letters[1][1]["failed_at"] == datetime.fromtimestamp(1709574030, UTC)
    # the dead-lettered ticket's version is still stored, so a replay does not retry it
    assert 3 in plan.store_updates


def test_a_record_kafka_would_refuse_is_dead_lettered_with_its_json_cut_to_fit() -> None:
    huge = {**TICKET, "description": "ü" * 600_000}  # 1.2 MB of text
    page = ExportPage(
        tickets=(huge, {**TICKET, "id": 5}),
        start=ExportCursor(1709500000),
        next_cursor=ExportCursor(1709574011),
        end_of_stream=False,
        fetched_at=1709574020.0,
    )
    plan = plan_page(page, {})
    encoded = encode_plan(
        plan, page, account="acme", serializer=SingleObjectSerializer(), now=1709574030.0,
        max_record_bytes=1_000_000,
    )  # fmt: skip
    decoder = RecordDecoder()
    assert [decoder.decode(k).value for k, _ in encoded.records] == [5]  # the page goes on
    assert len(encoded.dead_letters) == 1
    letter_bytes = encoded.dead_letters[0][1]
    assert len(letter_bytes) < 1_000_000  # the dead letter itself fits
    letter = decoder.decode(letter_bytes).value
    assert "over the 1000000 Kafka accepts" in letter["reason"]
    assert letter["raw_json"].startswith('{"url":')
    assert "[truncated: " in letter["raw_json"]


@pytest.mark.parametrize("value", [0, 1, -1, 63, 64, -65, 35436, 2**31, 2**63 - 1, -(2**63)])
def test_fast_key_encoding_matches_fastavro(value: int) -> None:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", value)
    assert avro_long(value) == out.getvalue()
    assert RecordDecoder().decode(SingleObjectSerializer().key(value)).value == value


def test_encode_plan_through_the_registry_with_latest_version() -> None:
    client = registry()
    registering = RegistrySerializer(client, topic="t", dead_letter_topic="d")
    registering.value(CHANGE)
    registering.key(1)  # without auto-registration, the key subject must exist too
    latest = RegistrySerializer(
        client, topic="t", dead_letter_topic="d", auto_register=False, use_latest_version=True
    )
    page = ExportPage(
        tickets=(TICKET,),
        start=ExportCursor(1709500000),
        next_cursor=ExportCursor(1709574011),
        end_of_stream=False,
        fetched_at=1709574020.0,
    )
    encoded = encode_plan(plan_page(page, {}), page, account="acme", serializer=latest, now=0.0)
    ((key, value),) = encoded.records
    assert value is not None
    decoded = RecordDecoder(client).decode(value)
    assert decoded.framing == "registry"
    assert ticket_from_avro(decoded.value["ticket"]) == TICKET
    assert RecordDecoder(client).decode(key).value == TICKET["id"]


def test_an_unreachable_registry_is_a_retryable_error_not_a_dead_letter() -> None:
    from producer.broker import free_port  # noqa: PLC0415

    closed = SchemaRegistryClient({"url": f"http://127.0.0.1:{free_port()}", "max.retries": 0})
    serializer = RegistrySerializer(closed, topic="t", dead_letter_topic="t.dlq")
    with pytest.raises(RetryableSchemaRegistryError, match="unreachable"):
        serializer.key(5)
    with pytest.raises(RetryableSchemaRegistryError, match="unreachable"):
        serializer.value(CHANGE)

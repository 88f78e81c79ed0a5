"""The JSON -> Avro mapping: every value type of real data, losslessly, through bytes."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings

from producer.avro_mapping import (
    KNOWN_FIELDS,
    SourceInfo,
    change_record,
    dead_letter_record,
    ticket_from_avro,
    ticket_to_avro,
)
from producer.errors import EncodeError
from producer.model import ExportCursor, ExportMode, ExportPage
from producer.wire import load_schema
from tests.strategies import tickets
from tests.zendesk_spec import SECTION_7_FIELDS

GOLDEN = Path(__file__).parent / "golden"
TICKET: dict[str, Any] = json.loads((GOLDEN / "ticket.json").read_text(encoding="utf-8"))
SECTION_7 = SECTION_7_FIELDS
SOURCE = SourceInfo("acme", 1709500000, 1709574011, "time", datetime(2024, 3, 4, tzinfo=UTC))
CHANGE_SCHEMA = load_schema("ticket_change.v1").parsed


def through_avro(record: dict[str, Any]) -> Any:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, CHANGE_SCHEMA, record)
    out.seek(0)
    return fastavro.schemaless_reader(out, CHANGE_SCHEMA, None)


def with_(**changes: Any) -> dict[str, Any]:
    ticket = copy.deepcopy(TICKET)
    ticket.update(changes)
    return ticket


def round_trip(ticket: dict[str, Any]) -> dict[str, Any]:
    record = change_record("update", ticket, SOURCE)
    decoded = through_avro(record)
    assert decoded == record  # encode -> decode gives the mapped dict back
    return ticket_from_avro(decoded["ticket"])


def test_sample_ticket_has_every_section_7_field_and_the_schema_knows_them() -> None:
    assert list(TICKET) == SECTION_7
    assert set(SECTION_7) == KNOWN_FIELDS
    ticket_schema = json.loads(load_schema("ticket_change.v1").text)["fields"][1]["type"]
    names = {f["name"] for f in ticket_schema["fields"]}
    renamed = {"satisfaction_rating": "satisfaction_rating_json"}
    assert {renamed.get(n, n) for n in SECTION_7} <= names


def test_real_ticket_round_trips_losslessly() -> None:
    assert round_trip(TICKET) == TICKET


def test_typed_fields_are_typed() -> None:
    record = ticket_to_avro(TICKET)
    assert record["id"] == 35436
    assert record["status"] == "open"
    assert record["tags"] == ["printer", "fire", "vip"]
    assert record["updated_at"] == "2024-03-04T17:40:11Z"
    assert record["updated_at_ms"] == datetime(2024, 3, 4, 17, 40, 11, tzinfo=UTC)
    assert record["via"]["channel"] == "email"
    assert json.loads(record["via"]["source_json"]) == TICKET["via"]["source"]
    assert record["extra_json"] is None
    assert record["absent_fields"] == []


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (None, None),
        ("745", "745"),
        ("", ""),
        (True, True),
        (False, False),
        (0, 0),
        (-(2**63), -(2**63)),
        (12.5, 12.5),
        (1.0, 1.0),  # stays a double: 1.0 and 1 are different JSON
        (["a", "b"], ["a", "b"]),
        ([], []),
        (2**64, {"json": "18446744073709551616"}),  # beyond int64: JSON, not a lossy double
        ([1, "a"], {"json": '[1,"a"]'}),
        ({"nested": [None]}, {"json": '{"nested":[null]}'}),
        ("日本語 ✓", "日本語 ✓"),
    ],
)
def test_custom_field_values_keep_their_json_type(value: Any, stored: Any) -> None:
    ticket = with_(custom_fields=[{"id": 1, "value": value}], fields=[{"id": 1, "value": value}])
    record = ticket_to_avro(ticket)
    assert record["custom_fields"] == [{"id": 1, "value": stored}]
    back = round_trip(ticket)
    assert back["custom_fields"][0]["value"] == value
    assert type(back["custom_fields"][0]["value"]) is type(value)
    assert back == ticket


VIA_SOURCES = {
    "web": {"from": {}, "to": {}, "rel": None},
    "email": TICKET["via"]["source"],
    "api": {"from": {}, "to": {}, "rel": None},
    "voice": {"from": {"phone": "+15551234", "formatted_phone": "+1 (555) 1234"}, "rel": "inbound"},
    "native_messaging": {"from": {"name": "Ana", "channel": "whatsapp"}, "to": {}, "rel": None},
    "rule": {"from": {"id": 7, "title": "Auto-close", "deleted": False}, "rel": "trigger"},
    "sms": {"from": {"phone": "+44"}, "to": {"phone": "+33"}, "rel": None},
    "brand_new_channel": {"anything": [1, {"x": None}]},
}


@pytest.mark.parametrize(("channel", "source"), VIA_SOURCES.items())
def test_every_via_channel_round_trips(channel: str, source: Any) -> None:
    ticket = with_(via={"channel": channel, "source": source})
    assert ticket_to_avro(ticket)["via"]["channel"] == channel
    assert round_trip(ticket) == ticket


@pytest.mark.parametrize(
    "via",
    [
        None,
        {"channel": None, "source": None},
        {"channel": "web"},  # source absent
        {"source": {}},  # channel absent
        {"channel": "web", "source": {}, "ticket_id": 5},  # an unknown key in via
    ],
)
def test_odd_via_shapes_round_trip(via: Any) -> None:
    ticket = with_(via=via)
    assert round_trip(ticket) == ticket


@pytest.mark.parametrize(
    "rating",
    [
        None,
        {"score": "offered"},
        {"score": "unoffered"},
        {"id": 9, "score": "good", "comment": "Merci !", "reason": "Fast", "reason_id": 3},
        {"id": 9, "score": "bad", "comment": None},
    ],
)
def test_every_satisfaction_rating_form_round_trips(rating: Any) -> None:
    ticket = with_(satisfaction_rating=rating)
    record = ticket_to_avro(ticket)
    expected = None if rating is None else rating
    stored = record["satisfaction_rating_json"]
    assert (None if stored is None else json.loads(stored)) == expected
    assert round_trip(ticket) == ticket


def test_nulls_everywhere_allowed() -> None:
    ticket: dict[str, Any] = dict.fromkeys(SECTION_7)
    ticket.update(id=1, generated_timestamp=2)
    record = ticket_to_avro(ticket)
    assert record["created_at_ms"] is None
    assert record["absent_fields"] == []
    assert round_trip(ticket) == ticket


def test_minimal_ticket_lists_absent_fields_and_round_trips() -> None:
    ticket = {"id": 1, "generated_timestamp": 2, "status": "deleted"}
    record = ticket_to_avro(ticket)
    assert "subject" in record["absent_fields"]
    assert "status" not in record["absent_fields"]
    assert round_trip(ticket) == ticket


def test_unknown_fields_are_preserved() -> None:
    ticket = with_(encoded_id="ABC-123", ai_summary={"text": "é", "tokens": [1, 2]}, n=None)
    record = ticket_to_avro(ticket)
    assert json.loads(record["extra_json"]) == {
        "encoded_id": "ABC-123",
        "ai_summary": {"text": "é", "tokens": [1, 2]},
        "n": None,
    }
    assert round_trip(ticket) == ticket


def test_timestamps_keep_the_string_and_add_millis() -> None:
    ticket = with_(due_at="2024-03-05T12:00:00.123456+02:00")
    record = ticket_to_avro(ticket)
    assert record["due_at"] == "2024-03-05T12:00:00.123456+02:00"
    assert record["due_at_ms"] == datetime(2024, 3, 5, 10, 0, 0, 123000, tzinfo=UTC)
    assert round_trip(ticket) == ticket


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("subject", 42, "subject: expected a string, got int"),
        ("id", "35436", "id: expected an integer"),
        ("id", None, "id: expected an integer"),
        ("id", True, "id: expected an integer"),
        ("generated_timestamp", 1.5, "generated_timestamp: expected an integer"),
        ("requester_id", 5.0, "requester_id: expected an integer"),
        ("requester_id", 2**63, "requester_id: expected an integer within int64"),
        ("tags", "printer", "tags: expected a list of strings, got str"),
        ("tags", ["a", 1], "tags: expected a string, got int"),
        ("is_public", "true", "is_public: expected a boolean, got str"),
        ("is_public", 1, "is_public: expected a boolean, got int"),
        ("collaborator_ids", [1, "2"], "collaborator_ids: expected an integer"),
        ("custom_fields", {"id": 1}, "custom_fields: expected a list"),
        ("custom_fields", [{"id": "1", "value": 2}], "custom_fields: expected an integer"),
        ("custom_fields", [{"id": 1}], "custom_fields: expected {id, value} entries"),
        ("via", "email", "via: expected an object, got str"),
        ("via", {"channel": 4, "source": {}}, "via: expected a string, got int"),
        ("created_at", "yesterday", "created_at: expected an ISO-8601 timestamp"),
        ("due_at", "9999-12-31T23:59:59-01:00", "due_at: a timestamp outside years 1-9999"),
        ("due_at", "0001-01-01T00:00:00+01:00", "due_at: a timestamp outside years 1-9999"),
        ("updated_at", 1709574011, "updated_at: expected a string, got int"),
    ],
)
def test_wrong_types_raise_encode_error(field: str, value: Any, reason: str) -> None:
    with pytest.raises(EncodeError) as info:
        ticket_to_avro(with_(**{field: value}))
    assert info.value.reason.startswith(reason)
    expected_id = TICKET["id"] if field != "id" else None
    assert info.value.ticket_id == expected_id


def test_missing_id_is_an_encode_error() -> None:
    ticket = with_()
    del ticket["id"]
    with pytest.raises(EncodeError, match="id: expected an integer"):
        ticket_to_avro(ticket)


def test_change_record_envelope() -> None:
    record = change_record("delete", with_(status="deleted"), SOURCE)
    assert record["op"] == "delete"
    assert record["ticket"]["status"] == "deleted"
    assert record["source"] == {
        "account": "acme",
        "generated_timestamp": 1709574011,
        "window_start": 1709500000,
        "window_end": 1709574011,
        "export_mode": "time",
        "fetched_at": datetime(2024, 3, 4, tzinfo=UTC),
    }
    assert through_avro(record) == record


def test_source_info_of_a_page() -> None:
    page = ExportPage(
        tickets=(),
        start=ExportCursor(100, "abc", ExportMode.CURSOR),
        next_cursor=ExportCursor(160, "def", ExportMode.CURSOR),
        end_of_stream=False,
        fetched_at=1709574011.2346,
    )
    info = SourceInfo.of(page, "acme")
    assert (info.window_start, info.window_end, info.export_mode) == (100, 160, "cursor")
    assert info.fetched_at == datetime(2024, 3, 4, 17, 40, 11, 235000, tzinfo=UTC)


def test_dead_letter_record_round_trips_through_its_schema() -> None:
    schema = load_schema("dead_letter.v1").parsed
    record = dead_letter_record(
        ticket_id=None,
        reason="id: expected an integer",
        raw_json='{"id":"x"}',
        account="acme",
        generated_timestamp=None,
        failed_at=1709574011.5,
    )
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    out.seek(0)
    assert fastavro.schemaless_reader(out, schema, None) == record
    assert record["failed_at"] == datetime(2024, 3, 4, 17, 40, 11, 500000, tzinfo=UTC)


# --- Hypothesis: generated tickets survive mapping + Avro bytes + reconstruction ----


@settings(max_examples=150)
@given(tickets)
def test_generated_tickets_rebuild_exactly_from_avro_bytes(ticket: dict[str, Any]) -> None:
    assert round_trip(ticket) == ticket

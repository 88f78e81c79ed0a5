"""The encoding fast path: unchecked records through the compiled writer alone.

`change_record_unchecked` leaves the typed fields' checks to the compiled writer. It is
only right if, for every ticket, it gives the checked path's exact bytes or declines:
a ticket the checked mapping refuses must never come out as bytes here.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.avro_mapping import (
    KNOWN_FIELDS,
    SourceInfo,
    change_record,
    change_record_unchecked,
    ticket_to_avro,
)
from producer.codec import encode_plan
from producer.errors import EncodeError
from producer.model import ExportCursor, ExportPage
from producer.plan import plan_page
from producer.wire import RegistrySerializer, SingleObjectSerializer
from tests.strategies import json_any, tickets

GOLDEN = Path(__file__).parent / "golden"
TICKET: dict[str, Any] = json.loads((GOLDEN / "ticket.json").read_text(encoding="utf-8"))
SOURCE = SourceInfo("acme", 1709500000, 1709574011, "time", datetime(2024, 3, 4, tzinfo=UTC))
SERIALIZER = SingleObjectSerializer()

# Any known field may hold any JSON value; custom-field entries any shape.
odd_entry = st.dictionaries(st.sampled_from(["id", "value", "other"]), json_any, max_size=3)
wrongly_typed = st.builds(
    lambda ticket, changes: {**ticket, **changes},
    tickets,
    st.dictionaries(
        st.sampled_from(sorted(KNOWN_FIELDS)),
        json_any | st.lists(odd_entry, max_size=3) | st.just(2**63) | st.just(True),
        max_size=4,
    ),
)


def checked_bytes(
    ticket: dict[str, Any], op: str = "update", source: SourceInfo = SOURCE
) -> bytes | None:
    """The checked path's bytes, or None where it refuses the ticket (EncodeError)."""
    try:
        return SERIALIZER.value(change_record(op, ticket, source, tagged=True))
    except EncodeError:
        return None


def fast_bytes(ticket: dict[str, Any], op: str = "update") -> bytes | None:
    unchecked = change_record_unchecked(op, ticket, SOURCE)
    return None if unchecked is None else SERIALIZER.value_if_compiled(unchecked)


def test_the_golden_ticket_takes_the_fast_path_to_the_same_bytes() -> None:
    fast = fast_bytes(TICKET)
    assert fast is not None
    assert fast == checked_bytes(TICKET)


@settings(max_examples=400)
@given(tickets, st.sampled_from(["create", "update", "delete"]))
def test_any_ticket_gives_the_checked_bytes_or_declines(ticket: dict[str, Any], op: str) -> None:
    fast = fast_bytes(ticket, op)
    if fast is not None:
        assert fast == checked_bytes(ticket, op)


@settings(max_examples=600)
@given(wrongly_typed)
def test_a_ticket_the_checked_mapping_refuses_is_declined(ticket: dict[str, Any]) -> None:
    checked, fast = checked_bytes(ticket), fast_bytes(ticket)
    if checked is None:
        assert fast is None
    elif fast is not None:
        assert fast == checked


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requester_id", True),  # fastavro would write it as 1
        ("requester_id", 2**63),
        ("requester_id", 1.0),
        ("subject", 42),
        ("tags", ["a", 1]),
        ("is_public", 1),
        ("collaborator_ids", [1, "2"]),
        ("created_at", "yesterday"),
        ("due_at", "9999-12-31T23:59:59-01:00"),  # past year 9999 in UTC
        ("via", "email"),
        ("custom_fields", [{"id": 1}]),
        ("custom_fields", [{"id": 1, "value": 2, "x": 3}]),  # an extra key would be lost
        ("custom_fields", [{"id": True, "value": 2}]),
        ("id", "35436"),
        ("generated_timestamp", None),
    ],
)
def test_each_wrong_type_is_declined_and_the_checked_path_names_it(
    field: str, value: Any
) -> None:
    ticket = {**copy.deepcopy(TICKET), field: value}
    assert fast_bytes(ticket) is None
    with pytest.raises(EncodeError, match=field):
        ticket_to_avro(ticket)


@pytest.mark.parametrize(
    "value",
    [
        {"json": "x"},  # an object that looks like the JsonValue wrapper must be wrapped
        {"a": 1},
        [1, "a"],  # a mixed array: JsonValue
        2**64,  # beyond int64: JsonValue
    ],
)
def test_custom_values_that_need_json_text_give_the_checked_bytes(value: Any) -> None:
    ticket = {**copy.deepcopy(TICKET), "custom_fields": [{"id": 7, "value": value}]}
    assert fast_bytes(ticket) is None  # the checked mapping wraps them in JsonValue
    assert checked_bytes(ticket) is not None


def test_absent_fields_and_unknown_fields_match_the_checked_record() -> None:
    ticket = {
        k: v for k, v in copy.deepcopy(TICKET).items() if k not in ("url", "due_at", "via")
    }
    ticket["satisfaction_rating"] = None
    del ticket["satisfaction_rating"]
    ticket["brand_new_field"] = {"x": [1, 2]}
    ticket["extra_json"] = "a payload key named like a schema field"
    unchecked = change_record_unchecked("update", ticket, SOURCE)
    assert unchecked is not None
    checked = change_record("update", ticket, SOURCE)
    assert unchecked["ticket"]["absent_fields"] == checked["ticket"]["absent_fields"]
    assert unchecked["ticket"]["extra_json"] == checked["ticket"]["extra_json"]
    assert fast_bytes(ticket) == checked_bytes(ticket)


def test_registry_framing_uses_the_fast_path_only_once_the_frame_is_proven() -> None:
    client = SchemaRegistryClient.new_client({"url": "mock://fast-path"})
    serializer = RegistrySerializer(client, topic="t", dead_letter_topic="t.dlq")
    unchecked = change_record_unchecked("update", TICKET, SOURCE)
    assert unchecked is not None
    assert serializer.value_if_compiled(unchecked) is None  # nothing registered yet
    framed = serializer.value(change_record("update", TICKET, SOURCE, tagged=True))
    assert serializer.value_if_compiled(unchecked) == framed


def test_encode_plan_dead_letters_a_wrong_type_with_the_fields_name() -> None:
    bad = {**copy.deepcopy(TICKET), "id": 9, "requester_id": True}
    good = {**copy.deepcopy(TICKET), "id": 10}
    page = ExportPage(
        tickets=(bad, good),
        start=ExportCursor(0),
        next_cursor=ExportCursor(int(TICKET["generated_timestamp"]) + 1),
        end_of_stream=True,
        fetched_at=1709574011.0,
    )
    encoded = encode_plan(
        plan_page(page, {}), page, account="acme", serializer=SERIALIZER, now=1709574012.0
    )
    assert len(encoded.records) == 1
    assert encoded.records[0][1] == checked_bytes(good, "create", SourceInfo.of(page, "acme"))
    assert len(encoded.dead_letters) == 1
    assert b"requester_id: expected an integer" in encoded.dead_letters[0][1]

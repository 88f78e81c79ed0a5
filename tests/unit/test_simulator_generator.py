"""The generated tickets have the real shape (ZENDESK_API.md §7) and are deterministic."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from producer.clock import ScaledClock
from producer.simulator import Simulator, SimulatorConfig
from producer.simulator.generator import TicketFactory
from tests.zendesk_spec import SECTION_7_FIELDS

FIELD_ORDER = SECTION_7_FIELDS
NULLABLE = (
    "external_id",
    "type",
    "priority",
    "recipient",
    "assignee_id",
    "organization_id",
    "group_id",
    "forum_topic_id",
    "problem_id",
    "satisfaction_rating",
    "due_at",
)


@pytest.fixture(scope="module")
def tickets() -> list[dict[str, Any]]:
    sim = Simulator(SimulatorConfig(tickets=2000, seed=4), ScaledClock(start=1_790_000_000.0))
    return [sim.ticket(i) for i in range(1, 2001)]


def test_every_field_in_the_real_key_order(tickets: list[dict[str, Any]]) -> None:
    assert all(list(t) == FIELD_ORDER for t in tickets)


def test_nulls_where_real_data_has_them(tickets: list[dict[str, Any]]) -> None:
    for key in NULLABLE:
        assert any(t[key] is None for t in tickets), key
    assert all(t["id"] is not None and t["requester_id"] is not None for t in tickets)


def test_custom_field_values_of_every_type(tickets: list[dict[str, Any]]) -> None:
    kinds = Counter(type(f["value"]).__name__ for t in tickets for f in t["custom_fields"])
    assert {"NoneType", "str", "int", "float", "bool", "list"} <= set(kinds)
    lists = [
        f["value"] for t in tickets for f in t["custom_fields"] if isinstance(f["value"], list)
    ]
    assert all(isinstance(v, str) for value in lists for v in value)
    assert all(t["fields"] == t["custom_fields"] for t in tickets)


def test_via_sources_of_several_channels(tickets: list[dict[str, Any]]) -> None:
    by_channel = {t["via"]["channel"]: t["via"]["source"] for t in tickets}
    assert {"web", "email", "voice", "whatsapp", "native_messaging", "api"} <= set(by_channel)
    assert "@" in by_channel["email"]["from"]["address"]
    assert by_channel["voice"]["from"]["phone"].startswith("+")
    assert by_channel["voice"]["rel"] == "inbound"
    assert "whatsapp_id" in by_channel["whatsapp"]["from"]


def test_every_form_of_satisfaction_rating(tickets: list[dict[str, Any]]) -> None:
    forms = {
        None if r is None else r["score"] if len(r) == 1 else f"full-{r['score']}"
        for r in (t["satisfaction_rating"] for t in tickets)
    }
    assert forms == {None, "offered", "unoffered", "full-good", "full-bad"}


def test_long_unicode_descriptions(tickets: list[dict[str, Any]]) -> None:
    text = "".join(t["description"] for t in tickets)
    assert max(len(t["description"]) for t in tickets) > 1500
    assert any("\u0600" <= ch <= "\u06ff" for ch in text)  # Arabic (RTL)
    assert any("\u0590" <= ch <= "\u05ff" for ch in text)  # Hebrew (RTL)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)  # CJK
    assert any(ord(ch) > 0xFFFF for ch in text)  # emoji outside the BMP


def test_history_is_ordered_consistently_and_has_deletions(tickets: list[dict[str, Any]]) -> None:
    assert all(t["created_at"] <= t["updated_at"] for t in tickets)
    statuses = Counter(t["status"] for t in tickets)
    assert statuses["deleted"] > 0
    assert {"new", "open", "pending", "hold", "solved", "closed"} <= set(statuses)
    stamps = Counter(t["generated_timestamp"] for t in tickets)
    assert max(stamps.values()) > 1, "some seconds are shared, so pages cut inside them"


def test_edit_changes_content_and_both_timestamps() -> None:
    factory = TicketFactory("acme", random.Random(1))
    ticket = factory.ticket(1, 100, 100, 100)
    for n in range(50):
        edited = factory.edit(ticket, 1000 + n)
        assert edited["generated_timestamp"] == 1000 + n
        assert edited["updated_at"] != ticket["updated_at"]
        rest = {"generated_timestamp", "updated_at"}
        assert {k for k in ticket if ticket[k] != edited[k]} - rest
        assert list(edited) == list(ticket)

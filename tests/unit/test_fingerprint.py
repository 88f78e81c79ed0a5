"""The content fingerprint: stable over key order, blind only to volatile fields."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.fingerprint import canonical_json, fingerprint

BASE: dict[str, Any] = {
    "id": 7,
    "subject": "Printer on fire",
    "status": "open",
    "updated_at": "2024-03-01T10:00:00Z",
    "tags": ["a", "b"],
    "custom_fields": [{"id": 1, "value": None}, {"id": 2, "value": ["x", "y"]}],
    "via": {"channel": "email", "source": {"from": {"address": "a@b.c"}, "to": {}, "rel": None}},
    "generated_timestamp": 1700000000,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_is_a_signed_int64() -> None:
    value = fingerprint(BASE)
    assert -(2**63) <= value < 2**63


def test_ignores_key_order_at_every_depth() -> None:
    reordered = json.loads(json.dumps(BASE, sort_keys=True))
    reordered["via"] = {"source": BASE["via"]["source"], "channel": "email"}
    assert list(reordered) != list(BASE)
    assert fingerprint(reordered) == fingerprint(BASE)


@pytest.mark.parametrize("volatile", ["generated_timestamp", "updated_stamp"])
def test_ignores_volatile_fields(volatile: str) -> None:
    moved = {**BASE, volatile: 1800000000}
    assert fingerprint(moved) == fingerprint(BASE)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("updated_at", "2024-03-01T10:00:01Z"),  # updated_at is content
        ("subject", "Printer on fire!"),
        ("status", "deleted"),
        ("tags", ["b", "a"]),  # list order is content
        ("custom_fields", [{"id": 1, "value": False}, {"id": 2, "value": ["x", "y"]}]),
        ("custom_fields", [{"id": 1, "value": 0}, {"id": 2, "value": ["x", "y"]}]),
        ("custom_fields", [{"id": 1, "value": ""}, {"id": 2, "value": ["x", "y"]}]),
        ("brand_id", None),  # a new key, even null, is new content
    ],
)
def test_sees_content_changes(key: str, value: Any) -> None:
    assert fingerprint({**BASE, key: value}) != fingerprint(BASE)


def test_canonical_json_is_compact_sorted_utf8() -> None:
    text = canonical_json({"b": "é", "a": [1, 2.5], "generated_timestamp": 5})
    assert text == '{"a":[1,2.5],"b":"é"}'.encode()


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8))
def test_stable_over_json_round_trip_and_copy(ticket: dict[str, Any]) -> None:
    copy = json.loads(json.dumps(ticket))
    assert fingerprint(copy) == fingerprint(ticket)
    assert fingerprint(dict(reversed(list(ticket.items())))) == fingerprint(ticket)


def test_content_orjson_cannot_encode_still_gets_a_distinct_fingerprint() -> None:
    # integers beyond 64 bits take the standard encoder; content decides the path, so
    # equal content always hashes alike, and nearby big values stay apart
    big = {**BASE, "custom_fields": [{"id": 1, "value": 2**70}]}
    bigger = {**BASE, "custom_fields": [{"id": 1, "value": 2**70 + 1}]}
    assert (
        canonical_json(big)
        == json.dumps(
            {k: v for k, v in big.items() if k != "generated_timestamp"},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
    )
    assert fingerprint(big) != fingerprint(bigger)
    assert fingerprint(big) == fingerprint(dict(reversed(list(big.items()))))

"""Envelope validation and per-ticket reporting of the export parser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.errors import MalformedResponseError
from producer.model import ExportCursor
from producer.zendesk.parse import load_json, parse_cursor_page, parse_time_page

START = ExportCursor(1000)


def ticket(tid: int, ts: int, **extra: Any) -> dict[str, Any]:
    return {"id": tid, "generated_timestamp": ts, "status": "open", **extra}


def envelope(items: list[Any], /, **overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "tickets": items,
        "count": len(items),
        "end_time": max((t["generated_timestamp"] for t in items), default=None),
        "end_of_stream": False,
        "next_page": "https://x.zendesk.com/api/v2/incremental/tickets?start_time=1",
    }
    body.update(overrides)
    return json.dumps(body).encode()


def test_valid_page_moves_cursor_to_end_time_and_keeps_duplicates_and_unknown_fields() -> None:
    tickets = [ticket(1, 1000), ticket(2, 1005, brand_new_field={"x": 1}), ticket(1, 1005)]
    page = parse_time_page(envelope(tickets), START, fetched_at=5.0)
    assert page.ticket_ids == [1, 2, 1]
    assert page.tickets[1]["brand_new_field"] == {"x": 1}
    assert page.next_cursor == ExportCursor(1005)
    assert page.start == START
    assert page.end_of_stream is False
    assert page.fetched_at == 5.0
    assert page.malformed == ()


def test_last_page_ends_on_end_of_stream_even_with_next_page_url() -> None:
    page = parse_time_page(envelope([ticket(1, 1001)], end_of_stream=True), START, 0.0)
    assert page.end_of_stream is True
    assert page.next_cursor == ExportCursor(1001)


@pytest.mark.parametrize("end_time", [None, 1000])
def test_empty_page_keeps_the_cursor(end_time: int | None) -> None:
    body = json.dumps(
        {"tickets": [], "count": 0, "end_time": end_time, "next_page": None, "end_of_stream": True}
    ).encode()
    page = parse_time_page(body, START, 0.0)
    assert page.tickets == ()
    assert page.next_cursor == START
    assert page.end_of_stream is True


@pytest.mark.parametrize("eos", ["null", "false"])
def test_an_empty_page_always_ends_the_stream(eos: str) -> None:
    """Nothing came back, whatever end_of_stream says: paging on would only spin."""
    body = f'{{"tickets": [], "count": 0, "end_time": null, "end_of_stream": {eos}}}'.encode()
    assert parse_time_page(body, START, 0.0).end_of_stream is True


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"tickets": [', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (envelope([ticket(1, 1000)], tickets=None), "tickets"),
        (envelope([ticket(1, 1000)], count=None), "count"),
        (envelope([ticket(1, 1000)], count="1"), "count"),
        (envelope([ticket(1, 1000)], count=True), "count"),
        (envelope([ticket(1, 1000)], count=2), "does not match"),
        (envelope([ticket(1, 1000)], end_time=None), "end_time"),
        (envelope([ticket(1, 1000)], end_time="1000"), "end_time"),
        (envelope([ticket(1, 1000)], end_time=1000.5), "end_time"),
        (envelope([ticket(1, 1000)], end_time=999), "before start_time"),
        (envelope([ticket(1, 1000)], end_of_stream="false"), "end_of_stream"),
        (envelope([ticket(1, 1000)], end_of_stream=None), "end_of_stream"),
    ],
)
def test_bad_envelope_is_a_malformed_response(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedResponseError, match=reason):
        parse_time_page(body, START, 0.0)


def test_a_bad_ticket_is_reported_alone_and_the_page_still_moves() -> None:
    items: list[Any] = [
        ticket(1, 1000),
        "not an object",
        {"id": "7", "generated_timestamp": 1001},
        {"id": 8, "generated_timestamp": "1001"},
        {"id": True, "generated_timestamp": 1001},
        ticket(2, 1002),
    ]
    body = json.dumps(
        {"tickets": items, "count": 6, "end_time": 1002, "end_of_stream": False}
    ).encode()
    page = parse_time_page(body, START, 0.0)
    assert page.ticket_ids == [1, 2]
    assert page.next_cursor == ExportCursor(1002)
    reasons = [(m.ticket_id, m.reason) for m in page.malformed]
    assert reasons == [
        (None, "ticket is not a JSON object"),
        (None, "ticket has no 64-bit integer id"),
        (8, "ticket has no 64-bit integer generated_timestamp"),
        (None, "ticket has no 64-bit integer id"),
    ]
    assert json.loads(page.malformed[2].raw_json) == {"id": 8, "generated_timestamp": "1001"}


def test_sideloads_are_kept_apart_from_the_envelope() -> None:
    body = envelope([ticket(1, 1000)], users=[{"id": 5}], groups=[{"id": 6}])
    page = parse_time_page(body, START, 0.0)
    assert dict(page.sideloads) == {"users": [{"id": 5}], "groups": [{"id": 6}]}


def test_cursor_page() -> None:
    body = json.dumps(
        {
            "tickets": [ticket(3, 1000), ticket(4, 1001), {"id": 9}],
            "after_cursor": "abc",
            "after_url": "u",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": True,
        }
    ).encode()
    env = parse_cursor_page(body)
    assert [t["id"] for t in env.tickets] == [3, 4]
    assert env.after_cursor == "abc"
    assert env.end_of_stream is True
    assert env.last_timestamp == 1001
    assert [m.ticket_id for m in env.malformed] == [9]


@pytest.mark.parametrize(
    "body",
    [
        b'{"after_cursor": "a", "end_of_stream": false}',
        b'{"tickets": [], "after_cursor": 5, "end_of_stream": false}',
        b'{"tickets": [{"id": 1, "generated_timestamp": 1}], "after_cursor": "a"}',
    ],
)
def test_bad_cursor_envelope(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        parse_cursor_page(body)


def test_nan_and_infinity_are_not_json() -> None:
    from producer.errors import MalformedResponseError  # noqa: PLC0415
    from producer.zendesk.parse import _load  # noqa: PLC0415

    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        _load(b'{"tickets": [{"id": 1, "x": NaN}]}')
    # integers beyond 64 bits stay readable (the fast parser refuses them)
    data, _ = _load(b'{"n": 123456789012345678901234567890}')
    assert data["n"] == 123456789012345678901234567890


def test_a_page_nested_too_deeply_to_read_is_a_malformed_response() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000  # orjson refuses it; json runs out of stack
    body = b'{"tickets": [{"id": 1, "generated_timestamp": 1, "x": ' + deep + b"}]}"
    with pytest.raises(MalformedResponseError, match="nests too deeply"):
        parse_time_page(body, ExportCursor(0), 0.0)


def test_a_ticket_with_a_number_beyond_double_range_is_dead_lettered_alone() -> None:
    body = (
        b'{"tickets": [{"id": 1, "generated_timestamp": 1000, "x": {"y": [1e400]}},'
        b' {"id": 2, "generated_timestamp": 1000, "x": 1.5}],'
        b' "count": 2, "end_time": 1001, "end_of_stream": true}'
    )
    page = parse_time_page(body, START, fetched_at=5.0)
    assert page.ticket_ids == [2]
    assert [(b.ticket_id, b.reason) for b in page.malformed] == [
        (1, "ticket holds a number beyond the range of a double (such as 1e400)")
    ]
    assert page.next_cursor == ExportCursor(1001)  # the page still moves


def test_ids_and_versions_beyond_64_bits_are_reported_not_passed_on() -> None:
    from producer.zendesk.parse import split_tickets  # noqa: PLC0415

    good, bad = split_tickets([
        {"id": 2**63, "generated_timestamp": 1},
        {"id": 7, "generated_timestamp": 2**64},
        {"id": 2**63 - 1, "generated_timestamp": 1},
    ])  # fmt: skip
    assert [t["id"] for t in good] == [2**63 - 1]
    assert [(b.ticket_id, b.reason) for b in bad] == [
        (None, "ticket has no 64-bit integer id"),
        (7, "ticket has no 64-bit integer generated_timestamp"),
    ]


def test_an_empty_window_that_is_not_the_end_moves_the_cursor_on() -> None:
    from producer.model import ExportCursor as Cursor  # noqa: PLC0415
    from producer.zendesk.parse import parse_time_page  # noqa: PLC0415

    start = Cursor(1000)
    body = b'{"tickets": [], "count": 0, "end_time": 1500, "end_of_stream": false}'
    page = parse_time_page(body, start, fetched_at=0.0)
    assert (page.next_cursor, page.end_of_stream) == (Cursor(1500), False)
    # empty and the end, or empty with nulls: the cursor stays
    for body in (
        b'{"tickets": [], "count": 0, "end_time": 1500, "end_of_stream": true}',
        b'{"tickets": [], "count": 0, "end_time": null, "end_of_stream": null}',
        b'{"tickets": [], "count": 0, "end_time": 900, "end_of_stream": false}',
    ):
        page = parse_time_page(body, start, fetched_at=0.0)
        assert (page.next_cursor, page.end_of_stream) == (start, True)


# --- the fast reader reads exactly what the standard library reads ------------------


def typed(value: Any) -> Any:
    """`value` with every type spelled out, so 1 != 1.0 != True and -0.0 != 0.0."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def standard(body: bytes) -> Any:
    return json.loads(body, parse_constant=lambda name: _raise(ValueError(name)))


def _raise(exc: Exception) -> Any:
    raise exc


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400)
@given(json_values, st.booleans())
def test_load_json_reads_any_json_as_the_standard_library_does(
    value: Any, ensure_ascii: bool
) -> None:
    body = json.dumps(value, ensure_ascii=ensure_ascii).encode()
    assert typed(load_json(body)) == typed(standard(body))


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",  # 2**64: orjson would say 1.8446744073709552e+19
        "-9223372036854775809",  # below int64: orjson would give a float
        '{"id": 123456789012345678901234567890}',
        '{"phone": "1234567890123456789", "n": 1}',  # a digit run in a string: still exact
        "1e400",  # orjson refuses; the standard library reads inf
        '"\\ud800"',  # a lone surrogate: orjson refuses, the standard library keeps it
        '{"a": 1, "a": 2}',  # duplicate keys: the last wins in both
        "-0",
        "-0.0",
        "0.1",
        "1E+2",
    ],
)
def test_load_json_edge_cases(text: str) -> None:
    body = text.encode()
    assert typed(load_json(body)) == typed(standard(body))


@pytest.mark.parametrize(
    "body",
    [b"", b"NaN", b"[Infinity]", b"[1,]", b"01", b"1.", b"{'a': 1}", b"\xff\xfe", b"[1] x"],
)
def test_load_json_refuses_what_is_not_json(body: bytes) -> None:
    with pytest.raises(ValueError):
        load_json(body)


@given(st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_load_json_accepts_and_refuses_exactly_as_the_standard_library(body: bytes) -> None:
    try:
        expected = typed(standard(body))
    except (ValueError, UnicodeDecodeError, RecursionError):
        with pytest.raises((ValueError, UnicodeDecodeError, RecursionError)):
            load_json(body)
    else:
        assert typed(load_json(body)) == expected

"""The pure paging rules: properties over random layouts of tickets in seconds."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.simulator.export import (
    QueryError,
    cursor_items,
    decode_cursor,
    encode_cursor,
    parse_query,
    time_page,
)
from producer.simulator.index import TimestampIndex

Layout = list[int]  # the second of each ticket, ticket ids 1..n


def _build(layout: Layout) -> tuple[TimestampIndex, dict[int, dict[str, Any]]]:
    index = TimestampIndex(random.Random(0))
    tickets = {}
    for tid, second in enumerate(layout, start=1):
        index.add(tid, second)
        tickets[tid] = {"id": tid, "generated_timestamp": second}
    return index, tickets


layouts = st.lists(st.integers(min_value=0, max_value=30), min_size=0, max_size=120)


@settings(max_examples=200, deadline=None)
@given(layout=layouts, per_page=st.integers(min_value=1, max_value=15))
def test_draining_time_pages_sees_every_ticket_and_never_moves_back(
    layout: Layout, per_page: int
) -> None:
    index, tickets = _build(layout)
    seen: set[int] = set()
    start, pages = 0, 0
    while True:
        page = time_page(
            index,
            tickets,
            lambda _: True,
            start_time=start,
            per_page=per_page,
            cutoff=10**9,
            legacy_loop=False,
        )
        pages += 1
        assert pages <= len(layout) + 2, "paging must terminate"
        stamps = [t["generated_timestamp"] for t in page.tickets]
        assert stamps == sorted(stamps)
        assert all(s >= start for s in stamps)
        seen |= {t["id"] for t in page.tickets}
        if page.end_of_stream:
            break
        assert page.end_time is not None
        assert page.end_time >= start
        if len(set(stamps)) == 1:  # one second, expanded: all of it, end_time past it
            assert page.end_time == stamps[0] + 1
            assert len(stamps) == layout.count(stamps[0])
        else:
            assert len(stamps) == per_page
            assert page.end_time == stamps[-1]
        start = page.end_time
    assert seen == set(tickets)


@settings(max_examples=200, deadline=None)
@given(layout=layouts, per_page=st.integers(min_value=1, max_value=15))
def test_cursor_pages_concatenate_to_the_sorted_stream(layout: Layout, per_page: int) -> None:
    index, tickets = _build(layout)
    out: list[tuple[int, int]] = []
    after = None
    while True:
        items, eos = cursor_items(
            index,
            tickets,
            lambda _: True,
            after=after,
            start_time=0,
            per_page=per_page,
            cutoff=10**9,
        )
        out += [(t["generated_timestamp"], t["id"]) for t in items]
        if eos:
            assert len(items) <= per_page
            break
        assert len(items) == per_page
        after = decode_cursor(encode_cursor(*out[-1]))
    assert out == sorted((s, i) for i, s in enumerate(layout, start=1))


def test_end_of_stream_is_judged_before_expansion() -> None:
    index, tickets = _build([5] * 12)
    page = time_page(
        index, tickets, lambda _: True, start_time=0, per_page=10, cutoff=100, legacy_loop=False
    )
    assert (len(page.tickets), page.end_time, page.end_of_stream) == (12, 6, False)
    legacy = time_page(
        index, tickets, lambda _: True, start_time=5, per_page=10, cutoff=100, legacy_loop=True
    )
    assert (len(legacy.tickets), legacy.end_time, legacy.end_of_stream) == (10, 5, False)


def test_cutoff_hides_recent_seconds() -> None:
    index, tickets = _build([1, 2, 3, 4])
    page = time_page(
        index, tickets, lambda _: True, start_time=0, per_page=10, cutoff=2, legacy_loop=False
    )
    assert [t["id"] for t in page.tickets] == [1, 2]


def test_cursor_round_trip_and_observed_format() -> None:
    assert encode_cursor(1700000000, 42) == "MTcwMDAwMDAwMC4wfHw0Mnw="
    assert decode_cursor("MTcwMDAwMDAwMC4wfHw0Mnw=") == (1700000000, 42)
    assert decode_cursor("MTcwMDAwMDAwMC4wfHw0Mnw") == (1700000000, 42)  # padding optional
    with pytest.raises(QueryError):
        decode_cursor("%%%")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ((), 400),
        ((("start_time", "x"),), 400),
        ((("start_time", "-1"),), 400),
        ((("start_time", "0"), ("support_type_scope", "bots")), 400),
    ],
)
def test_bad_queries(params: tuple[tuple[str, str], ...], status: int) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(params, per_page_max=1000, cursor_mode=False)
    assert info.value.status == status


def test_query_defaults() -> None:
    q = parse_query((("start_time", "5"), ("per_page", "0")), per_page_max=1000, cursor_mode=False)
    assert (q.start_time, q.per_page, q.scope, q.exclude_deleted, q.include) == (
        5,
        1,
        "agent",
        False,
        (),
    )

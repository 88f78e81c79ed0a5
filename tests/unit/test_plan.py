"""The planner: decision tables for every case, then Hypothesis properties."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.errors import CdcError, CursorStuckError
from producer.fingerprint import fingerprint
from producer.model import ExportCursor, ExportPage, MalformedTicket, RawTicket, Version
from producer.plan import CursorRegressionError, Op, Plan, plan_page


def ticket(
    tid: int, ts: int, subject: str = "s", status: str = "open", **extra: Any
) -> dict[str, Any]:
    return {"id": tid, "subject": subject, "status": status, "generated_timestamp": ts, **extra}


def page(
    tickets: Sequence[RawTicket],
    start: int = 100,
    end: int | None = None,
    *,
    eos: bool = False,
    malformed: tuple[MalformedTicket, ...] = (),
) -> ExportPage:
    if end is None:
        # like the API: end_time = the last ticket's second, or second + 1 if the page
        # holds nothing but its start second
        end = max([start + 1, *(int(t["generated_timestamp"]) for t in tickets)])
    return ExportPage(
        tickets=tuple(tickets),
        start=ExportCursor(start),
        next_cursor=ExportCursor(end),
        end_of_stream=eos,
        fetched_at=0.0,
        malformed=malformed,
    )


def version_of(t: RawTicket) -> Version:
    return Version(int(t["generated_timestamp"]), fingerprint(t))


def apply(known: dict[int, Version], plan: Plan) -> None:
    known.update(plan.store_updates)


STORED = ticket(1, 200, "old")
STORED_DELETED = ticket(1, 200, "old", status="deleted")


# (case, stored ticket or None, incoming ticket, expected op or None, expected skip or None)
CASES: list[tuple[str, RawTicket | None, RawTicket, Op | None, str | None]] = [
    ("new ticket", None, ticket(1, 200), Op.CREATE, None),
    ("new ticket already deleted", None, ticket(1, 200, status="deleted"), Op.DELETE, None),
    ("content change, newer", STORED, ticket(1, 201, "new"), Op.UPDATE, None),
    ("content change, same second", STORED, ticket(1, 200, "new"), Op.UPDATE, None),
    ("content change, older", STORED, ticket(1, 199, "new"), None, "stale"),
    ("same content, older", STORED, ticket(1, 199, "old"), None, "stale"),
    ("boundary repeat / replay", STORED, ticket(1, 200, "old"), None, "duplicate"),
    ("system-only update", STORED, ticket(1, 260, "old"), None, "unchanged"),
    ("deletion", STORED, ticket(1, 300, "old", status="deleted"), Op.DELETE, None),
    (
        "deleted again, same content",
        STORED_DELETED,
        ticket(1, 200, "old", status="deleted"),
        None,
        "duplicate",
    ),
    (
        "deleted, system update",
        STORED_DELETED,
        ticket(1, 300, "old", status="deleted"),
        None,
        "unchanged",
    ),
    (
        "deleted then scrubbed",
        STORED_DELETED,
        ticket(1, 300, "", status="deleted"),
        Op.DELETE,
        None,
    ),
    ("restored", STORED_DELETED, ticket(1, 300, "old", status="open"), Op.UPDATE, None),
    ("updated_at alone moved", STORED, ticket(1, 201, "old", updated_at="x"), Op.UPDATE, None),
]


@pytest.mark.parametrize(
    ("case", "stored", "incoming", "op", "skip"), CASES, ids=[c[0] for c in CASES]
)
def test_decision_table(
    case: str, stored: RawTicket | None, incoming: RawTicket, op: Op | None, skip: str | None
) -> None:
    known = {} if stored is None else {1: version_of(stored)}
    plan = plan_page(page([incoming], start=150), known)
    assert [c.op for c in plan.changes] == ([op] if op else [])
    assert dict(plan.skipped) == ({skip: 1} if skip else {})
    if op is not None:
        assert plan.changes[0].ticket is incoming
        assert plan.changes[0].version == version_of(incoming)
        assert plan.changes[0].tombstone == (op is Op.DELETE)
        assert plan.store_updates == {1: version_of(incoming)}
    elif skip == "unchanged":
        # the store still advances to the newer generated_timestamp
        assert plan.store_updates == {1: version_of(incoming)}
    else:
        assert plan.store_updates == {}


def test_tombstones_can_be_disabled() -> None:
    plan = plan_page(page([ticket(1, 200, status="deleted")]), {}, tombstones=False)
    assert [(c.op, c.tombstone) for c in plan.changes] == [(Op.DELETE, False)]


def test_repeats_in_a_page_collapse_to_the_latest() -> None:
    first, latest, other = ticket(1, 200, "a"), ticket(1, 202, "c"), ticket(2, 201)
    plan = plan_page(page([first, other, latest, ticket(1, 201, "b")]), {})
    assert [c.ticket for c in plan.changes] == [other, latest]
    assert plan.skipped == {"duplicate": 2}
    assert plan.store_updates == {1: version_of(latest), 2: version_of(other)}


def test_same_second_repeat_prefers_updated_stamp_then_later_occurrence() -> None:
    a = ticket(1, 200, "a", updated_stamp="2024-01-01T00:00:02Z")
    b = ticket(1, 200, "b", updated_stamp="2024-01-01T00:00:01Z")
    assert [c.ticket for c in plan_page(page([a, b]), {}).changes] == [a]
    c, d = ticket(1, 200, "c"), ticket(1, 200, "d")
    assert [c_.ticket for c_ in plan_page(page([c, d]), {}).changes] == [d]


def test_changes_keep_export_order_and_malformed_pass_through() -> None:
    bad = MalformedTicket(None, "id missing", "{}")
    tickets = [ticket(3, 200), ticket(1, 200), ticket(2, 201)]
    plan = plan_page(page(tickets, malformed=(bad,)), {})
    assert [c.ticket["id"] for c in plan.changes] == [3, 1, 2]
    assert plan.malformed == (bad,)
    assert plan.next_cursor == ExportCursor(201)


def test_cursor_moving_back_is_an_error() -> None:
    with pytest.raises(CursorRegressionError) as info:
        plan_page(page([ticket(1, 90)], start=100, end=90), {})
    assert isinstance(info.value, CdcError)
    assert (info.value.start_time, info.value.next_start_time) == (100, 90)


def test_cursor_standing_still_mid_stream_is_stuck() -> None:
    full_second = [ticket(i, 100) for i in range(5)]
    with pytest.raises(CursorStuckError):
        plan_page(page(full_second, start=100, end=100), {})


def test_cursor_standing_still_at_end_of_stream_is_fine() -> None:
    plan = plan_page(page([], start=100, end=100, eos=True), {})
    assert plan.changes == ()
    assert plan.next_cursor == ExportCursor(100)


def test_cursor_mode_may_keep_start_time_while_after_cursor_moves() -> None:
    p = ExportPage(
        tickets=(ticket(1, 100),),
        start=ExportCursor(100, "c1"),
        next_cursor=ExportCursor(100, "c2"),
        end_of_stream=False,
        fetched_at=0.0,
    )
    assert [c.op for c in plan_page(p, {}).changes] == [Op.CREATE]


# --- properties -------------------------------------------------------------------

tickets_st = st.builds(
    ticket,
    tid=st.integers(1, 6),
    ts=st.integers(100, 110),
    subject=st.sampled_from(["a", "b", "c"]),
    status=st.sampled_from(["open", "solved", "deleted"]),
)
pages_st = st.lists(tickets_st, max_size=12)
known_st = st.dictionaries(st.integers(1, 6), st.builds(version_of, tickets_st), max_size=6)


def pages_in_order(batches: list[list[dict[str, Any]]]) -> list[ExportPage]:
    """Consecutive export pages: each starts where the previous one ended.

    As in the real export, a ticket has one content per version: the first content
    drawn for an (id, generated_timestamp) pair is the one every page shows.
    """
    pages, start = [], 100
    snapshots: dict[tuple[int, int], dict[str, Any]] = {}
    for batch in batches:
        ordered = sorted(batch, key=lambda t: int(t["generated_timestamp"]))
        clipped = [
            snapshots.setdefault(
                (t["id"], max(t["generated_timestamp"], start)),
                {**t, "generated_timestamp": max(t["generated_timestamp"], start)},
            )
            for t in ordered
        ]
        p = page(clipped, start=start)
        pages.append(p)
        start = p.next_cursor.start_time
    return pages


@given(pages_st, known_st)
def test_replaying_a_page_after_applying_its_plan_publishes_nothing(
    tickets: list[dict[str, Any]], known: dict[int, Version]
) -> None:
    p = page(tickets)
    apply(known, plan_page(p, known))
    replay = plan_page(p, known)
    assert replay.changes == ()
    assert replay.store_updates == {}


@given(pages_st, known_st)
def test_at_most_one_change_per_ticket_per_page(
    tickets: list[dict[str, Any]], known: dict[int, Version]
) -> None:
    plan = plan_page(page(tickets), known)
    ids = [c.ticket["id"] for c in plan.changes]
    assert len(ids) == len(set(ids))
    # every ticket on the page is either published or counted as skipped
    assert len(plan.changes) + sum(plan.skipped.values()) == len(tickets)


@given(pages_st, known_st)
def test_publish_iff_fingerprint_differs_and_version_not_older(
    tickets: list[dict[str, Any]], known: dict[int, Version]
) -> None:
    plan = plan_page(page(tickets), known)
    published = {c.ticket["id"]: c for c in plan.changes}
    latest: dict[int, dict[str, Any]] = {}
    for t in tickets:  # the collapse rule, restated independently
        prev = latest.get(t["id"])
        if prev is None or t["generated_timestamp"] >= prev["generated_timestamp"]:
            latest[t["id"]] = t
    for tid, t in latest.items():
        v, stored = version_of(t), known.get(tid)
        should = stored is None or (
            v.fingerprint != stored.fingerprint
            and v.generated_timestamp >= stored.generated_timestamp
        )
        assert (tid in published) == should
        if should:
            assert published[tid].ticket == t


@given(st.integers(0, 10**10), st.integers(0, 10**10), st.booleans())
def test_the_cursor_never_moves_back(start: int, end: int, eos: bool) -> None:
    p = page([], start=start, end=end, eos=eos)
    try:
        plan = plan_page(p, {})
    except (CursorRegressionError, CursorStuckError):
        assert end < start or (end == start and not eos)
    else:
        assert plan.next_cursor.start_time >= start


@settings(max_examples=60)
@given(st.lists(pages_st, min_size=1, max_size=5), st.data())
def test_replaying_any_earlier_page_after_the_sequence_publishes_nothing(
    batches: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    known: dict[int, Version] = {}
    pages = pages_in_order(batches)
    for p in pages:
        apply(known, plan_page(p, known))
    replayed = data.draw(st.sampled_from(pages))
    assert plan_page(replayed, known).changes == ()


def test_apply_known_mapping_is_only_read() -> None:
    known: Mapping[int, Version] = {1: version_of(STORED)}
    snapshot = dict(known)
    plan_page(page([ticket(1, 300, "new")]), known)
    assert known == snapshot


def test_the_pure_core_imports_no_io_library() -> None:
    code = (
        "import sys, producer.plan, producer.fingerprint, producer.avro_mapping\n"
        "print(sorted({'httpx', 'confluent_kafka', 'sqlite3', 'fastavro'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

"""Pins the time-based export to the observed behaviour of ZENDESK_API.md §1–§2, over HTTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from producer.simulator import Observed
from tests.integration.conftest import RunningSimulator, SimulatorFactory

PATH = "/api/v2/incremental/tickets.json"


def _quiet(factory: SimulatorFactory, **overrides: Any) -> RunningSimulator:
    """An empty account without rate limiting, for tests that place tickets themselves."""
    opts: dict[str, Any] = {"tickets": 0, "rate_limit_enabled": False, **overrides}
    return factory(**opts)


def _get(client: httpx.Client, **params: Any) -> dict[str, Any]:
    resp = client.get(PATH, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _place(run: RunningSimulator, layout: dict[int, int]) -> dict[int, list[int]]:
    """{second: how many tickets} -> {second: ids}, seconds relative to a past base."""
    base = int(run.clock.now()) - 10_000
    return {
        base + off: [run.sim.create(at=base + off) for _ in range(n)] for off, n in layout.items()
    }


def test_a_full_page_cut_inside_a_second_repeats_it_on_the_next_page(
    simulator_factory: SimulatorFactory,
) -> None:
    run = _quiet(simulator_factory)
    placed = _place(run, {0: 3, 5: 4, 9: 3})
    s0, s5, _ = sorted(placed)
    with run.client() as client:
        first = _get(client, start_time=s0, per_page=5)
        ids1 = [t["id"] for t in first["tickets"]]
        assert first["count"] == len(first["tickets"]) == 5
        assert first["end_time"] == s5  # the last ticket's second, not s5 + 1
        assert first["end_of_stream"] is False
        assert set(ids1) >= set(placed[s0])
        second = _get(client, start_time=first["end_time"], per_page=5)
        ids2 = [t["id"] for t in second["tickets"]]
    cut = [i for i in ids1 if i in placed[s5]]
    assert len(cut) == 2
    assert set(cut) <= set(ids2), "tickets of the cut second come again (start_time inclusive)"
    assert set(placed[s5]) <= set(ids2)
    stamps = [t["generated_timestamp"] for t in second["tickets"]]
    assert stamps == sorted(stamps)


def test_next_page_is_the_same_url_with_start_time_moved(
    simulator_factory: SimulatorFactory,
) -> None:
    run = _quiet(simulator_factory)
    _place(run, {0: 2, 1: 2, 2: 2})
    with run.client() as client:
        params = {
            "start_time": 0,
            "per_page": 3,
            "include": "users",
            "exclude_deleted": "true",
            "support_type_scope": "all",
        }
        page = _get(client, **params)
    url = urlsplit(page["next_page"])
    assert url.path == PATH
    assert f"{url.scheme}://{url.netloc}" == run.base_url
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {**{k: str(v) for k, v in params.items()}, "start_time": str(page["end_time"])}


def test_one_second_larger_than_a_page_is_returned_whole_with_end_time_plus_one(
    simulator_factory: SimulatorFactory,
) -> None:
    run = _quiet(simulator_factory, tickets=50)
    second = int(run.clock.now()) - 5000
    ids = run.sim.burst(1500, second)
    with run.client() as client:
        page = _get(client, start_time=second)
        after = _get(client, start_time=page["end_time"])
    assert page["count"] == 1500 == len(page["tickets"])
    assert {t["id"] for t in page["tickets"]} == set(ids)
    assert page["end_time"] == second + 1
    # 1000 items before expansion is not < per_page: the stream is not over
    assert page["end_of_stream"] is False
    assert all(t["generated_timestamp"] > second for t in after["tickets"])
    order = [t["id"] for t in page["tickets"]]
    assert order != sorted(order), "order inside one second is arbitrary, not by id"


def test_last_page_sets_end_of_stream_and_still_has_a_next_page(
    simulator_factory: SimulatorFactory,
) -> None:
    run = _quiet(simulator_factory)
    placed = _place(run, {0: 2, 3: 1})
    with run.client() as client:
        page = _get(client, start_time=0, per_page=4)
        exact = _get(client, start_time=0, per_page=3)
    assert page["count"] == 3
    assert page["end_of_stream"] is True
    assert page["end_time"] == max(placed)
    assert page["next_page"].endswith(f"start_time={max(placed)}")
    # a page exactly filled is not the end, even when nothing follows it
    assert exact["count"] == 3
    assert exact["end_of_stream"] is False


def test_empty_page_has_null_end_time_and_next_page_or_the_start_when_configured(
    simulator_factory: SimulatorFactory,
) -> None:
    nulls = _quiet(simulator_factory)
    present = _quiet(simulator_factory, empty_page_nulls=False)
    start = int(nulls.clock.now()) - 3600
    with nulls.client() as a, present.client() as b:
        empty = _get(a, start_time=start)
        kept = _get(b, start_time=start)
    assert empty == {
        "tickets": [],
        "next_page": None,
        "count": 0,
        "end_of_stream": True,
        "end_time": None,
    }
    assert kept["count"] == 0
    assert kept["end_time"] == start
    assert kept["next_page"].endswith(f"start_time={start}")


def test_per_page_defaults_to_and_is_capped_at_1000(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=2500, rate_limit_enabled=False, clustered_fraction=0.0)
    with run.client() as client:
        assert _get(client, start_time=0)["count"] == 1000
        assert _get(client, start_time=0, per_page=5000)["count"] == 1000
        assert _get(client, start_time=0, per_page=7)["count"] == 7


def test_hold_back_hides_the_last_minute(simulator_factory: SimulatorFactory) -> None:
    run = _quiet(simulator_factory)
    now = int(run.clock.now())
    old = run.sim.create(at=now - 120)
    recent = run.sim.create(at=now - 30)
    with run.client() as client:
        first = _get(client, start_time=now - 200)
        run.clock.advance(60)
        later = _get(client, start_time=now - 200)
    assert [t["id"] for t in first["tickets"]] == [old]
    assert {t["id"] for t in later["tickets"]} == {old, recent}


def test_too_recent_or_future_start_time_is_400_and_legacy_422(
    simulator_factory: SimulatorFactory,
) -> None:
    run = _quiet(simulator_factory)
    legacy = _quiet(simulator_factory, legacy_422=True)
    now = int(run.clock.now())
    with run.client() as client, legacy.client() as old:
        for start in (now - 30, now + 3600):
            resp = client.get(PATH, params={"start_time": start})
            assert resp.status_code == 400
            assert resp.json()["error"] == "StartTimeTooRecent"
        resp = old.get(PATH, params={"start_time": now - 30})
        assert resp.status_code == 422
        assert resp.json() == {
            "error": "InvalidValue",
            "description": "Too recent start_time. Use a start_time older than 5 minutes",
        }
        assert client.get(PATH, params={"start_time": now - 90}).status_code == 200
        missing = client.get(PATH)
        assert missing.status_code == 400
        assert "error" in missing.json()
        assert client.get("/api/v2/incremental/tickets").status_code == 400


def test_exclude_deleted_and_support_type_scope_filter(simulator_factory: SimulatorFactory) -> None:
    run = _quiet(simulator_factory)
    base = int(run.clock.now()) - 5000
    agent = run.sim.create(at=base)
    gone = run.sim.create(at=base)
    run.sim.delete(gone, at=base + 1)
    bot = run.sim.create(ai_agent=True, at=base + 2)
    with run.client() as client:

        def ids(**params: Any) -> set[int]:
            return {t["id"] for t in _get(client, start_time=0, **params)["tickets"]}

        assert ids() == {agent, gone}
        assert ids(exclude_deleted="true") == {agent}
        assert ids(support_type_scope="ai_agent") == {bot}
        assert ids(support_type_scope="all") == {agent, gone, bot}
        deleted = [t for t in _get(client, start_time=0)["tickets"] if t["id"] == gone]
    assert deleted[0]["status"] == "deleted"
    assert deleted[0]["generated_timestamp"] == base + 1


def test_sideloads_match_the_tickets_on_the_page(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=200, rate_limit_enabled=False)
    with run.client() as client:
        page = _get(
            client,
            start_time=0,
            per_page=50,
            include="users,groups,organizations,metric_sets,last_audits",
        )
        plain = _get(client, start_time=0, per_page=50)
    assert "users" not in plain
    assert "last_audits" not in page
    tickets = page["tickets"]
    users = {u["id"] for u in page["users"]}
    assert {t["requester_id"] for t in tickets} <= users
    assert {t["group_id"] for t in tickets if t["group_id"]} == {g["id"] for g in page["groups"]}
    orgs = {o["id"] for o in page["organizations"]}
    assert {t["organization_id"] for t in tickets if t["organization_id"]} == orgs
    assert [m["ticket_id"] for m in page["metric_sets"]] == [t["id"] for t in tickets]
    assert all("reply_time_in_minutes" in m for m in page["metric_sets"])


def test_legacy_mode_loops_on_a_full_same_second_page(simulator_factory: SimulatorFactory) -> None:
    run = _quiet(simulator_factory, legacy_loop=True)
    second = int(run.clock.now()) - 5000
    run.sim.burst(30, second)
    with run.client() as client:
        page = _get(client, start_time=second, per_page=10)
        again = _get(client, start_time=page["end_time"], per_page=10)
    assert page["count"] == 10
    assert page["end_time"] == second == again["end_time"]
    assert page["end_of_stream"] is False
    assert again["next_page"] == page["next_page"]


def test_draining_the_export_sees_every_latest_version(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=3000, rate_limit_enabled=False, clustered_fraction=0.3)
    seen: list[Observed] = []
    start, pages = 0, 0
    with run.client() as client:
        while True:
            page = _get(client, start_time=start, support_type_scope="all")
            pages += 1
            seen += [Observed(t["id"], t["generated_timestamp"], t) for t in page["tickets"]]
            if page["end_of_stream"]:
                break
            assert page["end_time"] >= start
            start = page["end_time"]
    truth = run.sim.ground_truth()
    assert pages >= 3
    assert truth.missed(seen) == []
    assert truth.latest_missed(seen) == []
    assert len({o.ticket_id for o in seen}) == 3000

"""Pins the cursor-based export (ZENDESK_API.md §8), over HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.integration.conftest import SimulatorFactory

PATH = "/api/v2/incremental/tickets/cursor.json"


def _get(client: httpx.Client, url: str = PATH, **params: Any) -> dict[str, Any]:
    resp = client.get(url, params=params or None)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_cursor_pages_are_exact_ordered_and_without_duplicates(
    simulator_factory: SimulatorFactory,
) -> None:
    run = simulator_factory(tickets=300, rate_limit_enabled=False, clustered_fraction=0.5)
    second = int(run.clock.now()) - 4000
    run.sim.burst(120, second)  # a same-second burst splits across pages without blow-up
    keys: list[tuple[int, int]] = []
    sizes: list[int] = []
    with run.client() as client:
        page = _get(client, start_time=0, per_page=50, support_type_scope="all")
        while True:
            assert not {"count", "end_time", "next_page"} & page.keys()
            sizes.append(len(page["tickets"]))
            keys += [(t["generated_timestamp"], t["id"]) for t in page["tickets"]]
            assert page["after_cursor"], "after_cursor is set on every page, the last included"
            if page["end_of_stream"]:
                break
            page = _get(client, page["after_url"])
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys)) == 300
    assert all(size == 50 for size in sizes)  # 300 is a multiple of 50: every page is full
    assert sizes[-1] == 50


def test_cursor_format_and_resuming_from_the_last_cursor(
    simulator_factory: SimulatorFactory,
) -> None:
    run = simulator_factory(tickets=30, rate_limit_enabled=False)
    with run.client() as client:
        page = _get(client, start_time=0, per_page=1000)
        assert page["end_of_stream"] is True
        last = page["tickets"][-1]
        decoded = base64.b64decode(page["after_cursor"]).decode()
        assert decoded == f"{last['generated_timestamp']}.0||{last['id']}|"
        first = page["tickets"][0]
        assert base64.b64decode(page["before_cursor"]).decode().endswith(f"||{first['id']}|")
        later = run.sim.create(at=int(run.clock.now()) - 100)
        resumed = _get(client, cursor=page["after_cursor"])
    assert [t["id"] for t in resumed["tickets"]] == [later]
    assert resumed["end_of_stream"] is True


def test_cursor_export_shares_the_hold_back_and_the_start_time_rules(
    simulator_factory: SimulatorFactory,
) -> None:
    run = simulator_factory(tickets=0, rate_limit_enabled=False)
    now = int(run.clock.now())
    run.sim.create(at=now - 10)
    with run.client() as client:
        empty = _get(client, start_time=now - 500)
        too_recent = client.get(PATH, params={"start_time": now - 5})
        bad = client.get(PATH, params={"cursor": "not a cursor!"})
    assert empty["tickets"] == []
    assert empty["end_of_stream"] is True
    assert empty["after_cursor"]
    assert too_recent.status_code == 400
    assert too_recent.json()["error"] == "StartTimeTooRecent"
    assert bad.status_code == 400

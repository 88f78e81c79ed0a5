"""The ground truth: real content changes versus system-only updates."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import pytest

from producer.clock import ScaledClock
from producer.simulator import (
    DEFAULT_EMAIL,
    DEFAULT_TOKEN,
    ChangeOp,
    Observed,
    Simulator,
    SimulatorConfig,
    run_simulator,
)
from tests.integration.conftest import SimulatorFactory

PATH = "/api/v2/incremental/tickets.json"


def _drain(client: httpx.Client, start: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = client.get(PATH, params={"start_time": start}).json()
        out += page["tickets"]
        if page["end_of_stream"]:
            return out
        start = page["end_time"]


def test_system_only_updates_move_only_the_version(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=20, rate_limit_enabled=False)
    before = run.sim.ticket(5)
    changes = len(run.sim.ground_truth().changes)
    at = int(run.clock.now()) - 100
    assert run.sim.update_ticket(5, system_only=True, at=at) == at
    after = run.sim.ticket(5)
    assert after["generated_timestamp"] == at != before["generated_timestamp"]
    assert {k: v for k, v in after.items() if k != "generated_timestamp"} == {
        k: v for k, v in before.items() if k != "generated_timestamp"
    }
    truth = run.sim.ground_truth()
    assert len(truth.changes) == changes, "a system-only update is not a content change"
    assert truth.tickets[5].generated_timestamp == at


def test_agent_updates_and_deletes_are_history(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=20, rate_limit_enabled=False)
    at = int(run.clock.now()) - 100
    old = run.sim.ticket(7)
    run.sim.update_ticket(7, at=at)
    new = run.sim.ticket(7)
    run.sim.delete(8, at=at + 1)
    truth = run.sim.ground_truth()
    assert new["updated_at"] != old["updated_at"]
    assert new["generated_timestamp"] == at
    changed = {k for k in new if new[k] != old[k]} - {"updated_at", "generated_timestamp"}
    assert changed, "an agent update changes content"
    assert [(c.op, c.ticket_id) for c in truth.changes[-2:]] == [
        (ChangeOp.UPDATE, 7),
        (ChangeOp.DELETE, 8),
    ]
    assert truth.tickets[8].deleted


def test_missed_reports_changes_a_reader_did_not_see(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=30, rate_limit_enabled=False, ai_agent_fraction=0.0)
    with run.client() as client:
        first = _drain(client, 0)
        at = int(run.clock.now()) - 200
        run.sim.update_ticket(3, at=at)
        run.sim.update_ticket(4, system_only=True, at=at)
        second = _drain(client, at)
    observed = [Observed(t["id"], t["generated_timestamp"], t) for t in first + second]
    truth = run.sim.ground_truth()
    assert truth.missed(observed) == []
    # the system-only update came back on the page but is no change; dropping it loses nothing
    without_4 = [o for o in observed if not (o.ticket_id == 4 and o.generated_timestamp == at)]
    assert truth.missed(without_4) == []
    without_3 = [o for o in observed if not (o.ticket_id == 3 and o.generated_timestamp == at)]
    missed = truth.missed(without_3)
    assert [(c.ticket_id, c.op, c.generated_timestamp) for c in missed] == [
        (3, ChangeOp.UPDATE, at)
    ]
    stale = [Observed(3, at, dict(first[0], id=3)), *without_3]
    assert truth.missed(stale) == missed, "the content must match, not just the version"


def test_truth_endpoint(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=10, rate_limit_enabled=False)
    run.sim.update_ticket(2, system_only=True)
    with run.client() as client:
        truth = client.get("/__sim/truth").json()
        stats = client.get("/__sim/stats").json()
    assert set(truth["tickets"]) == {str(i) for i in range(1, 11)}
    assert truth["tickets"]["2"]["generated_timestamp"] == run.sim.ticket(2)["generated_timestamp"]
    assert len(truth["changes"]) == 10
    assert stats["tickets"] == 10


def test_live_activity_runs_on_the_accelerated_clock(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=50, speed=600.0, activity_per_minute=120.0)
    started = run.clock.now()
    while run.clock.now() < started + 120:  # two simulated minutes = 0.2 s of real time
        run.clock.sleep(10)
    truth = run.sim.ground_truth()
    events = 2 * (truth.taken_at - started)
    content_changes = len(truth.changes) - 50
    # about three events in four change content; the rest are system-only updates
    assert 0.4 * events <= content_changes <= events
    assert len(truth.tickets) > 50  # creations happen too
    assert any(c.op is ChangeOp.UPDATE for c in truth.changes)


def test_actions_endpoint_drives_the_account(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=5, rate_limit_enabled=False, ai_agent_fraction=0.0)
    with run.client() as client:
        created = client.post("/__sim/actions", json={"create": 2}).json()
        client.post("/__sim/actions", json={"delete": 1})
        burst = client.post("/__sim/actions", json={"burst": 20}).json()
    assert created["ids"] == [6, 7]
    assert run.sim.ticket(1)["status"] == "deleted"
    assert burst["count"] == 20
    # 6 live tickets take part in the burst, 14 new ones make up the rest
    assert run.sim.ticket_count == 7 + 14


def test_run_simulator_serves_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = threading.Event()
    options = {
        "host": "127.0.0.1",
        "port": port,
        "tickets": 5,
        "seed": 3,
        "speed": 10.0,
        "activity_per_minute": 0.0,
        "rate_limit": 30,
        "stop": stop,
    }
    thread = threading.Thread(target=run_simulator, kwargs=options)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/api/v2/incremental/tickets.json?start_time=0"
        for _ in range(100):  # until it listens
            try:
                resp = httpx.get(url, auth=(f"{DEFAULT_EMAIL}/token", DEFAULT_TOKEN))
                break
            except httpx.ConnectError:
                time.sleep(0.02)
        assert resp.status_code == 200
        assert resp.json()["count"] == 5
        assert resp.headers["X-Rate-Limit"] == "30"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    printed = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}" in printed
    assert f"curl -u '{DEFAULT_EMAIL}/token:{DEFAULT_TOKEN}'" in printed


def test_same_seed_same_account() -> None:
    clock = ScaledClock(start=1_790_000_000.0)
    a = Simulator(SimulatorConfig(tickets=40, seed=9), clock)
    b = Simulator(SimulatorConfig(tickets=40, seed=9), clock)
    c = Simulator(SimulatorConfig(tickets=40, seed=10), clock)
    assert [a.ticket(i) for i in range(1, 41)] == [b.ticket(i) for i in range(1, 41)]
    assert [a.ticket(i) for i in range(1, 41)] != [c.ticket(i) for i in range(1, 41)]


def test_versions_never_move_back_in_time(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=50, rate_limit_enabled=False)
    ts = run.sim.ticket(1)["generated_timestamp"]
    with pytest.raises(ValueError, match="cannot move back"):
        run.sim.update_ticket(1, system_only=True, at=ts - 1)
    # a burst in the past takes only tickets older than its second, and creates the rest
    second = min(run.sim.ticket(i)["generated_timestamp"] for i in range(1, 51)) + 1
    ids = run.sim.burst(10, second)
    assert all(run.sim.ticket(i)["generated_timestamp"] == second for i in ids)
    assert len(ids) == 10

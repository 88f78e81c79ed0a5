"""Fault knobs, set from Python and from the admin endpoint, seen over HTTP."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.conftest import RunningSimulator, SimulatorFactory

PATH = "/api/v2/incremental/tickets.json"


@pytest.fixture
def run(simulator_factory: SimulatorFactory) -> RunningSimulator:
    return simulator_factory(tickets=50, rate_limit_enabled=False)


def _get(client: httpx.Client, **params: int) -> httpx.Response:
    return client.get(PATH, params={"start_time": 0, **params})


def test_a_5xx_burst_then_recovery(run: RunningSimulator) -> None:
    run.sim.faults.fail_next(4, (500, 502, 503))
    with run.client() as client:
        codes = [_get(client).status_code for _ in range(5)]
    assert codes == [500, 502, 503, 500, 200]


def test_504_only_above_the_per_page_threshold(run: RunningSimulator) -> None:
    run.sim.faults.set(gateway_timeout_over=100)
    with run.client() as client:
        big = _get(client)
        small = _get(client, per_page=100)
    assert big.status_code == 504
    assert big.text == "upstream request timeout"
    assert small.status_code == 200


def test_slow_responses_trip_a_client_timeout(run: RunningSimulator) -> None:
    run.sim.faults.set(delay_seconds=3.0)
    with run.client(timeout=1.0) as client, pytest.raises(httpx.ReadTimeout):
        _get(client)
    run.sim.faults.set(delay_seconds=0.0)
    # the same client timeout is met once the delay is cleared (margins wide for busy CI)
    with run.client(timeout=1.0) as client:
        assert _get(client).status_code == 200


def test_truncated_and_invalid_json_bodies(run: RunningSimulator) -> None:
    run.sim.faults.set(truncate_next=1, invalid_json_next=1)
    with run.client() as client:
        broken = _get(client)
        fine = _get(client)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert fine.json()["count"] == 50
    run.sim.faults.set(truncate_next=1)
    with run.client() as client:
        cut = _get(client)
    assert cut.content.startswith(b'{"tickets":[')
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)


def test_wrong_types_and_missing_envelope_keys(run: RunningSimulator) -> None:
    run.sim.faults.set(wrong_types_next=1, missing_envelope_next=1)
    with run.client() as client:
        body = _get(client).json()
        clean = _get(client).json()
    assert isinstance(body["tickets"][0]["id"], str)
    assert isinstance(body["tickets"][0]["subject"], int)
    assert "end_time" not in body
    assert "count" not in body
    assert isinstance(clean["tickets"][0]["id"], int)
    assert "end_time" in clean


def test_admin_endpoint_sets_faults(run: RunningSimulator) -> None:
    with run.client() as client:
        ok = client.post(
            "/__sim/faults", json={"fail_next": {"count": 1, "statuses": [502]}, "conflict_next": 1}
        )
        assert ok.status_code == 200
        assert [_get(client).status_code for _ in range(3)] == [502, 409, 200]
        client.post("/__sim/faults", json={"gateway_timeout_over": 10})
        assert _get(client).status_code == 504
        client.post("/__sim/faults", json={"clear": True})
        assert _get(client).status_code == 200
        bad = client.post("/__sim/faults", json={"missing_envelope_keys": ["nope"]})
    assert bad.status_code == 400


def test_admin_endpoints_reject_bad_bodies(run: RunningSimulator) -> None:
    with run.client() as client:
        assert client.post("/__sim/faults", content=b"not json").status_code == 400
        assert client.post("/__sim/actions", json={"delete": 9999}).status_code == 400
        assert client.post("/__sim/actions", json=[1]).status_code == 400
        assert _get(client).status_code == 200

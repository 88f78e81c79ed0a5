"""Rate limiting (ZENDESK_API.md §3) and authentication (§2, §6), over HTTP."""

from __future__ import annotations

import base64

import httpx
import pytest

from producer.simulator import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_EMAIL,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    basic_header,
)
from tests.integration.conftest import RunningSimulator, SimulatorFactory

PATH = "/api/v2/incremental/tickets.json"
CURSOR = "/api/v2/incremental/tickets/cursor.json"


def _status(run: RunningSimulator, auth: str | None, path: str = PATH) -> httpx.Response:
    headers = {"Authorization": auth} if auth else {}
    return httpx.get(
        f"{run.base_url}{path}", params={"start_time": 0, "per_page": 1}, headers=headers
    )


def test_eleventh_request_in_a_minute_is_429_with_retry_after_and_a_non_json_body(
    simulator_factory: SimulatorFactory,
) -> None:
    run = simulator_factory(tickets=20)
    with run.client() as client:
        answers = [
            client.get(PATH if i % 2 else CURSOR, params={"start_time": 0}) for i in range(11)
        ]
        assert [r.status_code for r in answers[:10]] == [200] * 10  # one bucket for both exports
        limited = answers[10]
        assert limited.status_code == 429
        retry = int(limited.headers["Retry-After"])
        assert 1 <= retry <= 60
        with pytest.raises(ValueError):  # the body must not be parseable JSON
            limited.json()
        run.clock.advance(retry)
        assert client.get(PATH, params={"start_time": 0}).status_code == 200
    assert run.sim.request_count() == 12
    assert run.sim.request_count(status=429) == 1


def test_rate_headers_count_down(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=5, rate_limit_per_minute=30)
    with run.client() as client:
        first = client.get(PATH, params={"start_time": 0})
        second = client.get(PATH, params={"start_time": 0})
    for resp, remaining in ((first, 29), (second, 28)):
        h = resp.headers
        assert h["X-Rate-Limit"] == h["ratelimit-limit"] == "30"
        assert h["X-Rate-Limit-Remaining"] == h["ratelimit-remaining"] == str(remaining)
        reset = int(h["ratelimit-reset"])
        assert 1 <= reset <= 60
        assert h["zendesk-ratelimit-incremental-exports"] == (
            f"total=30; remaining={remaining}; resets={reset}"
        )


def test_fixed_window_resets_at_the_minute(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(
        tickets=5, rate_limit_per_minute=2, rate_limit_window="fixed", start=1_790_000_000.0
    )
    with run.client() as client:
        codes = [client.get(PATH, params={"start_time": 0}).status_code for _ in range(3)]
        retry = int(client.get(PATH, params={"start_time": 0}).headers["Retry-After"])
        run.clock.advance(retry)
        after = client.get(PATH, params={"start_time": 0}).status_code
    assert codes == [200, 200, 429]
    assert after == 200


def test_api_token_basic_auth(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=1, rate_limit_enabled=False)
    good = basic_header(DEFAULT_EMAIL, run.sim.config.api_token)
    password = "Basic " + base64.b64encode(f"{DEFAULT_EMAIL}:hunter2".encode()).decode()
    assert _status(run, good).status_code == 200
    for bad in (None, basic_header(DEFAULT_EMAIL, "wrong"), password, "Bearer nope"):
        resp = _status(run, bad)
        assert resp.status_code == 401
        assert resp.json() == {"error": "Couldn't authenticate you"}


def test_api_tokens_stop_working_on_the_retirement_date(
    simulator_factory: SimulatorFactory,
) -> None:
    run = simulator_factory(
        tickets=1, rate_limit_enabled=False, api_token_retirement=2e9, start=2e9 - 10
    )
    assert _status(run, run.auth_header).status_code == 200
    run.clock.advance(20)
    assert _status(run, run.auth_header).status_code == 401


def test_oauth_refresh_rotates_the_pair_and_revokes_the_old_one(
    simulator_factory: SimulatorFactory,
) -> None:
    run = simulator_factory(tickets=1, rate_limit_enabled=False)
    assert _status(run, f"Bearer {DEFAULT_ACCESS_TOKEN}").status_code == 200
    form = {
        "grant_type": "refresh_token",
        "client_id": DEFAULT_OAUTH_CLIENT_ID,
        "client_secret": DEFAULT_OAUTH_CLIENT_SECRET,
        "refresh_token": DEFAULT_REFRESH_TOKEN,
    }
    resp = httpx.post(f"{run.base_url}/oauth/tokens", data=form)
    assert resp.status_code == 200
    pair = resp.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 1800
    assert pair["scope"] == "read"
    assert pair["access_token"] != DEFAULT_ACCESS_TOKEN
    assert pair["refresh_token"] != DEFAULT_REFRESH_TOKEN
    assert _status(run, f"Bearer {DEFAULT_ACCESS_TOKEN}").status_code == 401
    assert _status(run, f"Bearer {pair['access_token']}").status_code == 200
    reused = httpx.post(f"{run.base_url}/oauth/tokens", json=form)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    again = httpx.post(
        f"{run.base_url}/oauth/tokens", json={**form, "refresh_token": pair["refresh_token"]}
    )
    assert again.status_code == 200
    assert _status(run, f"Bearer {pair['access_token']}").status_code == 401
    wrong_client = httpx.post(
        f"{run.base_url}/oauth/tokens", json={**form, "client_secret": "x", "refresh_token": "y"}
    )
    assert wrong_client.status_code == 401


def test_access_tokens_expire_on_the_simulator_clock(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=1, rate_limit_enabled=False, access_token_lifetime=120.0)
    bearer = f"Bearer {DEFAULT_ACCESS_TOKEN}"
    assert _status(run, bearer).status_code == 200
    run.clock.advance(121)
    assert _status(run, bearer).status_code == 401


def test_forbidden_without_read_scope_or_admin_role(simulator_factory: SimulatorFactory) -> None:
    no_scope = simulator_factory(tickets=1, scopes=("write",))
    resp = _status(no_scope, f"Bearer {DEFAULT_ACCESS_TOKEN}")
    assert resp.status_code == 403
    assert resp.json() == {
        "error": "Forbidden",
        "description": "You are missing the following required scopes: read",
    }
    agent = simulator_factory(tickets=1, admin=False)
    resp = _status(agent, agent.auth_header)
    assert resp.status_code == 403
    assert resp.json()["error"] == "Forbidden"


def test_unknown_account_is_404(simulator_factory: SimulatorFactory) -> None:
    run = simulator_factory(tickets=1, account_exists=False)
    resp = _status(run, run.auth_header)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html")


def test_request_rate_is_measured_on_the_simulator_clock(
    simulator_factory: SimulatorFactory,
) -> None:
    run = simulator_factory(
        tickets=5, start=1_790_000_000.0, speed=1e-6
    )  # time stands nearly still
    with run.client() as client:
        for _ in range(4):
            assert client.get(PATH, params={"start_time": 0}).status_code == 200
            run.clock.advance(20)
    # 4 requests 20 s apart: 3 intervals in 60 s
    assert run.sim.requests_per_minute() == pytest.approx(3.0, rel=1e-3)
    assert [r.status for r in run.sim.requests()] == [200] * 4

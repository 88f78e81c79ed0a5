"""The export client against the built-in Zendesk over real HTTP, on an accelerated clock."""

from __future__ import annotations

import itertools
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from producer.errors import AuthError, FatalZendeskError
from producer.metrics import Metrics
from producer.model import ExportCursor, ExportMode, ExportPage
from producer.simulator import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    Observed,
)
from producer.zendesk import ApiTokenAuth, ExportClient, ExportOptions, OAuthBearer, OAuthRefreshing
from producer.zendesk.auth import read_token_file
from producer.zendesk.client import CURSOR_PATH
from tests.integration.conftest import RunningSimulator, SimulatorFactory

FAST = 600.0  # the 10-per-minute budget becomes 10 ms of real time per request

ClientFactory = Callable[..., tuple[ExportClient, Metrics]]


@pytest.fixture
def export_client() -> Iterator[ClientFactory]:
    """make(running, auth=None, stop=None, **options) -> (ExportClient, Metrics)."""
    opened: list[httpx.Client] = []

    def make(
        running: RunningSimulator,
        auth: httpx.Auth | None = None,
        stop: threading.Event | None = None,
        **options: Any,
    ) -> tuple[ExportClient, Metrics]:
        cfg = running.sim.config
        http = httpx.Client()
        opened.append(http)
        metrics = Metrics()
        opts = ExportOptions(
            running.base_url,
            auth=auth if auth is not None else ApiTokenAuth(cfg.email, cfg.api_token),
            **{"backoff_base": 0.5, **options},
        )
        return ExportClient(opts, http, running.clock, metrics, stop), metrics

    yield make
    for http in opened:
        http.close()


def observe(pages: list[ExportPage]) -> list[Observed]:
    return [
        Observed(int(t["id"]), int(t["generated_timestamp"]), t) for p in pages for t in p.tickets
    ]


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def assert_nothing_missed(running: RunningSimulator, pages: list[ExportPage]) -> None:
    truth = running.sim.ground_truth()
    seen = observe(pages)
    assert truth.latest_missed(seen) == []
    assert truth.missed(seen) == []


def test_reads_every_latest_version_with_sideloads(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=600)
    client, metrics = export_client(running, per_page=100, include=("users",))
    pages = list(client.pages(ExportCursor(0)))
    assert pages[-1].end_of_stream
    assert all(not p.end_of_stream for p in pages[:-1])
    assert len(pages) >= 6
    assert all(b.start == a.next_cursor for a, b in itertools.pairwise(pages))
    assert_nothing_missed(running, pages)
    assert "users" in pages[0].sideloads
    assert running.sim.request_count(status=429) == 0
    assert value(metrics, "zendesk_cdc_pages_fetched_total") == len(pages)


def test_caught_up_after_the_last_page(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=50)
    client, _ = export_client(running)
    pages = list(client.pages(ExportCursor(0)))
    requests = running.sim.request_count()
    recent = ExportCursor(int(running.clock.now()) - 30)
    assert client.fetch_page(recent) is None
    assert running.sim.request_count() == requests  # never asked inside the hold-back
    assert pages[-1].end_of_stream


def test_legacy_422_too_recent_is_caught_up(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    # An older account wants start_time older than 5 minutes; the client only holds back 1.
    running = simulator_factory(speed=FAST, tickets=10, legacy_422=True, hold_back_seconds=300)
    client, metrics = export_client(running)
    assert client.fetch_page(ExportCursor(int(running.clock.now()) - 120)) is None
    assert running.sim.request_count(status=422) == 1
    assert value(metrics, "zendesk_cdc_errors_total", kind="fatal") == 0


def test_same_second_burst_beyond_per_page_comes_whole(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=400)
    running.sim.burst(250, int(running.clock.now()) - 600)
    client, _ = export_client(running, per_page=100)
    pages = list(client.pages(ExportCursor(0)))
    assert max(len(p.tickets) for p in pages) >= 250
    assert running.sim.request_count(path_prefix=CURSOR_PATH) == 0
    assert_nothing_missed(running, pages)


def test_a_second_too_big_to_serve_is_read_through_the_cursor_export(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    # a bulk update of 600 tickets in one second; any response over 300 tickets is a 504
    running = simulator_factory(speed=FAST, tickets=400)
    burst_second = int(running.clock.now()) - 600
    running.sim.burst(600, burst_second)
    running.sim.faults.set(gateway_timeout_over_tickets=300)
    client, _ = export_client(running, per_page=100, per_page_floor=50, backoff_base=0.01)
    pages = list(client.pages(ExportCursor(0)))
    assert max(len(p.tickets) for p in pages) <= 100  # the burst came in exact pages
    assert running.sim.request_count(path_prefix=CURSOR_PATH) >= 6
    assert running.sim.request_count(status=504) >= 3
    assert_nothing_missed(running, pages)


def test_legacy_loop_is_read_through_the_cursor_export(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=400, legacy_loop=True)
    burst_second = int(running.clock.now()) - 600
    running.sim.burst(250, burst_second)
    client, metrics = export_client(running, per_page=100)
    pages = list(client.pages(ExportCursor(0)))
    inside = [p for p in pages if p.next_cursor.after_cursor is not None]
    assert inside
    assert all(p.next_cursor.start_time == burst_second for p in inside)
    assert running.sim.request_count(path_prefix=CURSOR_PATH) >= 3
    assert value(metrics, "zendesk_cdc_errors_total", kind="cursor_stuck") == 1
    assert_nothing_missed(running, pages)


def test_a_crash_inside_the_fallback_resumes_losslessly(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=300, legacy_loop=True)
    running.sim.burst(250, int(running.clock.now()) - 600)
    first, _ = export_client(running, per_page=100)
    before: list[ExportPage] = []
    for page in first.pages(ExportCursor(0)):
        before.append(page)
        if page.next_cursor.after_cursor is not None:
            break  # the process dies with this cursor committed
    saved = ExportCursor.from_json(before[-1].next_cursor.to_json())
    assert saved.after_cursor is not None
    second, _ = export_client(running, per_page=100)
    after = list(second.pages(saved))
    assert after[0].start == saved
    assert_nothing_missed(running, before + after)


def test_cursor_mode_for_a_whole_run_and_resume(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=300)
    client, _ = export_client(running, per_page=70)
    pages = list(client.pages(ExportCursor(0, mode=ExportMode.CURSOR)))
    last = pages[-1].next_cursor
    assert last.mode is ExportMode.CURSOR
    assert last.after_cursor is not None
    assert len(observe(pages)) == 300  # exact pages: no repeats
    assert_nothing_missed(running, pages)
    tid = 17
    running.sim.update_ticket(tid, at=int(running.clock.now()) - 1)
    running.clock.advance(120)  # past the hold-back
    more = list(client.pages(last))
    assert [o.ticket_id for o in observe(more)] == [tid]


def test_transient_faults_504_and_bad_bodies_are_survived(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=500)
    faults = running.sim.faults
    faults.fail_next(4, (500, 502, 503, 409))
    faults.set(gateway_timeout_over=200, invalid_json_next=1)
    client, metrics = export_client(running, per_page=1000, per_page_floor=50)
    pages = list(client.pages(ExportCursor(0)))
    assert_nothing_missed(running, pages)
    assert value(metrics, "zendesk_cdc_errors_total", kind="transient") >= 4 + 3
    assert value(metrics, "zendesk_cdc_errors_total", kind="malformed_response") == 1
    faults.set(truncate_next=1)
    again = client.fetch_page(pages[0].start)
    assert again is not None
    assert again.next_cursor == pages[0].next_cursor  # the truncated body moved nothing
    assert value(metrics, "zendesk_cdc_errors_total", kind="malformed_response") == 2
    assert client.page_size.current <= 200
    assert value(metrics, "zendesk_cdc_per_page") == client.page_size.current


def test_a_wrongly_typed_ticket_is_reported_alone(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=50)
    running.sim.faults.set(wrong_types_next=1)
    client, metrics = export_client(running)
    page = client.fetch_page(ExportCursor(0))
    assert page is not None
    assert len(page.malformed) == 1
    assert page.malformed[0].reason == "ticket has no 64-bit integer id"
    assert len(page.tickets) == 49
    assert value(metrics, "zendesk_cdc_malformed_tickets_total") == 1


def test_429_is_honoured(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    # 60 s of budget window is 1 s real here: enough for 10 quick requests to fill it
    running = simulator_factory(speed=60.0, tickets=20)
    with running.client() as raw:  # another integration spends the whole budget
        for _ in range(10):
            raw.get(running.export_url(start_time=0, per_page=1))
    client, metrics = export_client(running)
    page = client.fetch_page(ExportCursor(0))
    assert page is not None
    assert running.sim.request_count(status=429) == 1
    assert value(metrics, "zendesk_cdc_rate_limited_total") == 1


def test_a_claimed_high_volume_budget_adapts_to_the_account(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=FAST, tickets=500)
    client, metrics = export_client(running, per_page=20, requests_per_minute=30)
    pages = list(client.pages(ExportCursor(0)))
    assert len(pages) >= 25
    assert running.sim.request_count(status=429) <= 1
    assert value(metrics, "zendesk_cdc_rate_budget_requests_per_minute") == 10


@pytest.mark.parametrize(
    ("overrides", "auth", "kind", "message"),
    [
        ({}, ApiTokenAuth("admin@example.com", "wrong"), AuthError, "credentials rejected"),
        ({"admin": False}, None, FatalZendeskError, "not an admin"),
        ({"scopes": ()}, OAuthBearer(DEFAULT_ACCESS_TOKEN), FatalZendeskError, "read scope"),
        ({"account_exists": False}, None, FatalZendeskError, "subdomain does not exist"),
    ],
)
def test_fatal_errors_are_actionable(
    simulator_factory: SimulatorFactory,
    export_client: ClientFactory,
    overrides: dict[str, Any],
    auth: httpx.Auth | None,
    kind: type[Exception],
    message: str,
) -> None:
    running = simulator_factory(speed=FAST, tickets=5, **overrides)
    client, _ = export_client(running, auth=auth)
    with pytest.raises(kind, match=message):
        client.fetch_page(ExportCursor(0))


def test_oauth_refresh_rotates_and_persists_the_pair(
    simulator_factory: SimulatorFactory, export_client: ClientFactory, tmp_path: Path
) -> None:
    running = simulator_factory(speed=FAST, tickets=300, access_token_lifetime=200.0)
    token_file = tmp_path / "state" / "zendesk-oauth.json"
    auth = OAuthRefreshing(
        DEFAULT_OAUTH_CLIENT_ID,
        DEFAULT_OAUTH_CLIENT_SECRET,
        token_file,
        clock=running.clock,
        initial_refresh_token=DEFAULT_REFRESH_TOKEN,
    )
    client, _ = export_client(running, auth=auth, per_page=10)
    pages = list(client.pages(ExportCursor(0)))
    assert_nothing_missed(running, pages)
    assert running.sim.auth.refreshes >= 2  # 200 s tokens, over 180 s of paging
    saved = read_token_file(token_file)
    assert saved.refresh_token == f"sim-refresh-token-{running.sim.auth.refreshes}"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # the first refresh token was revoked by the rotation
    stale = OAuthRefreshing(
        DEFAULT_OAUTH_CLIENT_ID,
        DEFAULT_OAUTH_CLIENT_SECRET,
        tmp_path / "other.json",
        initial_refresh_token=DEFAULT_REFRESH_TOKEN,
    )
    stale_client, _ = export_client(running, auth=stale)
    with pytest.raises(AuthError, match="invalid_grant"):
        stale_client.fetch_page(ExportCursor(0))


def test_stop_interrupts_paging(
    simulator_factory: SimulatorFactory, export_client: ClientFactory
) -> None:
    running = simulator_factory(speed=1.0, tickets=200)  # real time: 6 s between requests
    stop = threading.Event()
    client, _ = export_client(running, stop=stop, per_page=20)
    pages = []
    for page in client.pages(ExportCursor(0)):
        pages.append(page)
        threading.Timer(0.2, stop.set).start()
    assert len(pages) == 1  # the 6 s budget wait was cut short by stop


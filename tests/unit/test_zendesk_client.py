"""The export client against httpx.MockTransport tables: status, headers, body -> behaviour."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from producer.errors import (
    AuthError,
    CursorStuckError,
    FatalZendeskError,
    MalformedResponseError,
    RetryableZendeskError,
)
from producer.metrics import Metrics
from producer.model import ExportCursor, ExportMode
from producer.zendesk.auth import ApiTokenAuth
from producer.zendesk.client import CURSOR_PATH, TIME_PATH, ExportClient
from producer.zendesk.options import ExportOptions

NOW = 1_700_000_000.0
BASE = "https://acme.zendesk.com"


class ManualClock:
    """Time moves only when the client sleeps, so waits are exact and instant."""

    def __init__(self, now: float = NOW) -> None:
        self.t = now
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        return stop.is_set() if stop else False


Reply = httpx.Response | Exception


@dataclass
class Server:
    """Replies in order; records each request with the clock time it was sent."""

    clock: ManualClock
    replies: list[Reply]
    requests: list[tuple[float, httpx.Request]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((self.clock.now(), request))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def params(self, i: int) -> dict[str, str]:
        return dict(self.requests[i][1].url.params)

    def path(self, i: int) -> str:
        return self.requests[i][1].url.path


def ticket(tid: int, ts: int) -> dict[str, Any]:
    return {"id": tid, "generated_timestamp": ts, "subject": f"t{tid}"}


def time_page(
    tickets: list[dict[str, Any]], *, eos: bool, end_time: int | None = None
) -> httpx.Response:
    end = end_time if end_time is not None else max(t["generated_timestamp"] for t in tickets)
    body = {
        "tickets": tickets,
        "count": len(tickets),
        "end_time": end,
        "end_of_stream": eos,
        "next_page": f"{BASE}{TIME_PATH}.json?start_time={end}",  # still a URL on the last page
    }
    return httpx.Response(200, json=body)


def cursor_page(tickets: list[dict[str, Any]], after: str | None, *, eos: bool) -> httpx.Response:
    body = {"tickets": tickets, "after_cursor": after, "before_cursor": None, "end_of_stream": eos}
    return httpx.Response(200, json=body)


def error(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status, text="<html>error</html>", headers=headers)
    return httpx.Response(status, json=body, headers=headers)


Make = Callable[..., tuple[ExportClient, Server, ManualClock, Metrics]]


@pytest.fixture
def make() -> Iterator[Make]:
    clients: list[httpx.Client] = []

    def build(
        replies: Sequence[Reply], stop: threading.Event | None = None, **options: Any
    ) -> tuple[ExportClient, Server, ManualClock, Metrics]:
        clock = ManualClock()
        server = Server(clock, list(replies))
        http = httpx.Client(transport=httpx.MockTransport(server))
        clients.append(http)
        metrics = Metrics()
        opts = ExportOptions(BASE, **options)
        client = ExportClient(opts, http, clock, metrics, stop, rng=random.Random(7))
        return client, server, clock, metrics

    yield build
    for http in clients:
        http.close()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


OLD = int(NOW) - 86400


def test_pages_to_end_of_stream_keeping_duplicates(make: Make) -> None:
    replies = [
        time_page([ticket(1, OLD), ticket(2, OLD + 5)], eos=False),
        time_page([ticket(2, OLD + 5), ticket(3, OLD + 9)], eos=False),
        time_page([ticket(4, OLD + 20)], eos=True),
        time_page([ticket(99, OLD + 30)], eos=True),  # must never be asked for
    ]
    client, server, _, metrics = make(replies, include=("users",), exclude_deleted=True)
    pages = list(client.pages(ExportCursor(OLD)))
    assert [p.ticket_ids for p in pages] == [[1, 2], [2, 3], [4]]
    assert [p.start.start_time for p in pages] == [OLD, OLD + 5, OLD + 9]
    assert pages[-1].next_cursor == ExportCursor(OLD + 20)
    assert len(server.requests) == 3
    assert server.path(0) == TIME_PATH
    assert server.params(1) == {
        "start_time": str(OLD + 5),
        "per_page": "1000",
        "support_type_scope": "all",
        "include": "users",
        "exclude_deleted": "true",
    }
    assert sample(metrics, "zendesk_cdc_pages_fetched_total") == 3
    assert sample(metrics, "zendesk_cdc_tickets_fetched_total") == 5
    assert (
        sample(
            metrics, "zendesk_cdc_api_requests_total", endpoint="incremental_tickets", status="2xx"
        )
        == 3
    )


def test_never_asks_inside_the_hold_back(make: Make) -> None:
    client, server, _, _ = make([], hold_back_margin=90)
    assert client.fetch_page(ExportCursor(int(NOW) - 89)) is None
    assert client.fetch_page(ExportCursor(int(NOW) + 3600)) is None
    assert list(client.pages(ExportCursor(int(NOW) - 60))) == []
    assert server.requests == []


@pytest.mark.parametrize(
    "reply",
    [
        error(400, {"error": "StartTimeTooRecent", "description": "too recent"}),
        error(
            422,
            {
                "error": "InvalidValue",
                "description": "Too recent start_time. Use a start_time older than 5 minutes",
            },
        ),
    ],
)
def test_too_recent_start_is_caught_up(make: Make, reply: httpx.Response) -> None:
    client, server, _, metrics = make([reply])
    assert client.fetch_page(ExportCursor(int(NOW) - 120)) is None
    assert len(server.requests) == 1
    assert sample(metrics, "zendesk_cdc_errors_total", kind="fatal") == 0


def test_stuck_second_is_read_through_the_cursor_export_then_time_resumes(make: Make) -> None:
    s = OLD
    burst = [ticket(i, s) for i in range(1, 5)]
    replies = [
        time_page(burst[:2], eos=False, end_time=s),  # legacy loop: end_time == start_time
        cursor_page(burst[:2], "c1", eos=False),
        cursor_page(burst[2:], "c2", eos=False),  # still inside second s
        cursor_page([ticket(7, s + 1), ticket(8, s + 3)], "c3", eos=False),  # passed s
        time_page([ticket(8, s + 3), ticket(9, s + 4)], eos=True),
    ]
    client, server, _, metrics = make(replies, per_page=2, per_page_floor=1)
    pages = list(client.pages(ExportCursor(s)))
    assert [p.ticket_ids for p in pages] == [[1, 2], [3, 4], [7, 8], [8, 9]]
    assert [p.next_cursor for p in pages] == [
        ExportCursor(s, "c1"),
        ExportCursor(s, "c2"),
        ExportCursor(s + 1),
        ExportCursor(s + 4),
    ]
    assert [server.path(i) for i in range(5)] == [TIME_PATH, *[CURSOR_PATH] * 3, TIME_PATH]
    assert server.params(1)["start_time"] == str(s)
    assert server.params(1)["per_page"] == "2"
    assert server.params(2)["cursor"] == "c1"
    assert "start_time" not in server.params(2)
    assert server.params(4)["start_time"] == str(s + 1)
    assert sample(metrics, "zendesk_cdc_errors_total", kind="cursor_stuck") == 1


def test_a_stuck_page_of_only_malformed_tickets_still_falls_back(make: Make) -> None:
    body = {"tickets": [{"id": "x", "generated_timestamp": OLD}], "count": 1, "end_time": OLD,
            "end_of_stream": False}  # fmt: skip
    replies = [httpx.Response(200, json=body), cursor_page([ticket(2, OLD + 1)], "c1", eos=True)]
    client, server, _, _ = make(replies)
    pages = list(client.pages(ExportCursor(OLD)))
    assert [p.ticket_ids for p in pages] == [[2]]
    assert server.path(1) == CURSOR_PATH


def test_pages_never_spin_on_a_cursor_that_does_not_move(make: Make) -> None:
    replies = [cursor_page([ticket(1, OLD)], "c1", eos=False), cursor_page([], "c1", eos=False)]
    client, _, _, metrics = make(replies)
    with pytest.raises(CursorStuckError):
        list(client.pages(ExportCursor(OLD, "c0", ExportMode.CURSOR)))
    assert sample(metrics, "zendesk_cdc_errors_total", kind="cursor_stuck") == 1


def test_a_crash_inside_the_stuck_second_resumes_from_the_saved_cursor(make: Make) -> None:
    client, server, _, _ = make([cursor_page([ticket(5, OLD + 2)], "c9", eos=True)])
    page = client.fetch_page(ExportCursor(OLD, "c2"))
    assert page is not None
    assert server.params(0)["cursor"] == "c2"
    assert page.next_cursor == ExportCursor(OLD + 1)
    assert page.end_of_stream is True


@pytest.mark.parametrize(
    "fallback",
    [
        cursor_page([ticket(1, OLD)], None, eos=False),  # no cursor to go on with
        cursor_page([], "c1", eos=False),  # empty but not at the end
        error(404, {"error": "InvalidEndpoint"}),  # no cursor export on this server
    ],
)
def test_no_way_past_a_stuck_second_raises(make: Make, fallback: httpx.Response) -> None:
    replies = [time_page([ticket(1, OLD)], eos=False, end_time=OLD), fallback]
    client, _, _, _ = make(replies)
    with pytest.raises(CursorStuckError) as info:
        client.fetch_page(ExportCursor(OLD))
    assert info.value.start_time == OLD


def test_cursor_export_that_returns_the_same_cursor_raises(make: Make) -> None:
    client, _, _, _ = make([cursor_page([ticket(1, OLD)], "c1", eos=False)])
    with pytest.raises(CursorStuckError):
        client.fetch_page(ExportCursor(OLD, "c1"))


def test_cursor_mode_for_a_whole_run(make: Make) -> None:
    replies = [
        cursor_page([ticket(1, OLD), ticket(2, OLD + 4)], "a1", eos=False),
        cursor_page([ticket(3, OLD + 9)], "a2", eos=True),  # after_cursor kept on the last page
    ]
    client, server, _, _ = make(replies)
    pages = list(client.pages(ExportCursor(OLD, mode=ExportMode.CURSOR)))
    assert [p.next_cursor for p in pages] == [
        ExportCursor(OLD + 4, "a1", ExportMode.CURSOR),
        ExportCursor(OLD + 9, "a2", ExportMode.CURSOR),
    ]
    assert server.params(0)["start_time"] == str(OLD)
    assert server.params(1)["cursor"] == "a1"


def test_cursor_mode_empty_end_keeps_the_cursor(make: Make) -> None:
    client, _, _, _ = make([cursor_page([], None, eos=True)])
    start = ExportCursor(OLD, "a2", ExportMode.CURSOR)
    page = client.fetch_page(start)
    assert page is not None
    assert page.next_cursor == start


def test_cursor_mode_start_respects_the_hold_back(make: Make) -> None:
    client, server, _, _ = make([])
    assert client.fetch_page(ExportCursor(int(NOW) - 10, mode=ExportMode.CURSOR)) is None
    assert server.requests == []


def test_429_waits_retry_after_then_succeeds(make: Make) -> None:
    replies: list[Reply] = [
        error(429, headers={"Retry-After": "93"}),
        time_page([ticket(1, OLD)], eos=True),
    ]
    client, server, _, metrics = make(replies)
    page = client.fetch_page(ExportCursor(OLD))
    assert page is not None
    assert server.requests[1][0] - server.requests[0][0] == pytest.approx(93)
    assert sample(metrics, "zendesk_cdc_rate_limited_total") == 1
    assert sample(metrics, "zendesk_cdc_errors_total", kind="rate_limited") == 1
    assert (
        sample(
            metrics, "zendesk_cdc_api_requests_total", endpoint="incremental_tickets", status="429"
        )
        == 1
    )


@pytest.mark.parametrize(
    "failure",
    [
        error(409, {"error": "Conflict"}),
        error(500),
        error(502),
        error(503),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("connection reset"),
    ],
)
def test_transient_errors_are_retried_with_backoff(make: Make, failure: Reply) -> None:
    replies = [failure, failure, time_page([ticket(1, OLD)], eos=True)]
    client, server, _, metrics = make(replies, backoff_base=2.0)
    page = client.fetch_page(ExportCursor(OLD))
    assert page is not None
    assert page.ticket_ids == [1]
    assert len(server.requests) == 3
    assert sample(metrics, "zendesk_cdc_errors_total", kind="transient") == 2
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(server.requests)]
    # the budget's 6.05 s pacing, or the jittered backoff capped by base * 2^n if longer
    assert 6.05 - 1e-6 <= gaps[0] <= 6.05 + 2
    assert 6.05 - 1e-6 <= gaps[1] <= 6.05 + 4


def test_transient_errors_stop_after_max_retries(make: Make) -> None:
    client, server, _, _ = make([error(503) for _ in range(4)], max_retries=3)
    with pytest.raises(RetryableZendeskError) as info:
        client.fetch_page(ExportCursor(OLD))
    assert info.value.status == 503
    assert len(server.requests) == 4


def test_unlimited_retries_keep_going(make: Make) -> None:
    replies: list[Reply] = [*(error(500) for _ in range(30)), time_page([ticket(1, OLD)], eos=True)]
    client, server, clock, _ = make(replies, max_retries=None, backoff_max=10)
    assert client.fetch_page(ExportCursor(OLD)) is not None
    assert len(server.requests) == 31
    assert max(clock.sleeps) <= 10


def test_504_halves_per_page_to_the_floor_and_grows_back(make: Make) -> None:
    replies: list[Reply] = [
        *(error(504) for _ in range(4)),
        *(time_page([ticket(1, OLD + 1)], eos=False) for _ in range(5)),
    ]
    client, server, _, metrics = make(replies, per_page=400, per_page_floor=60, grow_after=2)
    cursor = ExportCursor(OLD)
    for _ in range(5):
        page = client.fetch_page(cursor)
        assert page is not None
    sizes = [server.params(i)["per_page"] for i in range(len(server.requests))]
    assert sizes == ["400", "200", "100", "60", "60", "60", "120", "120", "240"]
    assert sample(metrics, "zendesk_cdc_per_page") == 240


@pytest.mark.parametrize(
    ("reply", "kind", "message"),
    [
        (error(401, {"error": "Couldn't authenticate you"}), AuthError, "credentials rejected"),
        (
            error(
                403,
                {
                    "error": "Forbidden",
                    "description": "You are missing the following required scopes: read",
                },
            ),
            FatalZendeskError,
            "lacks the read scope",
        ),
        (
            error(403, {"error": "Forbidden", "description": "You do not have access"}),
            FatalZendeskError,
            "not an admin",
        ),
        (error(404), FatalZendeskError, "subdomain does not exist"),
        (
            error(400, {"error": "InvalidValue", "description": "start_time"}),
            FatalZendeskError,
            "unexpected response",
        ),
    ],
)
def test_fatal_errors_are_typed_and_actionable(
    make: Make, reply: httpx.Response, kind: type[Exception], message: str
) -> None:
    client, server, _, _ = make([reply])
    with pytest.raises(kind, match=message):
        client.fetch_page(ExportCursor(OLD))
    assert len(server.requests) == 1  # never retried


def test_malformed_response_is_retried_and_the_cursor_does_not_move(make: Make) -> None:
    truncated = httpx.Response(200, content=b'{"tickets": [{"id": 1, "generated_ti')
    replies = [truncated, time_page([ticket(1, OLD + 3)], eos=True)]
    client, _, _, metrics = make(replies)
    page = client.fetch_page(ExportCursor(OLD))
    assert page is not None
    assert page.start == ExportCursor(OLD)
    assert sample(metrics, "zendesk_cdc_errors_total", kind="malformed_response") == 1


def test_persistently_malformed_response_raises(make: Make) -> None:
    bad = [httpx.Response(200, json={"tickets": [], "count": 3}) for _ in range(3)]
    client, server, _, _ = make(bad, malformed_retries=2)
    with pytest.raises(MalformedResponseError):
        client.fetch_page(ExportCursor(OLD))
    assert len(server.requests) == 3


def test_malformed_ticket_is_counted_and_the_page_moves(make: Make) -> None:
    body = {
        "tickets": [ticket(1, OLD), {"id": "x"}],
        "count": 2,
        "end_time": OLD + 1,
        "end_of_stream": True,
    }
    client, _, _, metrics = make([httpx.Response(200, json=body)])
    page = client.fetch_page(ExportCursor(OLD))
    assert page is not None
    assert page.next_cursor == ExportCursor(OLD + 1)
    assert len(page.malformed) == 1
    assert sample(metrics, "zendesk_cdc_malformed_tickets_total") == 1


def test_requests_are_paced_to_the_budget_without_busy_waiting(make: Make) -> None:
    replies = [time_page([ticket(i, OLD + i)], eos=False) for i in range(1, 31)]
    client, server, clock, metrics = make(replies, requests_per_minute=10)
    cursor = ExportCursor(OLD)
    for _ in range(30):
        page = client.fetch_page(cursor)
        assert page is not None
        cursor = page.next_cursor
    times = [t for t, _ in server.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) == pytest.approx(6.05)  # never sooner than the budget ...
    assert max(gaps) == pytest.approx(6.05)  # ... and never later than needed
    assert len(clock.sleeps) == 29  # one wait per request, no polling loop
    rate = 29 / (times[-1] - times[0]) * 60
    assert 9.5 <= rate <= 10
    assert sample(metrics, "zendesk_cdc_rate_limit_waits_total") == 29
    assert sample(metrics, "zendesk_cdc_rate_limit_wait_seconds_total") == pytest.approx(29 * 6.05)
    assert sample(metrics, "zendesk_cdc_rate_budget_requests_per_minute") == 10


def test_exhausted_bucket_header_delays_the_next_request(make: Make) -> None:
    exhausted = time_page([ticket(1, OLD + 1)], eos=False)
    exhausted.headers["zendesk-ratelimit-incremental-exports"] = "total=10; remaining=0; resets=40"
    replies = [exhausted, time_page([ticket(2, OLD + 2)], eos=True)]
    client, server, _, _ = make(replies)
    first = client.fetch_page(ExportCursor(OLD))
    assert first is not None
    client.fetch_page(first.next_cursor)
    assert server.requests[1][0] - server.requests[0][0] == pytest.approx(40)


def test_stop_during_a_wait_returns_none_promptly(make: Make) -> None:
    stop = threading.Event()
    replies = [error(429, headers={"Retry-After": "600"})]
    client, server, _, _ = make(replies, stop=stop)
    stop.set()
    assert client.fetch_page(ExportCursor(OLD)) is None
    assert list(client.pages(ExportCursor(OLD))) == []
    assert len(server.requests) == 1


def test_a_long_wait_keeps_reporting_that_the_client_is_alive() -> None:
    # /livez must see a client waiting out Retry-After as alive, not wedged
    clock = ManualClock()
    replies: list[Reply] = [
        error(429, headers={"Retry-After": "93"}),
        time_page([ticket(1, OLD)], eos=True),
    ]
    server = Server(clock, replies)
    beats: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        client = ExportClient(
            ExportOptions(BASE), http, clock, Metrics(), on_wait=lambda: beats.append(clock.now())
        )
        client.fetch_page(ExportCursor(OLD))
    assert len(beats) >= 4  # 93 s in slices of at most 30 s
    assert max(b - a for a, b in itertools.pairwise(beats)) <= 30


def test_a_cursor_page_of_only_malformed_tickets_still_moves(make: Make) -> None:
    replies: list[Reply] = [
        cursor_page([{"id": "x", "generated_timestamp": OLD}], "c1", eos=False),
        cursor_page([ticket(2, OLD + 1)], "c2", eos=True),
    ]
    client, _, _, _ = make(replies, mode=ExportMode.CURSOR)
    pages = list(client.pages(ExportCursor(OLD, mode=ExportMode.CURSOR)))
    assert [len(p.malformed) for p in pages] == [1, 0]  # dead-lettered, and on to the next
    assert pages[0].next_cursor.after_cursor == "c1"
    assert [t["id"] for t in pages[1].tickets] == [2]


def test_504s_at_the_floor_read_the_second_through_the_cursor_export(make: Make) -> None:
    # a burst so large that even its one second times out: smaller pages cannot help
    replies: list[Reply] = [
        *(error(504) for _ in range(3)),  # 100 -> 50, then twice at the floor
        cursor_page([ticket(i, OLD) for i in range(1, 4)], "c1", eos=False),
        cursor_page([ticket(4, OLD), ticket(5, OLD + 1)], "c2", eos=False),
    ]
    client, server, _, _ = make(replies, per_page=100, per_page_floor=50)
    first = client.fetch_page(ExportCursor(OLD))
    assert first is not None
    assert server.path(3).endswith("/incremental/tickets/cursor")
    assert server.params(3)["start_time"] == str(OLD)
    assert first.next_cursor == ExportCursor(OLD, "c1")  # still inside that second
    second = client.fetch_page(first.next_cursor)
    assert second is not None
    assert second.next_cursor == ExportCursor(OLD + 1)  # past it: back to time-based
    assert [t["id"] for p in (first, second) for t in p.tickets] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("now", "message"),
    [
        (NOW, "check the email and API token"),
        (datetime(2027, 5, 1, tzinfo=UTC).timestamp(), "stopped accepting API tokens"),
    ],
)
def test_a_401_with_an_api_token_after_its_retirement_says_so(now: float, message: str) -> None:
    clock = ManualClock(now)
    server = Server(clock, [error(401, {"error": "Couldn't authenticate you"})])
    with httpx.Client(transport=httpx.MockTransport(server)) as http:
        options = ExportOptions(BASE, auth=ApiTokenAuth("a@b.c", "tok"))
        client = ExportClient(options, http, clock, Metrics())
        with pytest.raises(AuthError, match=message):
            client.fetch_page(ExportCursor(int(now) - 86400))

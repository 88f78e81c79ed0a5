"""The proactive rate budget, backoff with full jitter, and the 504-driven per_page."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.zendesk.backoff import Backoff, PageSize
from producer.zendesk.ratelimit import RateBudget, parse_bucket_header, parse_retry_after


def test_bucket_header_parses() -> None:
    assert parse_bucket_header("total=10; remaining=9; resets=6") == {
        "total": 10,
        "remaining": 9,
        "resets": 6,
    }
    assert parse_bucket_header("garbage; total=x; remaining=3") == {"remaining": 3}


@pytest.mark.parametrize(
    ("value", "seconds"), [("93", 93.0), ("1.5", 1.5), ("-3", 0.0), (None, None), ("soon", None)]
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_first_request_goes_at_once_then_paced_evenly() -> None:
    budget = RateBudget(10, safety_seconds=0.5)
    assert budget.wait_needed(100.0) == 0
    budget.on_request(100.0)
    assert budget.wait_needed(100.0) == pytest.approx(6.05)
    assert budget.wait_needed(103.0) == pytest.approx(3.05)
    assert budget.wait_needed(106.05) == 0


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=11, max_size=40))
def test_paced_requests_never_exceed_the_budget_in_any_window(overshoots: list[float]) -> None:
    """Whatever the sleeps overshoot by, no 60 s window ever holds more than 10 requests."""
    budget = RateBudget(10, safety_seconds=0.5)
    now, sent = 0.0, []
    for extra in overshoots:
        now += budget.wait_needed(now) + extra
        budget.on_request(now)
        sent.append(now)
    for i in range(len(sent) - 10):
        assert sent[i + 10] - sent[i] > 60


def test_high_volume_budget_is_lowered_to_what_the_account_reports() -> None:
    budget = RateBudget(30)
    budget.observe({"zendesk-ratelimit-incremental-exports": "total=10; remaining=5; resets=9"}, 0)
    assert budget.per_minute == 10
    assert budget.interval == pytest.approx(6.0)


def test_exhausted_bucket_blocks_until_it_resets() -> None:
    budget = RateBudget(10)
    header = "total=10; remaining=0; resets=20"
    budget.observe({"Zendesk-RateLimit-Incremental-Exports": header}, 50)
    assert budget.wait_needed(50) == 20
    assert budget.wait_needed(69) == 1


def test_account_reserve_is_left_to_other_integrations() -> None:
    budget = RateBudget(10, reserve_fraction=0.2)
    headers = {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "141", "ratelimit-reset": "12"}
    budget.observe(headers, 0)
    assert budget.wait_needed(0) == 0
    budget.observe({**headers, "X-Rate-Limit-Remaining": "140"}, 0)
    assert budget.wait_needed(0) == 12


def test_account_reserve_without_reset_waits_a_window() -> None:
    budget = RateBudget(10, reserve_fraction=0.1)
    budget.observe({"ratelimit-limit": "200", "ratelimit-remaining": "3"}, 0)
    assert budget.wait_needed(0) == 60


def test_a_limit_no_larger_than_the_export_bucket_is_not_the_account_budget() -> None:
    budget = RateBudget(10, reserve_fraction=0.2)
    budget.observe(
        {
            "X-Rate-Limit": "10",
            "X-Rate-Limit-Remaining": "1",
            "zendesk-ratelimit-incremental-exports": "total=10; remaining=1; resets=6",
        },
        0,
    )
    assert budget.wait_needed(0) == 0


@pytest.mark.parametrize(("retry_after", "wait"), [(93.0, 93.0), (None, 60.0), (0.0, 0.0)])
def test_429_blocks_for_retry_after(retry_after: float | None, wait: float) -> None:
    budget = RateBudget(10)
    budget.on_rate_limited(retry_after, 10)
    assert budget.wait_needed(10) == wait


def test_blocks_only_push_later() -> None:
    budget = RateBudget(10)
    budget.on_rate_limited(30, 0)
    budget.on_rate_limited(5, 0)
    assert budget.wait_needed(0) == 30


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=2**31))
def test_full_jitter_stays_within_the_capped_exponential(attempt: int, seed: int) -> None:
    backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(seed))
    delay = backoff.delay(attempt)
    assert 0 <= delay <= min(60.0, 2.0**attempt)


def test_full_jitter_spreads_delays() -> None:
    backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(1))
    delays = {round(backoff.delay(5), 3) for _ in range(50)}
    assert len(delays) > 40
    assert max(delays) > 16  # not stuck at the bottom of [0, 32]


def test_page_size_halves_to_the_floor_and_grows_back() -> None:
    size = PageSize(maximum=1000, floor=100, grow_after=3)
    seen = []
    for _ in range(5):
        size.on_gateway_timeout()
        seen.append(size.current)
    assert seen == [500, 250, 125, 100, 100]
    grown = []
    for _ in range(12):
        size.on_success()
        grown.append(size.current)
    assert grown == [100, 100, 200, 200, 200, 400, 400, 400, 800, 800, 800, 1000]


def test_a_504_restarts_the_growth_count() -> None:
    size = PageSize(maximum=1000, floor=50, grow_after=2)
    size.on_gateway_timeout()
    size.on_success()
    size.on_gateway_timeout()
    size.on_success()
    assert size.current == 250


@pytest.mark.parametrize("value", ["inf", "1e12", "nan", "-inf"])
def test_absurd_retry_after_never_means_sleeping_forever(value: str) -> None:
    from producer.zendesk.ratelimit import MAX_WAIT, RateBudget, parse_retry_after  # noqa: PLC0415

    seconds = parse_retry_after(value)
    assert seconds is None or 0 <= seconds <= MAX_WAIT
    budget = RateBudget(10)
    budget.on_rate_limited(seconds, now=1000.0)
    budget.observe(
        {"zendesk-ratelimit-incremental-exports": f"total=10; remaining=0; resets={value}",
         "X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "0", "ratelimit-reset": value},
        1000.0,
    )  # fmt: skip
    assert 0 <= budget.wait_needed(1000.0) <= MAX_WAIT

"""The incremental-export rate limiter on an explicit time line."""

from __future__ import annotations

from producer.simulator.ratelimit import RateLimiter


def test_sliding_window_admits_limit_per_60_seconds() -> None:
    limiter = RateLimiter(3)
    assert [limiter.check(t).allowed for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    refused = limiter.check(30.0)
    assert not refused.allowed
    assert refused.reset == 30  # the request at t=0 leaves the window at t=60
    assert limiter.check(60.5).allowed
    assert not limiter.check(60.6).allowed


def test_refused_requests_do_not_consume_the_budget() -> None:
    limiter = RateLimiter(2)
    limiter.check(0.0)
    limiter.check(0.0)
    for t in range(1, 60):
        assert not limiter.check(float(t)).allowed
    assert limiter.check(60.0).allowed
    assert limiter.check(60.0).allowed


def test_remaining_counts_down() -> None:
    limiter = RateLimiter(10)
    assert [limiter.check(float(t)).remaining for t in range(3)] == [9, 8, 7]


def test_fixed_window_resets_on_the_minute() -> None:
    limiter = RateLimiter(2, "fixed")
    assert [limiter.check(t).allowed for t in (0.0, 10.0, 59.0)] == [True, True, False]
    assert limiter.check(59.0).reset == 1
    assert limiter.check(60.0).allowed


def test_disabled_limiter_still_reports_headers() -> None:
    limiter = RateLimiter(1, enabled=False)
    decisions = [limiter.check(0.0) for _ in range(5)]
    assert all(d.allowed for d in decisions)
    assert dict(decisions[0].headers())["X-Rate-Limit"] == "1"

"""The proactive rate budget: when may the next export request go out?

Requests are paced evenly at one per (60 s + safety) / budget, which stays inside every
shape of limiter Zendesk has been seen to use (sliding window, fixed minute, token
bucket). Response headers and 429s can only push the next request later, never earlier.
Pure bookkeeping: the caller passes times in and does the sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

WINDOW = 60.0
DEFAULT_RETRY_AFTER = 60.0  # a 429 without Retry-After: wait out a whole window
# Zendesk has sent Retry-After: 93; anything past this is a broken header, not a plan.
MAX_WAIT = 900.0
INCREMENTAL_HEADER = "zendesk-ratelimit-incremental-exports"


def parse_bucket_header(value: str) -> dict[str, float]:
    """`total=10; remaining=9; resets=6` -> {"total": 10, "remaining": 9, "resets": 6}."""
    result: dict[str, float] = {}
    for part in value.split(";"):
        key, sep, text = part.partition("=")
        if not sep:
            continue
        number = _finite(text.strip())
        if number is not None:
            result[key.strip().lower()] = number
    return result


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _number(headers: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        value = headers.get(name)
        if value is not None and (number := _finite(value)) is not None:
            return number
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; HTTP dates are rare here and read as unknown."""
    if value is None:
        return None
    seconds = _finite(value)
    return None if seconds is None else min(max(0.0, seconds), MAX_WAIT)


class RateBudget:
    def __init__(
        self, requests_per_minute: int, reserve_fraction: float = 0.0, safety_seconds: float = 0.0
    ) -> None:
        self.configured = requests_per_minute
        self.per_minute = float(requests_per_minute)
        self.reserve_fraction = reserve_fraction
        self.safety_seconds = safety_seconds
        self._next_allowed = -math.inf  # pacing
        self._blocked_until = -math.inf  # what the server told us

    @property
    def interval(self) -> float:
        return (WINDOW + self.safety_seconds) / self.per_minute

    def wait_needed(self, now: float) -> float:
        return max(0.0, self._next_allowed - now, self._blocked_until - now)

    def on_request(self, now: float) -> None:
        """A request goes out at `now`: the next one waits a full interval from here."""
        self._next_allowed = now + self.interval

    def on_rate_limited(self, retry_after: float | None, now: float) -> None:
        wait = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
        self._block(now, wait)

    def observe(self, headers: Mapping[str, str], now: float) -> None:
        """Learn from a response's rate-limit headers (names are matched case-insensitively).

        `now` is when the request was sent: the server counts its reset times from then.
        """
        headers = {name.lower(): value for name, value in headers.items()}
        bucket_value = headers.get(INCREMENTAL_HEADER)
        bucket_total = None
        if bucket_value is not None:
            bucket = parse_bucket_header(bucket_value)
            total = bucket_total = bucket.get("total")
            if total is not None and total >= 1:
                # A configured High Volume budget the account does not have would only earn 429s.
                self.per_minute = min(float(self.configured), total)
            remaining = bucket.get("remaining")
            if remaining is not None and remaining <= 0:
                self._block(now, bucket.get("resets", WINDOW))
        limit = _number(headers, "x-rate-limit", "ratelimit-limit")
        remaining = _number(headers, "x-rate-limit-remaining", "ratelimit-remaining")
        if remaining is None:
            return
        if limit is not None and bucket_total is not None and limit <= bucket_total:
            # Every Zendesk plan's account budget (>= 200) exceeds the export bucket (10/30):
            # a limit this small is the export bucket itself, already handled above.
            return
        reserve = math.floor(limit * self.reserve_fraction) if limit is not None else 0
        if remaining <= reserve:
            # The account budget is shared: leave the reserve to other integrations.
            reset = _number(headers, "ratelimit-reset")
            self._block(now, WINDOW if reset is None else reset)

    def _block(self, now: float, wait: float) -> None:
        # a reset far in the future is a broken header: never wait longer than MAX_WAIT
        self._blocked_until = max(self._blocked_until, now + min(max(wait, 0.0), MAX_WAIT))

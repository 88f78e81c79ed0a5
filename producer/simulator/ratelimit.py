"""The incremental-export rate limit (10 per minute by default) on the simulator's clock."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until a slot frees up (or the fixed window ends)

    def headers(self) -> list[tuple[str, str]]:
        """The headers Zendesk sends on export responses (ZENDESK_API.md §3)."""
        return [
            ("X-Rate-Limit", str(self.limit)),
            ("X-Rate-Limit-Remaining", str(self.remaining)),
            ("ratelimit-limit", str(self.limit)),
            ("ratelimit-remaining", str(self.remaining)),
            ("ratelimit-reset", str(self.reset)),
            (
                "zendesk-ratelimit-incremental-exports",
                f"total={self.limit}; remaining={self.remaining}; resets={self.reset}",
            ),
        ]


class RateLimiter:
    """Not thread-safe: the simulator calls it under its own lock.

    Rejected requests do not consume the budget, so a client that honours Retry-After
    gets through right after it.
    """

    def __init__(
        self, limit: int, window: Literal["sliding", "fixed"] = "sliding", enabled: bool = True
    ) -> None:
        self.limit = limit
        self._window = window
        self._enabled = enabled
        self._accepted: deque[float] = deque()
        self._fixed_start = -1
        self._fixed_count = 0

    def check(self, now: float) -> RateDecision:
        if self._window == "fixed":
            return self._check_fixed(now)
        while self._accepted and self._accepted[0] <= now - 60:
            self._accepted.popleft()
        used = len(self._accepted)
        if self._enabled and used >= self.limit:
            reset = max(1, math.ceil(self._accepted[0] + 60 - now))
            return RateDecision(False, self.limit, 0, reset)
        self._accepted.append(now)
        reset = max(1, math.ceil(self._accepted[0] + 60 - now))
        return RateDecision(True, self.limit, max(0, self.limit - used - 1), reset)

    def _check_fixed(self, now: float) -> RateDecision:
        window = int(now // 60)
        if window != self._fixed_start:
            self._fixed_start, self._fixed_count = window, 0
        reset = max(1, math.ceil((window + 1) * 60 - now))
        if self._enabled and self._fixed_count >= self.limit:
            return RateDecision(False, self.limit, 0, reset)
        self._fixed_count += 1
        return RateDecision(True, self.limit, max(0, self.limit - self._fixed_count), reset)

"""Exponential backoff with full jitter, and the per_page that shrinks on 504s."""

from __future__ import annotations

import random


class Backoff:
    """Delay before retry number `attempt` (0-based): uniform in [0, min(cap, base * 2^attempt)].

    Full jitter spreads retries of many clients instead of synchronising them.
    """

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng if rng is not None else random.Random()

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(attempt, 32))
        return self._rng.uniform(0.0, ceiling)


class PageSize:
    """per_page: halved on a 504 down to `floor`, doubled after `grow_after` successes."""

    def __init__(self, maximum: int, floor: int, grow_after: int) -> None:
        self.maximum = maximum
        self.floor = floor
        self.grow_after = grow_after
        self.current = maximum
        self._successes = 0

    def on_gateway_timeout(self) -> None:
        self.current = max(self.floor, self.current // 2)
        self._successes = 0

    def on_success(self) -> None:
        if self.current >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.grow_after:
            self.current = min(self.maximum, self.current * 2)
            self._successes = 0

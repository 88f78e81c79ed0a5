"""Ticket ids bucketed by `generated_timestamp`, so a page costs O(page), not O(tickets)."""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence


class TimestampIndex:
    """Seconds kept sorted; inside a second ids sit in a seeded random order.

    Zendesk orders a second's tickets arbitrarily (not by id); a stable shuffled order
    reproduces that while keeping runs deterministic.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._buckets: dict[int, list[int]] = {}
        self._seconds: list[int] = []

    def add(self, ticket_id: int, second: int) -> None:
        bucket = self._buckets.get(second)
        if bucket is None:
            self._buckets[second] = [ticket_id]
            if not self._seconds or second > self._seconds[-1]:
                self._seconds.append(second)  # the common case: activity at "now"
            else:
                bisect.insort(self._seconds, second)
            return
        bucket.insert(self._rng.randrange(len(bucket) + 1), ticket_id)

    def remove(self, ticket_id: int, second: int) -> None:
        bucket = self._buckets[second]
        bucket.remove(ticket_id)
        if not bucket:
            del self._buckets[second]
            del self._seconds[bisect.bisect_left(self._seconds, second)]

    def move(self, ticket_id: int, old: int, new: int) -> None:
        self.remove(ticket_id, old)
        self.add(ticket_id, new)

    def first_position(self, second: int) -> int:
        """Position of the first second >= `second`, for `second_at`."""
        return bisect.bisect_left(self._seconds, second)

    def second_at(self, position: int) -> int | None:
        return self._seconds[position] if position < len(self._seconds) else None

    def bucket(self, second: int) -> Sequence[int]:
        return self._buckets.get(second, ())

    def __len__(self) -> int:
        return len(self._seconds)

"""Backfill progress for a terminal: the cursor moving toward now, tickets/s and an ETA.

The ETA extrapolates how fast the committed cursor has been moving, which already
reflects the rate budget (pages per minute) and how dense the history is.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from producer.clock import Clock


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class BackfillProgress:
    def __init__(self, clock: Clock, hold_back: float = 60.0) -> None:
        self._clock = clock
        self._start: int | None = None
        self._hold_back = hold_back
        self._started = time.monotonic()
        self.phase = "backfill"

    def line(self, window_start: int, cursor: int, tickets: int, changes: int) -> str:
        """`window_start` of the first page read anchors 0% (a start_time of 0 would not)."""
        if self._start is None:
            self._start = window_start
        wall = max(time.monotonic() - self._started, 1e-6)
        target = self._clock.now() - self._hold_back  # the newest the export can give
        span = max(target - self._start, 1.0)
        done = min(max((cursor - self._start) / span, 0.0), 1.0)
        speed = (cursor - self._start) / wall  # cursor seconds per wall second
        remaining = max(target - cursor, 0.0)
        eta = _duration(remaining / speed) if speed > 0 else "?"
        at = datetime.fromtimestamp(cursor, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"{self.phase} {done:6.1%}  cursor {at}Z  {tickets:>7} tickets "
            f"({tickets / wall:,.0f}/s)  {changes:>7} changes  ETA {eta}"
        )

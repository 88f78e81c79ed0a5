"""Time as a seam: the real clock, and a scaled one that tests and the demo accelerate.

The export client's rate budget, the simulator's hold-back and activity model and the
poller's interval all read time through a `Clock`, so one accelerated clock shared by
simulator and client keeps their notions of "a minute" identical.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait `seconds` of this clock's time; True if `stop` was set meanwhile."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if seconds <= 0:
            return stop.is_set() if stop else False
        if stop is None:
            time.sleep(seconds)
            return False
        return stop.wait(seconds)


class ScaledClock:
    """A clock starting at `start` (unix seconds) that runs `speed` times faster than real time."""

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._origin = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._start + self._offset + (time.monotonic() - self._origin) * self.speed

    def advance(self, seconds: float) -> None:
        """Jump forward instantly (a test moving time without waiting)."""
        with self._lock:
            self._offset += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        real = max(0.0, seconds) / self.speed
        if stop is None:
            time.sleep(real)
            return False
        return stop.wait(real)

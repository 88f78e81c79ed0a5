"""Fault knobs, settable at runtime from Python or from POST /__sim/faults."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ENVELOPE_KEYS = ("end_time", "count", "tickets", "end_of_stream", "next_page")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do to one export response, decided before it is built."""

    status: int | None = None  # answer with this error status instead
    delay: float = 0.0  # real seconds
    truncate: bool = False
    invalid_json: bool = False
    wrong_types: bool = False
    drop_keys: tuple[str, ...] = ()


class Faults:
    """Thread-safe: the admin endpoint and the request threads share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._statuses: deque[int] = deque()
            self._gateway_timeout_over: int | None = None
            self._timeout_over_tickets: int | None = None
            self._delay = 0.0
            self._truncate = 0
            self._invalid_json = 0
            self._wrong_types = 0
            self._drop_next = 0
            self._drop_keys: tuple[str, ...] = ("end_time", "count")

    def fail_next(self, count: int, statuses: Iterable[int] = (500, 502, 503)) -> None:
        """The next `count` export responses fail, cycling through `statuses` (5xx, 409...)."""
        cycle = list(statuses)
        with self._lock:
            self._statuses.extend(cycle[i % len(cycle)] for i in range(count))

    def set(
        self,
        *,
        gateway_timeout_over: int | None = None,
        gateway_timeout_over_tickets: int | None = None,
        delay_seconds: float | None = None,
        truncate_next: int | None = None,
        invalid_json_next: int | None = None,
        wrong_types_next: int | None = None,
        missing_envelope_next: int | None = None,
        missing_envelope_keys: Iterable[str] | None = None,
    ) -> None:
        """Set the given knobs; `gateway_timeout_over=0` switches the 504 threshold off."""
        with self._lock:
            if gateway_timeout_over is not None:
                self._gateway_timeout_over = gateway_timeout_over or None
            if gateway_timeout_over_tickets is not None:
                self._timeout_over_tickets = gateway_timeout_over_tickets or None
            if delay_seconds is not None:
                self._delay = delay_seconds
            if truncate_next is not None:
                self._truncate = truncate_next
            if invalid_json_next is not None:
                self._invalid_json = invalid_json_next
            if wrong_types_next is not None:
                self._wrong_types = wrong_types_next
            if missing_envelope_next is not None:
                self._drop_next = missing_envelope_next
            if missing_envelope_keys is not None:
                keys = tuple(missing_envelope_keys)
                unknown = set(keys) - set(ENVELOPE_KEYS)
                if unknown:
                    raise ValueError(f"unknown envelope keys {sorted(unknown)}")
                self._drop_keys = keys

    def apply_json(self, body: Mapping[str, Any]) -> None:
        """The admin endpoint's body: the keyword names of `set`, plus `fail_next` and `clear`."""
        if body.get("clear"):
            self.clear()
        fail = body.get("fail_next")
        if fail:
            self.fail_next(int(fail["count"]), [int(s) for s in fail.get("statuses", (503,))])
        if body.get("conflict_next"):
            self.fail_next(int(body["conflict_next"]), (409,))
        known = {
            "gateway_timeout_over", "gateway_timeout_over_tickets", "delay_seconds",
            "truncate_next", "invalid_json_next",
            "wrong_types_next", "missing_envelope_next", "missing_envelope_keys",
        }  # fmt: skip
        self.set(**{k: v for k, v in body.items() if k in known})

    def too_large(self, tickets: int) -> bool:
        """A response this large times out (504): Zendesk's "upstream request timeout"
        for big pages, whatever per_page asked for (a same-second expansion)."""
        with self._lock:
            limit = self._timeout_over_tickets
        return limit is not None and tickets > limit

    def plan(self, per_page: int) -> FaultPlan:
        """Consume the faults for one export request."""
        with self._lock:
            delay = self._delay
            if self._statuses:
                return FaultPlan(status=self._statuses.popleft(), delay=delay)
            if self._gateway_timeout_over is not None and per_page > self._gateway_timeout_over:
                return FaultPlan(status=504, delay=delay)
            plan = FaultPlan(
                delay=delay,
                truncate=self._truncate > 0,
                invalid_json=self._invalid_json > 0,
                wrong_types=self._wrong_types > 0,
                drop_keys=self._drop_keys if self._drop_next > 0 else (),
            )
            self._truncate = max(0, self._truncate - 1)
            self._invalid_json = max(0, self._invalid_json - 1)
            self._wrong_types = max(0, self._wrong_types - 1)
            self._drop_next = max(0, self._drop_next - 1)
            return plan

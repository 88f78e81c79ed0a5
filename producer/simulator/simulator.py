"""The simulated Zendesk account: tickets, their history, and how they change over time.

State lives here; `http_api.respond` turns requests into responses over it. Every
timestamp comes from the injected clock, so tests accelerate the whole account at once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from producer.clock import Clock, SystemClock
from producer.simulator import export
from producer.simulator.auth import Authenticator
from producer.simulator.config import SimulatorConfig
from producer.simulator.faults import Faults
from producer.simulator.generator import TicketFactory, iso
from producer.simulator.index import TimestampIndex
from producer.simulator.ratelimit import RateLimiter
from producer.simulator.truth import ChangeOp, ContentChange, GroundTruth, TicketTruth, content_of


@dataclass(frozen=True, slots=True)
class SimRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base_url: str = "http://127.0.0.1"


@dataclass(frozen=True, slots=True)
class SimResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # real seconds to stall before answering (slow-response fault)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    at: float  # simulator clock
    method: str
    path: str
    status: int


class Simulator:
    """Thread-safe: one re-entrant lock guards all state."""

    def __init__(self, config: SimulatorConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.lock = threading.RLock()
        self.faults = Faults()
        self._rng = random.Random(self.config.seed)
        self._factory = TicketFactory(self.config.subdomain, self._rng)
        self._index = TimestampIndex(random.Random(self.config.seed + 1))
        self._tickets: dict[int, dict[str, Any]] = {}
        self._ai_agent: set[int] = set()
        self._changes: list[ContentChange] = []
        self._current_change: dict[int, int] = {}
        self._served: set[int] = set()
        self._requests: list[RequestRecord] = []
        self._next_id = self.config.tickets + 1
        now = self.clock.now()
        self.auth = Authenticator(self.config, now)
        self.rate_limiter = RateLimiter(
            self.config.rate_limit_per_minute,
            self.config.rate_limit_window,
            self.config.rate_limit_enabled,
        )
        self._generate_history(int(now))

    # ----------------------------------------------------------------- history
    def _generate_history(self, now: int) -> None:
        cfg, rng = self.config, self._rng
        newest = now - cfg.hold_back_seconds - 60
        oldest = min(newest, int(now - cfg.history_days * 86400))
        clusters = [rng.randint(oldest, newest) for _ in range(max(1, cfg.tickets // 200))]
        for tid in range(1, cfg.tickets + 1):
            if rng.random() < cfg.clustered_fraction:
                generated = rng.choice(clusters)
            else:
                generated = rng.randint(oldest, newest)
            # system updates leave updated_at behind generated_timestamp
            updated = generated - (rng.randrange(86400) if rng.random() < 0.3 else 0)
            created = updated - rng.randrange(30 * 86400)
            deleted = rng.random() < cfg.deleted_fraction
            ticket = self._factory.ticket(tid, created, updated, generated, deleted=deleted)
            if rng.random() < cfg.ai_agent_fraction:
                self._ai_agent.add(tid)
            self._put(ticket, ChangeOp.DELETE if deleted else ChangeOp.CREATE)

    def _put(self, ticket: dict[str, Any], op: ChangeOp | None) -> None:
        tid, ts = ticket["id"], ticket["generated_timestamp"]
        old = self._tickets.get(tid)
        if old is None:
            self._index.add(tid, ts)
        elif old["generated_timestamp"] != ts:
            self._index.move(tid, old["generated_timestamp"], ts)
        self._tickets[tid] = ticket  # replaced, never mutated: pages encode outside the lock
        if op is not None:
            self._changes.append(ContentChange(tid, op, ts, content_of(ticket)))
            self._current_change[tid] = len(self._changes) - 1

    def _second(self, at: int | None, ticket_id: int | None = None) -> int:
        ts = int(self.clock.now()) if at is None else at
        if ticket_id is not None and ts < self._tickets[ticket_id]["generated_timestamp"]:
            raise ValueError(f"ticket {ticket_id}: generated_timestamp cannot move back to {ts}")
        return ts

    # ---------------------------------------------------------------- activity
    def create(self, *, ai_agent: bool = False, at: int | None = None) -> int:
        """A new ticket; returns its id."""
        with self.lock:
            ts = self._second(at)
            tid = self._next_id
            self._next_id += 1
            self._put(self._factory.ticket(tid, ts, ts, ts), ChangeOp.CREATE)
            if ai_agent:
                self._ai_agent.add(tid)
            return tid

    def update_ticket(
        self, ticket_id: int, *, system_only: bool = False, at: int | None = None
    ) -> int:
        """An agent update (content changes) or a system-only one (only generated_timestamp
        moves, e.g. an SLA recalculation); returns the new generated_timestamp."""
        with self.lock:
            ts = self._second(at, ticket_id)
            old = self._tickets[ticket_id]
            if system_only:
                new = dict(old)
                new["generated_timestamp"] = ts
                self._put(new, None)
            else:
                self._put(self._factory.edit(old, ts), ChangeOp.UPDATE)
            return ts

    def delete(self, ticket_id: int, *, at: int | None = None) -> int:
        """Deleted tickets stay in the export with status "deleted"."""
        with self.lock:
            ts = self._second(at, ticket_id)
            new = dict(self._tickets[ticket_id])
            new["status"] = "deleted"
            new["updated_at"] = iso(ts)
            new["generated_timestamp"] = ts
            self._put(new, ChangeOp.DELETE)
            return ts

    def burst(
        self, count: int, second: int | None = None, *, system_only: bool = False
    ) -> list[int]:
        """`count` tickets updated in one second (a bulk macro or trigger), creating tickets
        if the account has too few; returns their ids."""
        with self.lock:
            ts = self._second(second)
            live = [
                t
                for t, v in self._tickets.items()
                if v["status"] != "deleted"
                and t not in self._ai_agent
                and v["generated_timestamp"] <= ts  # versions never move back in time
            ]
            ids = self._rng.sample(live, min(count, len(live)))
            for tid in ids:
                self.update_ticket(tid, system_only=system_only, at=ts)
            while len(ids) < count:
                ids.append(self.create(at=ts))
            return ids

    def random_event(self) -> None:
        """One event of the live activity model."""
        with self.lock:
            roll = self._rng.random()
            target = self._random_live() if roll >= 0.2 else None
            if target is None:
                self.create(ai_agent=self._rng.random() < self.config.ai_agent_fraction)
            elif roll < 0.65:
                self.update_ticket(target)
            elif roll < 0.92:
                self.update_ticket(target, system_only=True)
            else:
                self.delete(target)

    def _random_live(self) -> int | None:
        """A random ticket that is not deleted, in O(1) expected (most tickets are live)."""
        for _ in range(20):
            ticket = self._tickets.get(self._rng.randrange(1, max(2, self._next_id)))
            if (
                ticket is not None
                and ticket["status"] != "deleted"
                # a test may have placed it in the future: the activity must not move it back
                and ticket["generated_timestamp"] <= self.clock.now()
            ):
                return int(ticket["id"])
        return None

    # ------------------------------------------------------------------- reads
    def ticket(self, ticket_id: int) -> dict[str, Any]:
        with self.lock:
            return dict(self._tickets[ticket_id])

    @property
    def ticket_count(self) -> int:
        with self.lock:
            return len(self._tickets)

    def ground_truth(self) -> GroundTruth:
        with self.lock:
            now = self.clock.now()
            tickets = {
                tid: TicketTruth(
                    t["generated_timestamp"],
                    content_of(t),
                    t["status"] == "deleted",
                    tid in self._ai_agent,
                )
                for tid, t in self._tickets.items()
            }
            return GroundTruth(
                taken_at=now,
                visible_until=int(now) - self.config.hold_back_seconds,
                tickets=tickets,
                changes=tuple(self._changes),
                served=frozenset(self._served),
            )

    def requests(self) -> list[RequestRecord]:
        with self.lock:
            return list(self._requests)

    def requests_per_minute(self, path_prefix: str = "/api/v2/incremental") -> float:
        """Export requests per simulated minute, first to last request (0 with fewer than 2)."""
        with self.lock:
            times = [r.at for r in self._requests if r.path.startswith(path_prefix)]
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) * 60.0 / (times[-1] - times[0])

    def request_count(
        self, *, status: int | None = None, path_prefix: str = "/api/v2/incremental"
    ) -> int:
        with self.lock:
            return sum(
                1
                for r in self._requests
                if r.path.startswith(path_prefix) and (status is None or r.status == status)
            )

    def record(self, request: SimRequest, status: int, at: float) -> None:
        with self.lock:
            self._requests.append(RequestRecord(at, request.method, request.path, status))

    def _accept(self, query: export.ExportQuery) -> export.Accept:
        ai, tickets = self._ai_agent, self._tickets

        def accept(tid: int) -> bool:
            if query.exclude_deleted and tickets[tid]["status"] == "deleted":
                return False
            if query.scope == "all":
                return True
            return (tid in ai) == (query.scope == "ai_agent")

        return accept

    def read_time_page(self, query: export.ExportQuery, now: float) -> export.TimePage:
        with self.lock:
            page = export.time_page(
                self._index,
                self._tickets,
                self._accept(query),
                start_time=query.start_time or 0,
                per_page=query.per_page,
                cutoff=int(now) - self.config.hold_back_seconds,
                legacy_loop=self.config.legacy_loop,
            )
            self._mark_served(page.tickets)
            return page

    def read_cursor_page(
        self, query: export.ExportQuery, now: float
    ) -> tuple[list[export.Ticket], bool]:
        with self.lock:
            items, eos = export.cursor_items(
                self._index,
                self._tickets,
                self._accept(query),
                after=query.cursor,
                start_time=query.start_time or 0,
                per_page=query.per_page,
                cutoff=int(now) - self.config.hold_back_seconds,
            )
            self._mark_served(items)
            return items, eos

    def _mark_served(self, tickets: list[export.Ticket]) -> None:
        for t in tickets:
            self._served.add(self._current_change[t["id"]])

    def handle(self, request: SimRequest) -> SimResponse:
        from producer.simulator.http_api import respond  # noqa: PLC0415 - respond needs Simulator

        return respond(self, request)

"""Read a 25,000-ticket Zendesk history through the export client under the real budget.

The simulator and the client share one accelerated clock, so "10 requests per minute"
means the same to both. Prints pages, tickets, requests per minute against the budget,
429s and time (simulated and wall):

    python -m bench export_read [--speed 10] [--tickets 25000] [--burst 2500] [--legacy]

The acceptance test in tests/integration/test_export_client_acceptance.py runs `run()`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from producer.clock import ScaledClock
from producer.metrics import Metrics
from producer.model import ExportCursor
from producer.simulator import Observed, Simulator, SimulatorConfig, SimulatorServer
from producer.zendesk import ApiTokenAuth, ExportClient, ExportOptions

EXPORT_PREFIX = "/api/v2/incremental"


@dataclass(frozen=True, slots=True)
class Scenario:
    tickets: int = 25_000
    burst: int = 2_500  # tickets updated in one second, more than a page
    updates: int = 1_500  # agent updates (content changes)
    system_updates: int = 1_500  # only generated_timestamp moves
    deletions: int = 300
    legacy_loop: bool = False  # the server loops on a full second: the client must fall back
    # A 3 MB page takes 0.1-0.3 s of real time: any faster and latency, not the budget, limits.
    speed: float = 10.0
    requests_per_minute: int = 10
    seed: int = 7


@dataclass(frozen=True, slots=True)
class Result:
    pages: int
    tickets_read: int  # repeats across pages included
    distinct_tickets: int
    requests: int
    requests_429: int
    cursor_export_requests: int
    requests_per_minute: float
    budget_per_minute: int
    sim_seconds: float
    wall_seconds: float
    latest_missed: list[int]
    changes_missed: int

    def lines(self) -> list[str]:
        share = self.requests_per_minute / self.budget_per_minute
        return [
            f"pages                 {self.pages}",
            f"tickets read          {self.tickets_read} ({self.distinct_tickets} distinct)",
            f"requests              {self.requests} ({self.cursor_export_requests} cursor export)",
            f"requests per minute   {self.requests_per_minute:.2f} of {self.budget_per_minute}"
            f" ({share:.1%})",
            f"429s                  {self.requests_429}",
            f"missed                {len(self.latest_missed)} latest, "
            f"{self.changes_missed} changes",
            f"elapsed               {self.sim_seconds:.0f} s simulated, "
            f"{self.wall_seconds:.1f} s wall",
        ]


def build(scenario: Scenario) -> tuple[Simulator, ScaledClock]:
    """A history of creations, then agent and system updates, deletions and one burst."""
    clock = ScaledClock(speed=scenario.speed)
    config = SimulatorConfig(
        tickets=scenario.tickets,
        seed=scenario.seed,
        legacy_loop=scenario.legacy_loop,
        rate_limit_per_minute=scenario.requests_per_minute,
    )
    sim = Simulator(config, clock)
    start = int(clock.now())
    clock.advance(7200)  # room after the generated history for the activity below
    rng = random.Random(scenario.seed)
    events = scenario.updates + scenario.system_updates + scenario.deletions
    seconds = sorted(rng.randrange(start, start + 6000) for _ in range(events))
    kinds = ["update"] * scenario.updates + ["system"] * scenario.system_updates
    kinds += ["delete"] * scenario.deletions
    rng.shuffle(kinds)
    burst_at = start + 3000
    burst_done = False
    for at, kind in zip(seconds, kinds, strict=True):
        if not burst_done and at >= burst_at:
            sim.burst(scenario.burst, burst_at)
            burst_done = True
        tid = rng.randrange(1, scenario.tickets + 1)
        if sim.ticket(tid)["status"] == "deleted":
            continue
        if kind == "delete":
            sim.delete(tid, at=at)
        else:
            sim.update_ticket(tid, system_only=kind == "system", at=at)
    if not burst_done:
        sim.burst(scenario.burst, burst_at)
    return sim, clock


def read_all(
    sim: Simulator, clock: ScaledClock, base_url: str, scenario: Scenario
) -> tuple[list[Observed], int, Metrics]:
    cfg = sim.config
    options = ExportOptions(
        base_url,
        auth=ApiTokenAuth(cfg.email, cfg.api_token),
        requests_per_minute=scenario.requests_per_minute,
        rate_safety_seconds=1.0,  # absorbs scheduling jitter between client and simulator
    )
    metrics = Metrics()
    observed: list[Observed] = []
    pages = 0
    with httpx.Client() as http:
        client = ExportClient(options, http, clock, metrics)
        for page in client.pages(ExportCursor(0)):
            pages += 1
            observed.extend(
                Observed(int(t["id"]), int(t["generated_timestamp"]), t) for t in page.tickets
            )
    return observed, pages, metrics


def run(scenario: Scenario) -> Result:
    sim, clock = build(scenario)
    with SimulatorServer(sim) as server:
        wall, sim_start = time.perf_counter(), clock.now()
        observed, pages, metrics = read_all(sim, clock, server.base_url, scenario)
        wall_seconds, sim_seconds = time.perf_counter() - wall, clock.now() - sim_start
    truth = sim.ground_truth()
    export_requests = [r for r in sim.requests() if r.path.startswith(EXPORT_PREFIX)]
    span = export_requests[-1].at - export_requests[0].at if len(export_requests) > 1 else 0.0
    cursor_requests = metrics.registry.get_sample_value(
        "zendesk_cdc_api_requests_total",
        {"endpoint": "incremental_tickets_cursor", "status": "2xx"},
    )
    return Result(
        pages=pages,
        tickets_read=len(observed),
        distinct_tickets=len({o.ticket_id for o in observed}),
        requests=len(export_requests),
        requests_429=sum(1 for r in export_requests if r.status == 429),
        cursor_export_requests=int(cursor_requests or 0),
        requests_per_minute=(len(export_requests) - 1) / span * 60 if span else 0.0,
        budget_per_minute=scenario.requests_per_minute,
        sim_seconds=sim_seconds,
        wall_seconds=wall_seconds,
        latest_missed=truth.latest_missed(observed),
        changes_missed=len(truth.missed(observed)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Scenario()
    parser = argparse.ArgumentParser(prog="bench export_read", description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=defaults.tickets)
    parser.add_argument("--burst", type=int, default=defaults.burst)
    parser.add_argument("--speed", type=float, default=defaults.speed)
    parser.add_argument("--budget", type=int, default=defaults.requests_per_minute)
    parser.add_argument("--legacy", action="store_true", help="legacy loop: stuck-second fallback")
    args = parser.parse_args(argv)
    scenario = Scenario(
        tickets=args.tickets,
        burst=args.burst,
        speed=args.speed,
        requests_per_minute=args.budget,
        legacy_loop=args.legacy,
    )
    print(f"export_read: {scenario}")
    result = run(scenario)
    for line in result.lines():
        print(line)
    return 0 if not result.latest_missed and not result.changes_missed else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The simulator is fast enough for 25,000-ticket acceptance runs (limits are generous: CI
machines are shared; the measured figures are in the simulator's report)."""

from __future__ import annotations

import json
import time

from producer.clock import ScaledClock
from producer.simulator import Simulator, SimulatorConfig
from producer.simulator.export import parse_query


def test_generate_25k_and_serve_a_1000_ticket_page_quickly() -> None:
    started = time.perf_counter()
    sim = Simulator(SimulatorConfig(tickets=25_000), ScaledClock(start=1_790_000_000.0))
    generated = time.perf_counter() - started
    query = parse_query((("start_time", "0"),), per_page_max=1000, cursor_mode=False)
    # a page deep in the history costs the same as the first: the index makes it O(page)
    last = max(sim.ticket(i)["generated_timestamp"] for i in range(1, 25_001))
    timings = []
    for start in (0, last - 86400):
        started = time.perf_counter()
        page = sim.read_time_page(
            query.__class__(start, None, 1000, (), False, "all"), sim.clock.now()
        )
        body = json.dumps({"tickets": page.tickets}, ensure_ascii=False, separators=(",", ":"))
        timings.append(time.perf_counter() - started)
        assert len(page.tickets) >= 500
    assert len(body) > 1_000_000
    assert generated < 4.0, f"25k tickets took {generated:.2f}s"
    assert max(timings) < 0.25, f"a 1000-ticket page took {max(timings):.3f}s"

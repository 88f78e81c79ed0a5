"""How fast the built-in Zendesk generates a history and builds pages (prints figures).

    python -m bench simulator [--tickets 25000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from producer.clock import ScaledClock
from producer.simulator import Simulator, SimulatorConfig
from producer.simulator.export import ExportQuery


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="bench simulator")
    parser.add_argument("--tickets", type=int, default=25_000)
    args = parser.parse_args(list(argv))

    started = time.perf_counter()
    sim = Simulator(SimulatorConfig(tickets=args.tickets), ScaledClock(start=1_790_000_000.0))
    generated = time.perf_counter() - started
    print(f"generate {args.tickets} tickets: {generated:.2f} s")

    last = max(sim.ticket(i)["generated_timestamp"] for i in range(1, args.tickets + 1))
    # a page deep in the history should cost the same as the first: the index is O(page)
    for label, start in (("first page", 0), ("page a day before the end", last - 86400)):
        query = ExportQuery(start, None, 1000, (), False, "all")
        started = time.perf_counter()
        page = sim.read_time_page(query, sim.clock.now())
        body = json.dumps({"tickets": page.tickets}, ensure_ascii=False, separators=(",", ":"))
        took = time.perf_counter() - started
        print(
            f"{label}: {len(page.tickets)} tickets, {len(body) / 1e6:.1f} MB JSON, "
            f"built and encoded in {took * 1000:.0f} ms"
        )
    return 0

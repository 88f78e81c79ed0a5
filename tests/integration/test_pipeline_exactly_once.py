"""The whole pipeline in process: simulator over TCP, embedded broker, accelerated clock.

Every test reads back what Kafka committed and audits it against the simulator's ground
truth: each real change exactly once, nothing for boundary repeats or system updates.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from producer.metrics import Metrics
from producer.service import build_service
from tests.integration.conftest import RunningSimulator, SimulatorFactory
from tests.integration.pipeline_support import (
    audit,
    pipeline_settings,
    read_published,
    versions_published_twice,
)

pytestmark = pytest.mark.kafka

SPEED = 600.0  # ten simulated minutes per real second: the 10 requests/minute budget is quick
PER_PAGE = 200


def _live_ids(running: RunningSimulator, count: int, rng: random.Random) -> list[int]:
    truth = running.sim.ground_truth()
    live = sorted(t for t, v in truth.tickets.items() if not v.deleted)
    return rng.sample(live, count)


def _let_hold_back_pass(running: RunningSimulator) -> None:
    running.clock.advance(running.sim.config.hold_back_seconds + 5)


def test_full_history_then_live_changes_publish_each_real_change_once(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    running = simulator_factory(
        speed=SPEED, tickets=3000, seed=11, clustered_fraction=0.3, deleted_fraction=0.05
    )
    sim, clock = running.sim, running.clock
    # a bulk update in one second, larger than a page: the server expands that page
    burst_second = int(clock.now()) - sim.config.hold_back_seconds - 30
    burst = sim.burst(PER_PAGE + 50, burst_second)
    settings = pipeline_settings(
        running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("full"),
        per_page=PER_PAGE,
    )  # fmt: skip
    rng = random.Random(5)
    with build_service(settings, stop=threading.Event(), clock=clock, metrics=Metrics()) as svc:
        poller = svc.poller
        poller.start()
        poller.drain()
        backfill = poller.progress
        backfill_pages, duplicates = backfill.pages, backfill.skipped["duplicate"]
        assert backfill_pages > 3000 // PER_PAGE  # many pages, cut inside shared seconds
        assert duplicates > 0  # boundary repeats happened and were skipped

        # after the backfill: system-only updates, real updates, deletes, creates
        picked = _live_ids(running, 70, rng)
        system_only, updated, deleted = picked[:40], picked[40:65], picked[65:]
        system_versions = {(t, sim.update_ticket(t, system_only=True)) for t in system_only}
        for t in updated:
            sim.update_ticket(t)
        for t in deleted:
            sim.delete(t)
        created = [sim.create() for _ in range(5)]
        _let_hold_back_pass(running)
        unchanged_before = poller.progress.skipped["unchanged"]
        published_before = sum(poller.progress.published.values())
        poller.drain()
        live = poller.progress
        assert live.skipped["unchanged"] - unchanged_before == len(system_only)
        assert sum(live.published.values()) - published_before == (
            len(updated) + len(deleted) + len(created)
        )

    truth = sim.ground_truth()
    published = read_published(settings)
    observed = published.observed()
    result = audit(truth, observed)
    assert result.missed == []
    assert result.repeated == []
    assert result.unexplained == []
    assert versions_published_twice(observed) == []
    seen = {(o.ticket_id, o.generated_timestamp) for o in observed}
    assert not system_versions & seen  # no record for a system-only update
    assert set(burst) <= {o.ticket_id for o in observed if o.generated_timestamp == burst_second}
    # every real change the export served is on the topic once, and nothing else is
    assert len(observed) == len(result.per_change) == len(truth.served)

"""The whole pipeline in process: simulator over TCP, embedded broker, accelerated clock.

Every test reads back what Kafka committed and audits it against the simulator's ground
truth: each real change exactly once, nothing for boundary repeats or system updates.
"""

from __future__ import annotations

import random
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from producer.metrics import Metrics
from producer.service import build_service
from tests.integration.conftest import RunningSimulator, SimulatorFactory
from tests.integration.pipeline_support import (
    audit,
    checkpoints,
    pipeline_settings,
    read_published,
    run_pipeline,
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


def _small(simulator_factory: SimulatorFactory, **config: object) -> RunningSimulator:
    return simulator_factory(speed=SPEED, tickets=1000, clustered_fraction=0.3, **config)


def test_restart_resumes_from_the_committed_cursor_without_republishing(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    running = _small(simulator_factory, seed=21)
    settings = pipeline_settings(
        running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("restart"),
        per_page=PER_PAGE,
    )  # fmt: skip
    first = run_pipeline(settings, running.clock)
    assert sum(first.progress.published.values()) > 0
    before = read_published(settings).records
    assert checkpoints(settings)[-1].cursor == first.cursor

    # nothing new: a second service picks up the committed cursor and publishes nothing
    _let_hold_back_pass(running)
    again = run_pipeline(settings, running.clock)
    assert again.start_cursor == first.cursor == checkpoints(settings)[-1].cursor
    assert sum(again.progress.published.values()) == 0
    assert again.progress.skipped["duplicate"] > 0  # it re-read the cursor's second...
    assert again.progress.tickets < first.progress.tickets  # ...not the history
    assert read_published(settings).records == before

    # real changes while it was down are published by the next one, once
    changed = _live_ids(running, 12, random.Random(1))
    for t in changed:
        running.sim.update_ticket(t)
    _let_hold_back_pass(running)
    third = run_pipeline(settings, running.clock)
    assert third.progress.published == {"update": len(changed)}
    after = read_published(settings)
    assert set(before) <= set(after.records)  # what was there stays, nothing re-sent
    assert len(after.records) == len(before) + len(changed)
    result = audit(running.sim.ground_truth(), after.observed())
    assert result.exactly_once, result


def test_lost_local_store_is_rebuilt_from_the_changelog_and_nothing_is_republished(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    running = _small(simulator_factory, seed=31)
    state = tmp_path / "state"
    settings = pipeline_settings(
        running.base_url, kafka_bootstrap, state, unique_name("wiped"), per_page=PER_PAGE
    )
    first = run_pipeline(settings, running.clock)
    before = read_published(settings).records

    shutil.rmtree(state)  # the pod was rescheduled onto an empty volume
    with build_service(
        settings, stop=threading.Event(), clock=running.clock, metrics=Metrics()
    ) as svc:
        svc.poller.start()
        assert svc.store.entries() == first.store_entries  # rebuilt before the first page
        assert svc.poller.cursor == first.cursor
        svc.poller.drain()
        assert sum(svc.poller.progress.published.values()) == 0
        assert read_published(settings).records == before

        ticket = _live_ids(running, 1, random.Random(2))[0]
        version = running.sim.update_ticket(ticket)
        _let_hold_back_pass(running)
        svc.poller.drain()
        assert svc.poller.progress.published == {"update": 1}

    after = read_published(settings)
    old = set(before)
    new = [
        (int(v["ticket"]["id"]), int(v["ticket"]["generated_timestamp"]))
        for r, v in zip(after.records, after.values, strict=True)
        if r not in old and v is not None
    ]
    assert new == [(ticket, version)]
    assert len(after.records) == len(before) + 1
    assert audit(running.sim.ground_truth(), after.observed()).exactly_once


@pytest.mark.parametrize("tombstones", [True, False])
def test_deletes_publish_a_delete_record_then_a_tombstone(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    tombstones: bool,
) -> None:
    running = _small(simulator_factory, seed=41, deleted_fraction=0.1)
    settings = pipeline_settings(
        running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("deletes"),
        per_page=PER_PAGE, tombstones=tombstones,
    )  # fmt: skip
    with build_service(
        settings, stop=threading.Event(), clock=running.clock, metrics=Metrics()
    ) as svc:
        svc.poller.start()
        svc.poller.drain()
        # deletes of tickets consumers already know, after the backfill
        live_deleted = _live_ids(running, 5, random.Random(3))
        for t in live_deleted:
            running.sim.delete(t)
        _let_hold_back_pass(running)
        svc.poller.drain()

    published = read_published(settings)
    truth = running.sim.ground_truth()
    deleted = {t for t, v in truth.tickets.items() if v.deleted}
    assert set(live_deleted) <= deleted
    by_key: dict[tuple[int, bytes | None], list[dict[str, object] | None]] = {}
    for record, value in zip(published.records, published.values, strict=True):
        by_key.setdefault((record.partition, record.key), []).append(value)
    delete_keys = 0
    for (_, key), values in by_key.items():
        ops = ["tombstone" if v is None else str(v["op"]) for v in values]
        if "delete" not in ops:
            assert "tombstone" not in ops, key
            continue
        delete_keys += 1
        expected = ["delete", "tombstone"] if tombstones else ["delete"]
        assert ops[ops.index("delete") :] == expected, (key, ops)
    assert delete_keys == len(deleted)
    tombstone_count = sum(1 for v in published.values if v is None)
    assert tombstone_count == (len(deleted) if tombstones else 0)
    assert published.ops()["delete"] == len(deleted)
    assert audit(truth, published.observed()).exactly_once

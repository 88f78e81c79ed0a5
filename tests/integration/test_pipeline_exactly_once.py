"""The whole pipeline in process: simulator over TCP, embedded broker, accelerated clock.

Every test reads back what Kafka committed and audits it against the simulator's ground
truth: each real change exactly once, nothing for boundary repeats or system updates.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from producer.metrics import Metrics
from producer.model import ExportMode
from producer.service import build_service
from producer.simulator.export import ExportQuery, TimePage
from producer.zendesk.client import CURSOR_PATH, TIME_PATH
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


def _subject_a_number(running: RunningSimulator, position: int) -> list[dict[str, Any]]:
    """Damage one ticket of the next time-based page: its subject becomes a number."""
    real = running.sim.read_time_page
    damaged: list[dict[str, Any]] = []

    def read(query: ExportQuery, now: float) -> TimePage:
        page = real(query, now)
        if damaged or len(page.tickets) <= position:
            return page
        bad = {**page.tickets[position], "subject": 12345}
        damaged.append(bad)
        tickets = [*page.tickets[:position], bad, *page.tickets[position + 1 :]]
        return dataclasses.replace(page, tickets=tickets)

    running.sim.read_time_page = read  # type: ignore[method-assign]
    return damaged


@pytest.mark.parametrize("fault", ["wrong_types", "subject_a_number"])
def test_unencodable_ticket_is_dead_lettered_and_its_page_commits(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    fault: str,
) -> None:
    running = _small(simulator_factory, seed=51)
    damaged: list[dict[str, Any]] = []
    if fault == "wrong_types":
        # the simulator's knob: the first ticket of the next page gets a string id and a
        # numeric subject, so it cannot even be planned
        running.sim.faults.set(wrong_types_next=1)
    else:
        # a readable ticket the Avro mapping refuses, in the middle of the first page
        damaged = _subject_a_number(running, PER_PAGE // 2)
    settings = pipeline_settings(
        running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("dlq"),
        per_page=PER_PAGE,
    )  # fmt: skip
    run = run_pipeline(settings, running.clock)
    assert run.progress.dead_lettered == 1

    letters = read_published(settings, settings.dead_letters).changes
    assert len(letters) == 1
    letter = letters[0]
    raw = json.loads(letter["raw_json"])
    assert raw["subject"] == 12345
    assert letter["account"] == settings.account
    assert letter["reason"]
    if fault == "wrong_types":
        ticket_id = int(raw["id"])
        assert raw["id"] == str(ticket_id)
        assert letter["ticket_id"] is None
    else:
        ticket_id = int(damaged[0]["id"])
        assert raw == damaged[0]
        assert letter["ticket_id"] == ticket_id
        assert letter["generated_timestamp"] == damaged[0]["generated_timestamp"]
        assert "subject" in letter["reason"]

    # the page committed: the cursor moved past it, and every other change is published
    first = checkpoints(settings)[0]
    assert first.cursor.start_time > 0
    truth = running.sim.ground_truth()
    observed = read_published(settings).observed()
    assert ticket_id not in {o.ticket_id for o in observed}
    assert [c.ticket_id for c in audit(truth, observed).missed] == [ticket_id]
    assert audit(truth, observed, ignore=[ticket_id]).exactly_once


def _burst_and_live_changes(running: RunningSimulator) -> None:
    """A same-second burst larger than a page, then system-only and real updates."""
    sim = running.sim
    burst = set(sim.burst(PER_PAGE + 50, int(running.clock.now()) - 90))
    # tickets outside the burst, so a system-only update is the only news about them
    picked = [t for t in _live_ids(running, 30 + len(burst), random.Random(7)) if t not in burst]
    picked = picked[:30]
    for t in picked[:15]:
        sim.update_ticket(t, system_only=True)
    for t in picked[15:]:
        sim.update_ticket(t)
    _let_hold_back_pass(running)


def test_cursor_mode_for_a_whole_run_is_exactly_once(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    running = _small(simulator_factory, seed=71)
    settings = pipeline_settings(
        running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("cursor"),
        per_page=PER_PAGE, export_mode="cursor",
    )  # fmt: skip
    with build_service(
        settings, stop=threading.Event(), clock=running.clock, metrics=Metrics()
    ) as svc:
        svc.poller.start()
        svc.poller.drain()
        _burst_and_live_changes(running)
        svc.poller.drain()
        assert svc.poller.progress.skipped["unchanged"] == 15

    paths = {r.path.removesuffix(".json") for r in running.sim.requests()}
    assert paths == {CURSOR_PATH}
    checkpoint = checkpoints(settings)[-1]
    assert checkpoint.cursor.mode is ExportMode.CURSOR
    assert checkpoint.cursor.after_cursor is not None
    observed = read_published(settings).observed()
    result = audit(running.sim.ground_truth(), observed)
    assert result.exactly_once, result
    assert versions_published_twice(observed) == []


def test_legacy_looping_server_is_read_through_the_cursor_fallback_exactly_once(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    running = _small(simulator_factory, seed=81, legacy_loop=True)
    _burst_and_live_changes(running)
    settings = pipeline_settings(
        running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("legacy"),
        per_page=PER_PAGE,
    )  # fmt: skip
    run = run_pipeline(settings, running.clock)
    assert run.cursor is not None
    assert run.cursor.mode is ExportMode.TIME

    paths = Counter(r.path.removesuffix(".json") for r in running.sim.requests())
    assert paths[TIME_PATH] > 0
    assert paths[CURSOR_PATH] > 0
    observed = read_published(settings).observed()
    result = audit(running.sim.ground_truth(), observed)
    assert result.exactly_once, result
    assert versions_published_twice(observed) == []

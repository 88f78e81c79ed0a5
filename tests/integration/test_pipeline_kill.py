"""SIGKILL the producer process anywhere around a commit; a restart loses and repeats nothing.

The service runs as a subprocess (the real `zendesk-cdc run` CLI, through the test entry
point of `pipeline_support`, which can kill itself at a precise point of the k-th
transaction); the simulator runs here, on the real clock, so its ground truth is at hand.
What Kafka committed is read with `read_topic` (read_committed semantics applied by us).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from producer.config import Settings
from tests.integration.conftest import RunningSimulator, SimulatorFactory
from tests.integration.pipeline_support import (
    KILL_ENV,
    audit,
    checkpoints,
    pipeline_settings,
    read_published,
    settings_env,
    versions_published_twice,
)

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
TICKETS = 600
PER_PAGE = 100  # ~7 pages, paced at 100 requests/minute: a run takes a few seconds
RUN_TIMEOUT = 60.0


_spawned: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_leftover_services() -> Iterator[None]:
    """A failed test must not leave a service running against the shared broker."""
    yield
    while _spawned:
        proc = _spawned.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=RUN_TIMEOUT)


def _service(settings: Settings, kill_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings_env(settings)}
    env.pop(KILL_ENV, None)
    if kill_at is not None:
        env[KILL_ENV] = kill_at
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.pipeline_support", "run", "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    _spawned.append(proc)
    return proc


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    return proc.returncode, out.decode(errors="replace")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    code, out = _finish(proc)
    assert code == -signal.SIGKILL, out


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while not condition():
        assert proc.poll() is None, "the service ended before the kill point"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.02)


@pytest.fixture
def world(
    simulator_factory: SimulatorFactory,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> tuple[RunningSimulator, Settings]:
    # real time on both sides: the history is already past the hold-back
    running = simulator_factory(
        tickets=TICKETS, seed=61, clustered_fraction=0.4, rate_limit_per_minute=100
    )
    settings = pipeline_settings(
        running.base_url, kafka_bootstrap, tmp_path / "state", unique_name("killed"),
        per_page=PER_PAGE, requests_per_minute=100, poll_interval_seconds=1.0,
    )  # fmt: skip
    return running, settings


def _restart_and_audit(running: RunningSimulator, settings: Settings) -> None:
    # changes made while the service was down, in the visible past: new tickets, and
    # updates of tickets already on the topic (a version read only by the killed process
    # and then superseded is rightly never published, so the audit would misread it)
    sim = running.sim
    at = int(running.clock.now()) - sim.config.hold_back_seconds - 30
    live = {t for t, v in sim.ground_truth().tickets.items() if not v.deleted}
    on_topic = sorted({o.ticket_id for o in read_published(settings).observed()} & live)
    changed = [sim.create(at=at) for _ in range(3)]
    changed += [t for t in on_topic[:3] if sim.update_ticket(t, at=at)]
    code, out = _finish(_service(settings))
    assert code == 0, out
    observed = read_published(settings).observed()
    result = audit(sim.ground_truth(), observed)
    assert result.missed == []
    assert result.repeated == []
    assert result.unexplained == []
    assert versions_published_twice(observed) == []
    assert {o.ticket_id for o in observed if o.generated_timestamp == at} >= set(changed)
    sequences = [c.sequence for c in checkpoints(settings)]
    assert sequences == list(range(len(sequences)))  # no commit lost or made twice


def _offsets_log_end(settings: Settings) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": settings.account,
            "isolation.level": "read_uncommitted",  # the log end, open transactions included
        }
    )
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(settings.offsets, 0), timeout=10)
        return int(high)
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("point", "committed", "open_checkpoint"),
    [
        ("before", 2, False),  # killed entering the 3rd transaction: nothing of it produced
        ("during", 2, True),  # 3rd transaction's records on the broker, never committed
        ("after", 3, False),  # 3rd committed; local store and cursor not advanced
    ],
)
def test_sigkill_around_a_commit_then_restart_is_exactly_once(
    world: tuple[RunningSimulator, Settings], point: str, committed: int, open_checkpoint: bool
) -> None:
    running, settings = world
    code, out = _finish(_service(settings, kill_at=f"{point}:3"))
    assert code == -signal.SIGKILL, out
    assert len(checkpoints(settings)) == committed
    # the offsets log holds a checkpoint and a commit marker per committed transaction,
    # plus the dead transaction's checkpoint when it died with its records produced
    assert _offsets_log_end(settings) == 2 * committed + open_checkpoint
    _restart_and_audit(running, settings)


def test_sigkill_right_after_start_then_restart_is_exactly_once(
    world: tuple[RunningSimulator, Settings],
) -> None:
    running, settings = world
    proc = _service(settings)
    # the first export request is out: start-up is done, the first page in flight
    _wait_for(lambda: running.sim.request_count() >= 1, proc)
    _kill(proc)
    _restart_and_audit(running, settings)


def test_sigkill_after_commits_seen_on_the_offsets_topic_then_restart_is_exactly_once(
    world: tuple[RunningSimulator, Settings],
) -> None:
    running, settings = world
    proc = _service(settings)
    _wait_for(lambda: len(checkpoints(settings)) >= 2, proc)
    _kill(proc)
    _restart_and_audit(running, settings)

"""The exactly-once audit itself must catch what it exists to catch (no broker needed)."""

from __future__ import annotations

from producer.clock import ScaledClock
from producer.simulator import Observed, Simulator, SimulatorConfig
from tests.integration.pipeline_support import audit, versions_published_twice


def _account() -> tuple[Simulator, ScaledClock]:
    clock = ScaledClock(speed=1.0)
    return Simulator(SimulatorConfig(tickets=20, seed=3, deleted_fraction=0.0), clock), clock


def _everything(sim: Simulator) -> list[Observed]:
    # what a perfect reader publishes: each ticket's current content once
    truth = sim.ground_truth()
    return [Observed(t, v.generated_timestamp, dict(v.content)) for t, v in truth.tickets.items()]


def test_a_perfect_reader_passes() -> None:
    sim, _ = _account()
    assert audit(sim.ground_truth(), _everything(sim)).exactly_once


def test_a_missing_change_a_repeat_and_a_system_only_record_are_each_caught() -> None:
    sim, clock = _account()
    observed = _everything(sim)
    base = int(clock.now()) - 65  # past the hold-back: exportable, so due
    sim.update_ticket(1, system_only=True, at=base)  # moves the version, not the content
    sim.update_ticket(2, at=base)  # a real change nobody published
    truth = sim.ground_truth()
    one = next(o for o in observed if o.ticket_id == 1)
    system_only = Observed(1, base, {**dict(one.content or {}), "generated_timestamp": base})
    three = next(o for o in observed if o.ticket_id == 3)

    result = audit(truth, [*observed, system_only, three])
    assert [c.ticket_id for c in result.missed] == [2]
    assert sorted(c.ticket_id for c in result.repeated) == [1, 3]
    assert result.unexplained == []
    assert not result.exactly_once
    assert versions_published_twice([*observed, three]) == [(3, three.generated_timestamp)]


def test_a_record_with_content_that_never_existed_is_unexplained() -> None:
    sim, _ = _account()
    observed = _everything(sim)
    forged = Observed(4, observed[3].generated_timestamp, {"id": 4, "subject": "never sent"})
    result = audit(sim.ground_truth(), [*observed, forged])
    assert result.unexplained == [forged]

"""Acceptance: a 25,000-ticket history read under the enforced 10-per-minute budget.

Simulator and client share one accelerated clock (bench/export_read.py, same scenario):
every ticket's latest version arrives, nothing is missed against the ground truth, no
429 is earned, and the request rate never exceeds the budget.

How close the rate comes to the budget is a speed figure, so it is reported by the bench
(`python -m bench export_read`), not asserted here: on an accelerated clock, a loaded
machine's scheduling jitter is multiplied by the speed-up. That requests are paced at
exactly the budget is asserted deterministically, on a fake clock, in
tests/unit/test_zendesk_ratelimit.py.
"""

from __future__ import annotations

import pytest

from bench.export_read import Result, Scenario, run


def check(result: Result, scenario: Scenario) -> None:
    assert result.latest_missed == []
    assert result.changes_missed == 0
    assert result.distinct_tickets == scenario.tickets
    assert result.requests_429 == 0
    assert result.requests_per_minute <= scenario.requests_per_minute


@pytest.mark.slow
def test_full_history_under_the_budget() -> None:
    scenario = Scenario()
    result = run(scenario)
    check(result, scenario)
    assert result.cursor_export_requests == 0  # the server expands the burst second itself
    assert result.tickets_read > result.distinct_tickets  # page-boundary repeats are kept


@pytest.mark.slow
def test_legacy_loop_history_under_the_budget() -> None:
    scenario = Scenario(tickets=10_000, updates=600, system_updates=600, legacy_loop=True)
    result = run(scenario)
    check(result, scenario)
    assert result.cursor_export_requests >= 3  # 2,500 tickets of one second, 1,000 a page

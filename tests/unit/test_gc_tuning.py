"""The collector tuning: less frequent, start-up objects frozen, cycles still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from producer.gc_tuning import GEN0_THRESHOLD, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_tuning_raises_gen0_threshold_and_freezes_start_up_objects() -> None:
    tune_collector()
    assert gc.get_threshold()[0] == GEN0_THRESHOLD
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()


@pytest.mark.usefixtures("restored_collector")
def test_a_cycle_is_still_collected_without_being_asked() -> None:
    tune_collector()

    class Node:
        other: Node

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # reference counting alone cannot free a cycle
    kept: list[list[int]] = [
        [] for _ in range(GEN0_THRESHOLD + 1_000)
    ]  # allocations past the threshold
    assert gone() is None, "the gen-0 collection did not run"
    assert len(kept) > GEN0_THRESHOLD

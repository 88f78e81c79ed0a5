"""The Store contract, run against every implementation (MemoryStore and SqliteStore).

Positions only move forward: the changelog replay yields increasing offsets per
partition, so applying a smaller one (a replay) leaves the position where it is.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.model import Version
from producer.store import MemoryStore, Store
from producer.store_sqlite import SqliteStore

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

StoreFactory = Callable[[Path], Store]
FACTORIES: dict[str, StoreFactory] = {
    "memory": lambda _dir: MemoryStore(),
    "sqlite": lambda directory: SqliteStore.open(directory / "store.db"),
}


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> StoreFactory:
    made: StoreFactory = FACTORIES[request.param]
    return made


@pytest.fixture
def store(factory: StoreFactory, tmp_path: Path) -> Iterator[Store]:
    opened = factory(tmp_path)
    yield opened
    opened.close()


def test_a_new_store_is_empty(store: Store) -> None:
    assert store.lookup([1, 2, 3]) == {}
    assert store.changelog_positions() == {}
    assert store.entries() == 0


def test_lookup_returns_only_known_ids(store: Store) -> None:
    store.apply({10: Version(100, 1), 20: Version(200, 2)}, {})
    assert store.lookup([10, 15, 20, 25]) == {10: Version(100, 1), 20: Version(200, 2)}
    assert store.lookup([15]) == {}


def test_lookup_tolerates_repeated_ids_and_any_iterable(store: Store) -> None:
    store.apply({7: Version(1, 2)}, {})
    assert store.lookup(iter([7, 7, 8, 7])) == {7: Version(1, 2)}


def test_apply_overwrites_the_previous_version(store: Store) -> None:
    store.apply({5: Version(100, 1)}, {})
    store.apply({5: Version(90, 9)}, {})  # the planner decides; the store just records
    assert store.lookup([5]) == {5: Version(90, 9)}
    assert store.entries() == 1


@pytest.mark.parametrize("size", [0, 1, 1000])
def test_batches_of_any_size_round_trip(store: Store, size: int) -> None:
    updates = {1_000_000 + 37 * k: Version(1_700_000_000 + k, k * 7919 - 500) for k in range(size)}
    store.apply(updates, {0: size})
    assert store.lookup(updates) == updates
    assert store.entries() == size
    assert store.changelog_positions() == {0: size}


def test_an_empty_apply_changes_nothing(store: Store) -> None:
    store.apply({1: Version(1, 1)}, {0: 3})
    store.apply({}, {})
    assert store.lookup([1]) == {1: Version(1, 1)}
    assert store.changelog_positions() == {0: 3}


def test_a_page_larger_than_the_parameter_limit(store: Store) -> None:
    # A same-second expansion can put far more than 1,000 tickets on one page.
    updates = {k: Version(k, -k) for k in range(1, 40_001)}
    store.apply(updates, {})
    assert store.lookup(updates) == updates
    assert store.entries() == 40_000


def test_reapplying_the_same_batch_is_idempotent(store: Store) -> None:
    updates = {3: Version(30, 3), 4: Version(40, 4)}
    store.apply(updates, {0: 2, 1: 5})
    store.apply(updates, {0: 2, 1: 5})
    assert store.lookup([3, 4]) == updates
    assert store.entries() == 2
    assert store.changelog_positions() == {0: 2, 1: 5}


def test_positions_only_move_forward(store: Store) -> None:
    store.apply({}, {0: 10, 1: 4})
    store.apply({1: Version(1, 1)}, {0: 7, 1: 9, 2: 1})
    assert store.changelog_positions() == {0: 10, 1: 9, 2: 1}


def test_extreme_ids_and_negative_fingerprints_round_trip(store: Store) -> None:
    updates = {
        INT64_MAX: Version(2**40, INT64_MIN),
        1: Version(0, INT64_MAX),
        999_999_999: Version(1_760_000_000, -1),
    }
    store.apply(updates, {0: INT64_MAX})
    assert store.lookup([INT64_MAX, 1, 999_999_999]) == updates
    assert store.changelog_positions() == {0: INT64_MAX}


@pytest.mark.parametrize(
    ("updates", "positions"),
    [
        ({2**63: Version(1, 1)}, {}),
        ({1: Version(1, 2**63)}, {}),
        ({1: Version(-(2**63) - 1, 1)}, {}),
        ({1: Version(1, 1)}, {0: 2**63}),
        ({1: Version(1, 1)}, {2**63: 0}),
    ],
)
def test_numbers_outside_int64_are_refused_and_nothing_is_written(
    store: Store, updates: dict[int, Version], positions: dict[int, int]
) -> None:
    store.apply({1: Version(0, 0)}, {0: 1})
    with pytest.raises(ValueError, match="64-bit"):
        store.apply({7: Version(7, 7), **updates}, {1: 5, **positions})
    assert store.lookup([1, 7]) == {1: Version(0, 0)}
    assert store.changelog_positions() == {0: 1}
    assert store.entries() == 1


def test_ids_outside_int64_are_simply_not_found(store: Store) -> None:
    store.apply({INT64_MAX: Version(1, 1)}, {})
    assert store.lookup([INT64_MAX, 2**63, -(2**63) - 1, 2**70]) == {INT64_MAX: Version(1, 1)}


def test_entries_counts_distinct_tickets(store: Store) -> None:
    store.apply({1: Version(1, 1), 2: Version(1, 1)}, {})
    store.apply({2: Version(2, 2), 3: Version(1, 1)}, {})
    assert store.entries() == 3


int64 = st.integers(INT64_MIN, INT64_MAX)
ticket_ids = st.integers(1, INT64_MAX) | st.integers(1, 50)  # collide often, reach the edge
versions = st.builds(Version, st.integers(0, 2**40), int64)
batches = st.tuples(
    st.dictionaries(ticket_ids, versions, max_size=30),
    st.dictionaries(st.integers(0, 7), st.integers(0, 2**62), max_size=4),
)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
@settings(max_examples=60, deadline=None)
@given(history=st.lists(batches, max_size=12), probe=st.lists(ticket_ids, max_size=20))
def test_any_sequence_of_applies_equals_a_dict_model(
    kind: str, history: list[tuple[dict[int, Version], dict[int, int]]], probe: list[int]
) -> None:
    versions_model: dict[int, Version] = {}
    positions_model: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as directory:
        store = FACTORIES[kind](Path(directory))
        try:
            for updates, positions in history:
                store.apply(updates, positions)
                versions_model.update(updates)
                for partition, offset in positions.items():
                    positions_model[partition] = max(offset, positions_model.get(partition, 0))
            asked = [*versions_model, *probe]
            expected = {i: versions_model[i] for i in asked if i in versions_model}
            assert store.lookup(asked) == expected
            assert store.changelog_positions() == positions_model
            assert store.entries() == len(versions_model)
        finally:
            store.close()

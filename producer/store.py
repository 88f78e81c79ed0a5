"""The compact store: ticket id -> Version (generated_timestamp, content fingerprint).

`Store` is the protocol the poller and the state restore rely on; implementations
live beside it. Every change applied here was first committed to the changelog topic
in the same Kafka transaction as the records, so the store can always be rebuilt
from Kafka; `changelog_positions` says how far it has been.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from producer.model import Version

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_int64(updates: Mapping[int, Version], changelog_positions: Mapping[int, int]) -> None:
    """Every number a store keeps is a signed 64-bit integer, as in Kafka and SQLite.

    Checked before anything is written, so a bad batch changes nothing in any store.
    """
    numbers = (
        *updates,
        *(v.generated_timestamp for v in updates.values()),
        *(v.fingerprint for v in updates.values()),
        *changelog_positions,
        *changelog_positions.values(),
    )
    if numbers and (min(numbers) < INT64_MIN or max(numbers) > INT64_MAX):
        raise ValueError("store values must be signed 64-bit integers")


class Store(Protocol):
    def lookup(self, ticket_ids: Iterable[int]) -> dict[int, Version]:
        """The known versions of those tickets that are in the store (a batch per page)."""
        ...

    def apply(self, updates: Mapping[int, Version], changelog_positions: Mapping[int, int]) -> None:
        """Write updates and the changelog positions they reach, atomically and durably.

        `changelog_positions` maps changelog partition -> next offset to read; a
        position only moves forward (a smaller offset is a replay and is ignored).
        Raises ValueError, writing nothing, if a number does not fit a signed int64.
        """
        ...

    def changelog_positions(self) -> dict[int, int]:
        """Changelog partition -> next offset not yet applied (empty for a new store)."""
        ...

    def entries(self) -> int: ...

    def size_bytes(self) -> int: ...

    def close(self) -> None: ...


class MemoryStore:
    """A faithful in-memory Store, for unit tests of the planner and poller."""

    def __init__(self) -> None:
        self._versions: dict[int, Version] = {}
        self._positions: dict[int, int] = {}

    def lookup(self, ticket_ids: Iterable[int]) -> dict[int, Version]:
        return {i: self._versions[i] for i in ticket_ids if i in self._versions}

    def apply(self, updates: Mapping[int, Version], changelog_positions: Mapping[int, int]) -> None:
        check_int64(updates, changelog_positions)
        self._versions.update(updates)
        for partition, offset in changelog_positions.items():
            self._positions[partition] = max(offset, self._positions.get(partition, offset))

    def changelog_positions(self) -> dict[int, int]:
        return dict(self._positions)

    def entries(self) -> int:
        return len(self._versions)

    def size_bytes(self) -> int:
        return 0

    def close(self) -> None:
        pass

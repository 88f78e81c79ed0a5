"""What really happened in the simulated account, for tests to check a reader against.

Only content changes are history; a system-only update moves `generated_timestamp` and
nothing else, so it is not a change a downstream consumer should see.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Content = Mapping[str, Any]


class ChangeOp(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


def content_of(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """A ticket's content: everything but the version stamp."""
    return {k: v for k, v in ticket.items() if k != "generated_timestamp"}


@dataclass(frozen=True, slots=True)
class ContentChange:
    ticket_id: int
    op: ChangeOp
    generated_timestamp: int
    content: Content


@dataclass(frozen=True, slots=True)
class TicketTruth:
    generated_timestamp: int  # the version the export currently returns
    content: Content
    deleted: bool
    ai_agent: bool


@dataclass(frozen=True, slots=True)
class Observed:
    """One ticket version a reader saw or published; content None means "do not compare"."""

    ticket_id: int
    generated_timestamp: int
    content: Content | None = None


@dataclass(frozen=True, slots=True)
class GroundTruth:
    taken_at: float  # simulator clock
    visible_until: int  # the hold-back: versions newer than this are not exported yet
    tickets: Mapping[int, TicketTruth]
    changes: tuple[ContentChange, ...]
    served: frozenset[int]  # indexes into `changes` the export returned at least once

    def missed(
        self,
        observed: Iterable[Observed],
        *,
        ai_agent: bool = True,
        deleted: bool = True,
    ) -> list[ContentChange]:
        """Real changes a reader should have seen but did not.

        A change is due if the export served it, or if it is its ticket's current content
        and currently exportable. An observation matches a change when it is of the same
        ticket, its version lies between that change and the ticket's next content change,
        and (when given) its content is equal. Pass ai_agent=False for a reader using
        support_type_scope=agent, deleted=False for one using exclude_deleted.
        """
        seen: dict[int, list[Observed]] = defaultdict(list)
        for obs in observed:
            seen[obs.ticket_id].append(obs)
        next_ts: dict[int, float] = {}
        missed: list[ContentChange] = []
        for i in range(len(self.changes) - 1, -1, -1):
            change = self.changes[i]
            upper = next_ts.get(change.ticket_id, float("inf"))
            next_ts[change.ticket_id] = change.generated_timestamp
            if not self._due(i, change, latest=upper == float("inf")):
                continue
            if (not ai_agent and self.tickets[change.ticket_id].ai_agent) or (
                not deleted and change.op is ChangeOp.DELETE
            ):
                continue
            if not any(_matches(o, change, upper) for o in seen.get(change.ticket_id, ())):
                missed.append(change)
        missed.reverse()
        return missed

    def latest_missed(self, observed: Iterable[Observed]) -> list[int]:
        """Ids of exportable tickets whose current content no observation carries."""
        best: dict[int, list[Observed]] = defaultdict(list)
        for obs in observed:
            best[obs.ticket_id].append(obs)
        out = []
        for tid, truth in self.tickets.items():
            if truth.generated_timestamp > self.visible_until:
                continue
            if not any(
                o.content is None or content_of(o.content) == truth.content for o in best[tid]
            ):
                out.append(tid)
        return sorted(out)

    def _due(self, i: int, change: ContentChange, *, latest: bool) -> bool:
        if i in self.served:
            return True
        truth = self.tickets[change.ticket_id]
        return latest and truth.generated_timestamp <= self.visible_until


def _matches(obs: Observed, change: ContentChange, upper: float) -> bool:
    if not change.generated_timestamp <= obs.generated_timestamp < upper:
        return False
    return obs.content is None or content_of(obs.content) == change.content

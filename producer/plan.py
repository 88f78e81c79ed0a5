"""PURE: which tickets on an export page are real changes, given the store's view.

The poller asks `plan_page` what to do and then does it; nothing here does I/O.

Rules (issue 3, "Change detection"):
- Repeats of one ticket inside a page collapse to the highest `generated_timestamp`
  (ties: the higher `updated_stamp` if a payload ever carries one, else the later
  occurrence); every other occurrence is skipped as "duplicate".
- The version is `generated_timestamp`. `updated_stamp` is write-only in the real API
  and `Version` has no room for it, so it only breaks ties inside a page and is kept
  out of the fingerprint (it moves without a content change).
- Against the store: publish iff the fingerprint differs AND the version is not older.
  Otherwise skip: "stale" (older than stored), "duplicate" (same version and
  fingerprint: a page-boundary repeat or a replay), "unchanged" (newer version, same
  fingerprint: a system-only update; the store's version still advances).
- `updated_at` is never consulted: it misses system updates.
- Op: status "deleted" is always a "delete" (also for a ticket first seen already
  deleted: consumers get its last content and a tombstone rather than a create they
  would have to undo); otherwise "create" for a ticket new to the store, else
  "update". A deleted ticket whose content changes again (e.g. scrubbed) is another
  "delete". Deletes are followed by a tombstone unless `tombstones=False`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from producer.errors import CdcError, CursorStuckError
from producer.fingerprint import fingerprint
from producer.model import ExportCursor, ExportPage, MalformedTicket, RawTicket, Version

DELETED_STATUS = "deleted"


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class SkipReason(StrEnum):
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"
    STALE = "stale"


class CursorRegressionError(CdcError):
    """The page's next cursor lies before the cursor it was requested with."""

    def __init__(self, start_time: int, next_start_time: int) -> None:
        super().__init__(f"export cursor moves back from {start_time} to {next_start_time}")
        self.start_time = start_time
        self.next_start_time = next_start_time


@dataclass(frozen=True, slots=True)
class Change:
    """One ticket change to publish."""

    op: Op
    ticket: RawTicket
    version: Version
    tombstone: bool  # publish a null value for the key after the delete record


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...]  # to publish, in export order
    skipped: Counter[str]  # SkipReason value -> count
    store_updates: Mapping[int, Version]  # includes versions advanced by "unchanged"
    next_cursor: ExportCursor
    malformed: tuple[MalformedTicket, ...] = field(default=())


def check_cursor(page: ExportPage) -> None:
    """Raise on a next cursor that moves back, or that stands still mid-stream."""
    start, nxt = page.start, page.next_cursor
    if nxt.start_time < start.start_time:
        raise CursorRegressionError(start.start_time, nxt.start_time)
    if nxt == start and not page.end_of_stream:
        raise CursorStuckError(start.start_time)


def _tie_stamp(ticket: RawTicket) -> str:
    stamp = ticket.get("updated_stamp")
    return stamp if isinstance(stamp, str) else ""


def _latest_per_ticket(tickets: tuple[RawTicket, ...]) -> tuple[dict[int, int], int]:
    """ticket id -> index of the occurrence to keep, and how many were collapsed."""
    keep: dict[int, int] = {}
    for index, ticket in enumerate(tickets):
        ticket_id = int(ticket["id"])
        previous = keep.get(ticket_id)
        if previous is None:
            keep[ticket_id] = index
            continue
        old = tickets[previous]
        new_key = (int(ticket["generated_timestamp"]), _tie_stamp(ticket))
        old_key = (int(old["generated_timestamp"]), _tie_stamp(old))
        if new_key >= old_key:  # ties go to the later occurrence
            keep[ticket_id] = index
    return keep, len(tickets) - len(keep)


def plan_page(page: ExportPage, known: Mapping[int, Version], *, tombstones: bool = True) -> Plan:
    """Decide what to publish for `page`, given the store's versions of its tickets."""
    check_cursor(page)
    keep, collapsed = _latest_per_ticket(page.tickets)
    skipped: Counter[str] = Counter()
    if collapsed:
        skipped[SkipReason.DUPLICATE.value] += collapsed
    changes: list[Change] = []
    updates: dict[int, Version] = {}

    for ticket_id, index in sorted(keep.items(), key=lambda item: item[1]):
        ticket = page.tickets[index]
        version = Version(int(ticket["generated_timestamp"]), fingerprint(ticket))
        deleted = ticket.get("status") == DELETED_STATUS
        stored = known.get(ticket_id)
        if stored is not None:
            if version.generated_timestamp < stored.generated_timestamp:
                skipped[SkipReason.STALE.value] += 1
                continue
            if version.fingerprint == stored.fingerprint:
                if version.generated_timestamp == stored.generated_timestamp:
                    skipped[SkipReason.DUPLICATE.value] += 1
                else:
                    skipped[SkipReason.UNCHANGED.value] += 1
                    updates[ticket_id] = version
                continue
        if deleted:
            op = Op.DELETE
        elif stored is None:
            op = Op.CREATE
        else:
            op = Op.UPDATE
        changes.append(Change(op, ticket, version, tombstones and op is Op.DELETE))
        updates[ticket_id] = version

    return Plan(
        changes=tuple(changes),
        skipped=skipped,
        store_updates=updates,
        next_cursor=page.next_cursor,
        malformed=page.malformed,
    )

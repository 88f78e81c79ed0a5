"""Plain data shared by the export client, the planner, the codec and the sink.

Pure: no I/O and no third-party imports, so every layer can depend on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# A ticket exactly as the export returned it: unknown fields are kept.
# A ticket as the export sent it, after `zendesk.parse`: unknown fields kept, `id` and
# `generated_timestamp` int64, and every number finite (a ticket holding 1e400 is
# dead-lettered there), so orjson can write any part of it without loss.
RawTicket = Mapping[str, Any]


class ExportMode(StrEnum):
    TIME = "time"  # /api/v2/incremental/tickets, cursor = start_time
    CURSOR = "cursor"  # /api/v2/incremental/tickets/cursor, cursor = after_cursor


@dataclass(frozen=True, slots=True)
class ExportCursor:
    """Where the next export request starts; this is what is checkpointed in Kafka.

    In time mode only `start_time` matters. `after_cursor` is set while reading through
    the cursor-based export: for a whole cursor-mode run, or while getting past one stuck
    second in time mode (then `start_time` is that second and time-based paging resumes
    at `start_time + 1` once the cursor export has moved past it).
    """

    start_time: int
    after_cursor: str | None = None
    mode: ExportMode = ExportMode.TIME

    def to_json(self) -> str:
        return json.dumps(
            {"start_time": self.start_time, "after_cursor": self.after_cursor, "mode": self.mode},
            separators=(",", ":"),
        )

    def in_mode(self, mode: ExportMode) -> ExportCursor:
        """The same position read through the other export, losslessly.

        Both exports take `start_time` inclusively, so restarting a second (or the
        stuck second of a fallback) from its start repeats tickets, which the planner
        skips, and loses none.
        """
        if mode is self.mode:
            return self
        return ExportCursor(self.start_time, None, mode)

    @classmethod
    def from_json(cls, text: str | bytes) -> ExportCursor:
        data = json.loads(text)
        return cls(int(data["start_time"]), data.get("after_cursor"), ExportMode(data["mode"]))


@dataclass(frozen=True, slots=True)
class MalformedTicket:
    """One ticket on an otherwise valid page that cannot be read (missing id, bad types)."""

    ticket_id: int | None
    reason: str
    raw_json: str


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One validated page of the incremental export."""

    tickets: tuple[RawTicket, ...]
    start: ExportCursor  # the cursor this page was requested with
    next_cursor: ExportCursor  # where the following request starts
    end_of_stream: bool
    fetched_at: float  # unix seconds, when the response arrived
    malformed: tuple[MalformedTicket, ...] = ()
    sideloads: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ticket_ids(self) -> list[int]:
        return [int(t["id"]) for t in self.tickets]


@dataclass(frozen=True, slots=True)
class Version:
    """What the compact store remembers of a ticket: enough to tell a real change."""

    generated_timestamp: int
    fingerprint: int  # 64-bit hash of the canonical content, as a signed int64

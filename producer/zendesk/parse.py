"""Validate export responses into typed pages. Pure: bytes in, model objects out.

An envelope that is not what the API documents raises MalformedResponseError and the
cursor stays; a single unreadable ticket becomes a MalformedTicket so the rest of the
page still moves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from producer.errors import MalformedResponseError
from producer.model import ExportCursor, ExportPage, MalformedTicket, RawTicket

TIME_ENVELOPE = frozenset({"tickets", "count", "end_time", "end_of_stream", "next_page"})
CURSOR_ENVELOPE = frozenset(
    {"tickets", "after_cursor", "after_url", "before_cursor", "before_url", "end_of_stream"}
)


@dataclass(frozen=True, slots=True)
class CursorEnvelope:
    """One validated page of the cursor-based export, before the client decides the cursor."""

    tickets: tuple[RawTicket, ...]
    malformed: tuple[MalformedTicket, ...]
    after_cursor: str | None
    end_of_stream: bool
    sideloads: Mapping[str, Any]

    @property
    def last_timestamp(self) -> int | None:
        return max((int(t["generated_timestamp"]) for t in self.tickets), default=None)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int64(value: object) -> bool:
    # ids and versions become Avro longs and store keys: beyond int64 they cannot be kept
    return _is_int(value) and -(2**63) <= value < 2**63  # type: ignore[operator]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# orjson reads an integer beyond 64 bits as a float (silently inexact), and any run of
# 19+ digits may be one; such a body, or one orjson refuses, goes to the standard parser.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19
_NOT_READ = object()


def _load_fast(body: bytes) -> Any:
    """orjson's reading when it is exactly the standard parser's, else _NOT_READ."""
    if _NINETEEN_DIGITS in body.translate(_DIGITS_TO_ZERO):  # ~2 ms on a 3 MB page
        return _NOT_READ
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # NaN, 1e400, a lone surrogate, not UTF-8: let json judge
        return _NOT_READ


def _read_json(body: bytes) -> tuple[Any, bool]:
    """The JSON value, and whether it may hold an infinity (only json can yield one)."""
    data = _load_fast(body)
    if data is not _NOT_READ:
        return data, False
    # NaN and Infinity are not JSON; accepting them would make content unhashable
    return json.loads(body, parse_constant=_reject_constant), True


def load_json(body: bytes) -> Any:
    """The JSON value of `body`, as `json.loads` reads it, but without NaN or Infinity.

    orjson reads the common case about twice as fast; whatever it might read
    differently (see `_load_fast`) is read by the standard library, so the result
    never depends on which parser ran. ValueError if the body is not JSON.
    """
    return _read_json(body)[0]


def _load(body: bytes) -> tuple[dict[str, Any], bool]:
    try:
        data, maybe_infinite = _read_json(body)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = exc.__class__.__name__
        raise MalformedResponseError(f"response is not valid JSON ({kind})") from exc
    except RecursionError as exc:  # past orjson's 1,024 levels, json runs out of stack
        raise MalformedResponseError("response nests too deeply to read") from exc
    if not isinstance(data, dict):
        raise MalformedResponseError("response is not a JSON object")
    return data, maybe_infinite


def _holds_infinity(value: Any) -> bool:
    if type(value) is float:
        return not math.isfinite(value)
    if type(value) is dict:
        return any(_holds_infinity(v) for v in value.values())
    if type(value) is list:
        return any(_holds_infinity(v) for v in value)
    return False


def _end_of_stream(data: Mapping[str, Any], empty: bool, *, empty_ends: bool) -> bool:
    """`empty_ends`: an empty page ends the stream whatever it says (safe in time mode,
    where the cursor stays put; not in the cursor export, where it would skip ahead)."""
    value = data.get("end_of_stream")
    if value is not None and not isinstance(value, bool):
        raise MalformedResponseError("end_of_stream is not a boolean")
    if empty and (empty_ends or value is None):
        return True  # nothing came back (nulls are allowed): nothing more to read now
    if value is None:
        raise MalformedResponseError("end_of_stream is missing")
    return value


def _raw(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def split_tickets(
    items: list[Any], *, maybe_infinite: bool = False
) -> tuple[tuple[RawTicket, ...], tuple[MalformedTicket, ...]]:
    """Readable tickets (unknown fields kept) and the ones to dead-letter, each with a reason.

    `maybe_infinite`: the page was read by json, so a number too large for a double
    (1e400) may have become an infinity. Such a ticket is dead-lettered: an infinity is
    not JSON, and orjson would write it as null, so its fingerprint would not change.
    """
    good: list[RawTicket] = []
    bad: list[MalformedTicket] = []
    for item in items:
        if not isinstance(item, dict):
            bad.append(MalformedTicket(None, "ticket is not a JSON object", _raw(item)))
            continue
        ticket_id = item.get("id")
        if not _is_int64(ticket_id):
            bad.append(MalformedTicket(None, "ticket has no 64-bit integer id", _raw(item)))
        elif not _is_int64(item.get("generated_timestamp")):
            reason = "ticket has no 64-bit integer generated_timestamp"
            bad.append(MalformedTicket(ticket_id, reason, _raw(item)))
        elif maybe_infinite and _holds_infinity(item):
            reason = "ticket holds a number beyond the range of a double (such as 1e400)"
            bad.append(MalformedTicket(ticket_id, reason, _raw(item)))
        else:
            good.append(item)
    return tuple(good), tuple(bad)


def _tickets(data: Mapping[str, Any]) -> list[Any]:
    tickets = data.get("tickets")
    if not isinstance(tickets, list):
        raise MalformedResponseError("tickets is missing or not a list")
    return tickets


def _sideloads(data: Mapping[str, Any], envelope: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in envelope}


def parse_time_page(body: bytes, start: ExportCursor, fetched_at: float) -> ExportPage:
    """A time-based export page; `next_cursor` is `end_time` (the cursor stays on an empty page)."""
    data, maybe_infinite = _load(body)
    items = _tickets(data)
    count = data.get("count")
    if not _is_int(count):
        raise MalformedResponseError("count is missing or not an integer")
    if count != len(items):
        raise MalformedResponseError(f"count {count} does not match {len(items)} tickets")
    end_time = data.get("end_time")
    if end_time is None and items:
        raise MalformedResponseError("end_time is missing on a page with tickets")
    if end_time is not None and not _is_int(end_time):
        raise MalformedResponseError("end_time is not an integer")
    if end_time is not None and items and end_time < start.start_time:
        raise MalformedResponseError(f"end_time {end_time} is before start_time {start.start_time}")
    good, bad = split_tickets(items, maybe_infinite=maybe_infinite)
    # An empty page that says it is not the end and names a later end_time (a window
    # emptied by a filter such as exclude_deleted) moves on; any other empty page means
    # "nothing more for now" and the cursor stays.
    skip_empty = (
        not items
        and end_time is not None
        and end_time > start.start_time
        and data.get("end_of_stream") is False
    )
    moves = bool(items or skip_empty) and end_time is not None
    return ExportPage(
        tickets=good,
        start=start,
        next_cursor=ExportCursor(end_time) if moves and end_time is not None else start,
        end_of_stream=not skip_empty and _end_of_stream(data, empty=not items, empty_ends=True),
        fetched_at=fetched_at,
        malformed=bad,
        sideloads=_sideloads(data, TIME_ENVELOPE),
    )


def parse_cursor_page(body: bytes) -> CursorEnvelope:
    data, maybe_infinite = _load(body)
    items = _tickets(data)
    after = data.get("after_cursor")
    if after is not None and not isinstance(after, str):
        raise MalformedResponseError("after_cursor is not a string")
    good, bad = split_tickets(items, maybe_infinite=maybe_infinite)
    return CursorEnvelope(
        tickets=good,
        malformed=bad,
        after_cursor=after,
        end_of_stream=_end_of_stream(data, empty=not items, empty_ends=False),
        sideloads=_sideloads(data, CURSOR_ENVELOPE),
    )

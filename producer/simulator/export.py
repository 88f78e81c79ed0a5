"""Pure paging semantics of the time-based and cursor-based incremental exports.

The rules reproduce the observed server (ZENDESK_API.md §1, §8); nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from producer.simulator.index import TimestampIndex

Ticket = Mapping[str, Any]
Accept = Callable[[int], bool]
SCOPES = ("agent", "ai_agent", "all")


class QueryError(Exception):
    """A request Zendesk answers with a 4xx JSON error."""

    def __init__(self, status: int, body: Mapping[str, str]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class ExportQuery:
    start_time: int | None
    cursor: tuple[int, int] | None  # (generated_timestamp, id) to read strictly after
    per_page: int
    include: tuple[str, ...]
    exclude_deleted: bool
    scope: str


def parse_query(
    params: Sequence[tuple[str, str]], *, per_page_max: int, cursor_mode: bool
) -> ExportQuery:
    args = dict(params)
    cursor = None
    start_time: int | None = None
    if cursor_mode and "cursor" in args:
        cursor = decode_cursor(args["cursor"])
    elif "start_time" not in args:
        raise QueryError(400, {"error": "InvalidValue", "description": "start_time is required"})
    else:
        try:
            start_time = int(args["start_time"])
        except ValueError:
            raise QueryError(
                400, {"error": "InvalidValue", "description": "start_time must be an integer"}
            ) from None
        if start_time < 0:
            raise QueryError(400, {"error": "InvalidValue", "description": "start_time < 0"})
    try:
        per_page = int(args.get("per_page", per_page_max))
    except ValueError:
        per_page = per_page_max  # Zendesk ignores a garbled per_page
    per_page = min(max(per_page, 1), per_page_max)
    include = tuple(p.strip() for p in args.get("include", "").split(",") if p.strip())
    scope = args.get("support_type_scope", "agent")
    if scope not in SCOPES:
        raise QueryError(
            400, {"error": "InvalidValue", "description": f"support_type_scope must be {SCOPES}"}
        )
    exclude_deleted = args.get("exclude_deleted", "false").lower() == "true"
    return ExportQuery(start_time, cursor, per_page, include, exclude_deleted, scope)


@dataclass(frozen=True, slots=True)
class TimePage:
    tickets: list[Ticket]
    end_time: int | None
    end_of_stream: bool


def time_page(
    index: TimestampIndex,
    tickets: Mapping[int, Ticket],
    accept: Accept,
    *,
    start_time: int,
    per_page: int,
    cutoff: int,
    legacy_loop: bool,
) -> TimePage:
    """Tickets with start_time <= generated_timestamp <= cutoff, per_page at most, unless
    the whole page is one second: then every ticket of it and end_time = second + 1."""
    items: list[Ticket] = []
    pos = index.first_position(start_time)
    while len(items) < per_page:
        second = index.second_at(pos)
        if second is None or second > cutoff:
            break
        for tid in index.bucket(second):
            if accept(tid):
                items.append(tickets[tid])
                if len(items) == per_page:
                    break
        pos += 1
    if not items:
        return TimePage([], None, True)
    full = len(items) == per_page
    first, last = items[0]["generated_timestamp"], items[-1]["generated_timestamp"]
    end_time = last
    if full and first == last and not legacy_loop:
        items = [tickets[tid] for tid in index.bucket(last) if accept(tid)]
        end_time = last + 1
    # the end_of_stream rule is judged on the page before the same-second expansion
    return TimePage(items, end_time, not full)


def cursor_items(
    index: TimestampIndex,
    tickets: Mapping[int, Ticket],
    accept: Accept,
    *,
    after: tuple[int, int] | None,
    start_time: int,
    per_page: int,
    cutoff: int,
) -> tuple[list[Ticket], bool]:
    """Exactly per_page tickets in (generated_timestamp, id) order, and end_of_stream."""
    items: list[Ticket] = []
    first_second = after[0] if after else start_time
    pos = index.first_position(first_second)
    while len(items) <= per_page:
        second = index.second_at(pos)
        if second is None or second > cutoff:
            break
        ids = sorted(index.bucket(second))
        if after is not None and second == after[0]:
            ids = [i for i in ids if i > after[1]]
        for tid in ids:
            if accept(tid):
                items.append(tickets[tid])
                if len(items) > per_page:
                    break
        pos += 1
    return items[:per_page], len(items) <= per_page


def encode_cursor(second: int, ticket_id: int) -> str:
    """Opaque to clients; the observed format is base64 of "{ts}.0||{id}|"."""
    return base64.b64encode(f"{second}.0||{ticket_id}|".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = cursor.replace("-", "+").replace("_", "/")
        text = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True).decode()
        ts, _, rest = text.partition("||")
        return int(float(ts)), int(rest.rstrip("|"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryError(
            400, {"error": "InvalidPaginationParameter", "description": "cursor is invalid"}
        ) from None


def with_param(base: str, params: Sequence[tuple[str, str]], name: str, value: str) -> str:
    """The same URL with one parameter set, every other parameter kept in order."""
    out = [(k, v) for k, v in params if k != name]
    if name == "cursor":
        out = [(k, v) for k, v in out if k != "start_time"]
    out.append((name, value))
    return f"{base}?{urlencode(out)}"


def time_envelope(
    page: TimePage,
    sideloaded: Mapping[str, Any],
    *,
    url: str,
    params: Sequence[tuple[str, str]],
    start_time: int,
    empty_nulls: bool,
) -> dict[str, Any]:
    end_time = page.end_time
    if end_time is None and not empty_nulls:
        end_time = start_time
    next_page = None if end_time is None else with_param(url, params, "start_time", str(end_time))
    return {
        "tickets": page.tickets,
        **sideloaded,
        "next_page": next_page,
        "count": len(page.tickets),
        "end_of_stream": page.end_of_stream,
        "end_time": end_time,
    }


def cursor_envelope(
    items: list[Ticket],
    end_of_stream: bool,
    sideloaded: Mapping[str, Any],
    *,
    url: str,
    params: Sequence[tuple[str, str]],
    query: ExportQuery,
) -> dict[str, Any]:
    after: str
    before: str | None
    if items:
        after, before = _cursor_of(items[-1]), _cursor_of(items[0])
    else:
        # nothing new: hand back a cursor that resumes where this request started
        c = query.cursor or (query.start_time or 0, 0)
        after, before = encode_cursor(*c), None
    return {
        "tickets": items,
        **sideloaded,
        "after_url": with_param(url, params, "cursor", after),
        "after_cursor": after,
        "before_url": with_param(url, params, "cursor", before) if before else None,
        "before_cursor": before,
        "end_of_stream": end_of_stream,
    }


def _cursor_of(ticket: Ticket) -> str:
    return encode_cursor(int(ticket["generated_timestamp"]), int(ticket["id"]))

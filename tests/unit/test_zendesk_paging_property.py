"""Property: whatever the ticket timestamps and page size, paging loses no ticket.

A faithful in-memory model of both exports (time-based with page cuts inside a second,
same-second expansion or the legacy loop; cursor-based with exact pages) serves the
client through httpx.MockTransport.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.metrics import Metrics
from producer.model import ExportCursor, ExportMode
from producer.zendesk.client import CURSOR_PATH, ExportClient
from producer.zendesk.options import ExportOptions

NOW = 2_000_000_000.0


class InstantClock:
    def __init__(self) -> None:
        self.t = NOW

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.t += max(0.0, seconds)
        return False


class ExportModel:
    def __init__(self, stamps: list[int], *, legacy: bool, seed: int) -> None:
        self.tickets = [(tid, ts) for tid, ts in enumerate(stamps, start=1)]
        self.legacy = legacy
        self.rng = random.Random(seed)
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        params = request.url.params
        per_page = int(params["per_page"])
        if request.url.path == CURSOR_PATH:
            return self._cursor(params, per_page)
        return self._time(int(params["start_time"]), per_page)

    def _time(self, start: int, per_page: int) -> httpx.Response:
        items = [t for t in self.tickets if t[1] >= start]
        self.rng.shuffle(items)
        items.sort(key=lambda t: t[1])  # stable: arbitrary order inside a second
        page = items[:per_page]
        eos = len(page) < per_page
        end_time = page[-1][1] if page else None
        if page and not eos and page[0][1] == page[-1][1]:
            second = page[0][1]
            if not self.legacy:  # the whole second, even beyond per_page
                page = [t for t in items if t[1] == second]
                end_time = second + 1
        body = {
            "tickets": [{"id": tid, "generated_timestamp": ts} for tid, ts in page],
            "count": len(page),
            "end_time": end_time,
            "end_of_stream": eos,
            "next_page": "https://x.zendesk.com/next",
        }
        return httpx.Response(200, json=body)

    def _cursor(self, params: Any, per_page: int) -> httpx.Response:
        ordered = sorted(self.tickets, key=lambda t: (t[1], t[0]))
        if "cursor" in params:
            ts, tid = json.loads(params["cursor"])
            items = [t for t in ordered if (t[1], t[0]) > (ts, tid)]
        else:
            items = [t for t in ordered if t[1] >= int(params["start_time"])]
        page = items[:per_page]
        after = json.dumps([page[-1][1], page[-1][0]]) if page else params.get("cursor")
        body = {
            "tickets": [{"id": tid, "generated_timestamp": ts} for tid, ts in page],
            "after_cursor": after,
            "before_cursor": None,
            "end_of_stream": len(items) <= per_page,
        }
        return httpx.Response(200, json=body)


@settings(max_examples=60, deadline=None)
@given(
    stamps=st.lists(st.integers(min_value=1000, max_value=1012), min_size=0, max_size=60),
    per_page=st.integers(min_value=1, max_value=6),
    legacy=st.booleans(),
    cursor_mode=st.booleans(),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_paging_reads_every_ticket(
    stamps: list[int], per_page: int, legacy: bool, cursor_mode: bool, seed: int
) -> None:
    model = ExportModel(stamps, legacy=legacy, seed=seed)
    options = ExportOptions("https://x.zendesk.com", per_page=per_page, per_page_floor=1)
    mode = ExportMode.CURSOR if cursor_mode else ExportMode.TIME
    with httpx.Client(transport=httpx.MockTransport(model)) as http:
        client = ExportClient(options, http, InstantClock(), Metrics())
        cursor = ExportCursor(0, mode=mode)
        pages = list(client.pages(cursor))
    seen = {(int(t["id"]), int(t["generated_timestamp"])) for p in pages for t in p.tickets}
    assert seen == set(model.tickets)
    # every page's cursor moves forward: resuming from any of them never goes back
    starts = [p.next_cursor.start_time for p in pages]
    assert starts == sorted(starts)
    # bounded work: at most a few requests per ticket, never a spin
    assert model.requests <= 4 * len(stamps) + 4

"""Routing, auth, rate limiting, faults and encoding: a `SimRequest` in, a `SimResponse` out.

Kept apart from the socket server so tests can drive it without HTTP, and apart from the
account state so each concern stays small.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from producer.simulator import export
from producer.simulator.faults import FaultPlan
from producer.simulator.sideloads import sideloads

if TYPE_CHECKING:
    from producer.simulator.simulator import SimRequest, SimResponse, Simulator

TIME_PATHS = ("/api/v2/incremental/tickets", "/api/v2/incremental/tickets.json")
CURSOR_PATHS = ("/api/v2/incremental/tickets/cursor", "/api/v2/incremental/tickets/cursor.json")
JSON = ("Content-Type", "application/json; charset=utf-8")
UNKNOWN_ACCOUNT = (
    b"<!DOCTYPE html><html><head><title>Zendesk</title></head><body>"
    b"<h1>Oops! The page you were looking for doesn't exist</h1>"
    b"<p>This help center no longer exists or the subdomain is wrong.</p></body></html>"
)
ERROR_BODIES: Mapping[int, tuple[str, bytes]] = {
    409: ("application/json; charset=utf-8",
          b'{"error":"Conflict","description":"The request conflicts with another one"}'),
    500: ("application/json; charset=utf-8", b'{"error":"InternalServerError"}'),
    502: ("text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    503: ("text/html", b"<html><body><h1>503 Service Unavailable</h1></body></html>"),
    504: ("text/plain", b"upstream request timeout"),
}  # fmt: skip


def _resp(
    status: int, body: Any, headers: list[tuple[str, str]] | None = None, delay: float = 0.0
) -> SimResponse:
    from producer.simulator.simulator import SimResponse  # noqa: PLC0415

    if isinstance(body, bytes):
        return SimResponse(status, body, tuple(headers or ()), delay)
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return SimResponse(status, data, (JSON, *(headers or ())), delay)


def respond(sim: Simulator, req: SimRequest) -> SimResponse:
    path = req.path.rstrip("/") or "/"
    if path.startswith("/__sim/"):
        return _admin(sim, req, path)
    if not sim.config.account_exists:
        return _resp(404, UNKNOWN_ACCOUNT, [("Content-Type", "text/html")])
    if path == "/oauth/tokens" and req.method == "POST":
        return _oauth(sim, req)
    if req.method == "GET" and path in TIME_PATHS + CURSOR_PATHS:
        return _export(sim, req, cursor_mode=path in CURSOR_PATHS)
    return _resp(404, {"error": "InvalidEndpoint", "description": "Not found"})


def _export(sim: Simulator, req: SimRequest, *, cursor_mode: bool) -> SimResponse:
    with sim.lock:
        now = sim.clock.now()
        resp = _export_locked(sim, req, now, cursor_mode=cursor_mode)
        sim.record(req, resp.status, now)
        return resp


def _export_locked(
    sim: Simulator, req: SimRequest, now: float, *, cursor_mode: bool
) -> SimResponse:
    cfg = sim.config
    denied = sim.auth.check(req.headers.get("authorization"), now)
    if denied is not None:
        return _resp(denied.status, dict(denied.body))
    rate = sim.rate_limiter.check(now)
    headers = rate.headers()
    if not rate.allowed:
        # Zendesk's 429 body is not guaranteed JSON: clients must not parse it
        return _resp(
            429,
            b"Too Many Requests",
            [("Content-Type", "text/plain"), ("Retry-After", str(rate.reset)), *headers],
        )
    try:
        query = export.parse_query(
            req.query, per_page_max=cfg.per_page_max, cursor_mode=cursor_mode
        )
    except export.QueryError as exc:
        return _resp(exc.status, dict(exc.body), headers)
    plan = sim.faults.plan(query.per_page)
    if plan.status is not None:
        ctype, raw = ERROR_BODIES.get(plan.status, ERROR_BODIES[500])
        return _resp(plan.status, raw, [("Content-Type", ctype), *headers], plan.delay)
    if query.start_time is not None and query.start_time > now - cfg.hold_back_seconds:
        if cfg.legacy_422:
            body = {
                "error": "InvalidValue",
                "description": "Too recent start_time. Use a start_time older than 5 minutes",
            }
            return _resp(422, body, headers)
        body = {
            "error": "StartTimeTooRecent",
            "description": "Too recent start_time. Use a start_time older than 1 minute",
        }
        return _resp(400, body, headers)
    url = req.base_url.rstrip("/") + req.path
    if cursor_mode:
        items, eos = sim.read_cursor_page(query, now)
        extra = sideloads(query.include, items, cfg.subdomain)
        envelope = export.cursor_envelope(items, eos, extra, url=url, params=req.query, query=query)
    else:
        page = sim.read_time_page(query, now)
        if sim.faults.too_large(len(page.tickets)):
            ctype, raw = ERROR_BODIES[504]
            return _resp(504, raw, [("Content-Type", ctype), *headers], plan.delay)
        extra = sideloads(query.include, page.tickets, cfg.subdomain)
        envelope = export.time_envelope(
            page, extra, url=url, params=req.query,
            start_time=query.start_time or 0, empty_nulls=cfg.empty_page_nulls,
        )  # fmt: skip
    return _resp(200, _damage(envelope, plan), [JSON, *headers], plan.delay)


def _damage(envelope: dict[str, Any], plan: FaultPlan) -> bytes:
    """Apply the body faults of `plan` to an encoded page."""
    if plan.wrong_types and envelope["tickets"]:
        bad = dict(envelope["tickets"][0])
        bad["id"], bad["subject"] = str(bad["id"]), 12345
        envelope["tickets"] = [bad, *envelope["tickets"][1:]]
    for key in plan.drop_keys:
        envelope.pop(key, None)
    data = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    if plan.invalid_json:
        return b"<html><body>Service temporarily unavailable</body></html>" + data[:64]
    if plan.truncate:
        return data[: max(1, len(data) // 2)]
    return data


def _form(req: SimRequest) -> dict[str, str]:
    ctype = req.headers.get("content-type", "")
    if "json" in ctype:
        try:
            data = json.loads(req.body or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(req.body.decode("utf-8", "replace")))


def _oauth(sim: Simulator, req: SimRequest) -> SimResponse:
    with sim.lock:
        now = sim.clock.now()
        status, body = sim.auth.refresh(_form(req), now)
        sim.record(req, status, now)
    return _resp(status, body)


def _admin(sim: Simulator, req: SimRequest, path: str) -> SimResponse:
    """Test and demo controls; unauthenticated and outside the rate limit."""
    try:
        data: Any = json.loads(req.body) if req.body.strip() else {}
    except ValueError:
        return _resp(400, {"error": "the body must be a JSON object"})
    if not isinstance(data, dict):
        return _resp(400, {"error": "the body must be a JSON object"})
    if path == "/__sim/truth" and req.method == "GET":
        return _resp(200, truth_json(sim))
    if path == "/__sim/faults" and req.method == "POST":
        try:
            sim.faults.apply_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            return _resp(400, {"error": str(exc)})
        return _resp(200, {"ok": True})
    if path == "/__sim/stats" and req.method == "GET":
        return _resp(200, {
            "requests": sim.request_count(),
            "rate_limited": sim.request_count(status=429),
            "tickets": sim.ticket_count,
            "oauth_refreshes": sim.auth.refreshes,
        })  # fmt: skip
    if path == "/__sim/actions" and req.method == "POST":
        try:
            return _resp(200, _action(sim, data))
        except (KeyError, ValueError, TypeError) as exc:
            return _resp(400, {"error": repr(exc)})
    return _resp(404, {"error": "InvalidEndpoint", "description": "Not found"})


def _action(sim: Simulator, data: Mapping[str, Any]) -> dict[str, Any]:
    """{"create": n} | {"update": id, "system_only": bool} | {"delete": id}
    | {"burst": n, "second": ts} | {"advance": seconds} (only for a ScaledClock)."""
    if "create" in data:
        return {"ids": [sim.create() for _ in range(int(data["create"]))]}
    if "update" in data:
        ts = sim.update_ticket(int(data["update"]), system_only=bool(data.get("system_only")))
        return {"generated_timestamp": ts}
    if "delete" in data:
        return {"generated_timestamp": sim.delete(int(data["delete"]))}
    if "burst" in data:
        second = data.get("second")
        ids = sim.burst(int(data["burst"]), None if second is None else int(second))
        return {"count": len(ids)}
    if "advance" in data and hasattr(sim.clock, "advance"):
        sim.clock.advance(float(data["advance"]))
        return {"now": sim.clock.now()}
    return {"error": "unknown action"}


def truth_json(sim: Simulator) -> dict[str, Any]:
    truth = sim.ground_truth()
    return {
        "taken_at": truth.taken_at,
        "visible_until": truth.visible_until,
        "tickets": {
            str(tid): {
                "generated_timestamp": t.generated_timestamp,
                "deleted": t.deleted,
                "ai_agent": t.ai_agent,
                "content": t.content,
            }
            for tid, t in truth.tickets.items()
        },
        "changes": [
            {
                "ticket_id": c.ticket_id,
                "op": str(c.op),
                "generated_timestamp": c.generated_timestamp,
            }
            for c in truth.changes
        ],
    }

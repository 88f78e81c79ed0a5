"""The export client: requests pages politely and turns responses into typed pages.

`fetch_page(cursor)` returns one page, or None when there is nothing to ask for yet
(the cursor is inside the hold-back window, Zendesk answered "start_time too recent",
or `stop` was set during a wait). `pages(cursor)` pages to end_of_stream.

Cursor states (all resumable after a crash):
  TIME,   after_cursor None  -> /incremental/tickets?start_time=S
  TIME,   after_cursor C     -> inside stuck second S: /incremental/tickets/cursor?cursor=C
  CURSOR, after_cursor None  -> /incremental/tickets/cursor?start_time=S
  CURSOR, after_cursor C     -> /incremental/tickets/cursor?cursor=C
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from producer.clock import Clock
from producer.errors import (
    AuthError,
    CursorStuckError,
    FatalZendeskError,
    MalformedResponseError,
    RetryableZendeskError,
)
from producer.metrics import Metrics, status_class
from producer.model import ExportCursor, ExportMode, ExportPage
from producer.zendesk.auth import API_TOKEN_RETIREMENT, ApiTokenAuth
from producer.zendesk.backoff import Backoff, PageSize
from producer.zendesk.options import ExportOptions
from producer.zendesk.parse import CursorEnvelope, parse_cursor_page, parse_time_page
from producer.zendesk.ratelimit import RateBudget, parse_retry_after

log = logging.getLogger(__name__)

TIME_PATH = "/api/v2/incremental/tickets"
CURSOR_PATH = "/api/v2/incremental/tickets/cursor"
TRANSIENT = frozenset({409, 500, 502, 503, 504})

T = TypeVar("T")


_WAIT_SLICE = 30.0  # long waits (Retry-After, backoff) are cut in slices, each reported via on_wait


class _CaughtUpError(Exception):
    """Internal: Zendesk says start_time is too recent, or stop was set during a wait."""


class _GatewayTimeoutAtFloorError(Exception):
    """Internal: a 504 although per_page is already at its floor."""


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def is_too_recent(response: httpx.Response) -> bool:
    """400 StartTimeTooRecent (today) or 422 InvalidValue "Too recent start_time" (older)."""
    if response.status_code not in (400, 422):
        return False
    body = _json_body(response)
    error = str(body.get("error", ""))
    description = str(body.get("description", ""))
    return error == "StartTimeTooRecent" or "too recent" in description.lower()


def fatal_error(response: httpx.Response) -> FatalZendeskError:
    """An actionable error for a response that retrying cannot fix."""
    status = response.status_code
    body = _json_body(response)
    description = str(body.get("description", "") or body.get("error", ""))[:200]
    if status == 401:
        return AuthError(
            "credentials rejected (401): check the email and API token, or the OAuth token",
            status=status,
        )
    if status == 403:
        if "scope" in description.lower():
            return FatalZendeskError(
                "the token lacks the read scope (403): grant the OAuth client `read` "
                "(or `tickets:read`)",
                status=status,
            )
        return FatalZendeskError(
            "the user is not an admin (403): the incremental export is for admins only",
            status=status,
        )
    if status == 404:
        return FatalZendeskError(
            "the subdomain does not exist (404): check the Zendesk URL "
            f"{response.request.url.host}",
            status=status,
        )
    return FatalZendeskError(f"unexpected response ({status}): {description}", status=status)


class ExportClient:
    def __init__(
        self,
        options: ExportOptions,
        http: httpx.Client,
        clock: Clock,
        metrics: Metrics,
        stop: threading.Event | None = None,
        *,
        rng: random.Random | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self._http = http
        self._clock = clock
        self._metrics = metrics
        self._stop = stop
        # called while waiting on purpose (budget, backoff, Retry-After), so a liveness
        # probe can tell a patient client from a wedged one
        self._on_wait = on_wait
        self._base = options.base_url.rstrip("/")
        # the options' credentials win; without them the injected client's own auth applies
        self._auth: httpx.Auth | httpx._client.UseClientDefault = (
            options.auth if options.auth is not None else httpx.USE_CLIENT_DEFAULT
        )
        self.budget = RateBudget(
            options.requests_per_minute, options.reserve_fraction, options.rate_safety_seconds
        )
        floor = min(options.per_page_floor, options.per_page)
        self.page_size = PageSize(options.per_page, floor, options.grow_after)
        self._backoff = Backoff(options.backoff_base, options.backoff_max, rng)
        self._floor_timeouts = 0  # 504s in a row with per_page already at its floor
        metrics.rate_budget_per_minute.set(self.budget.per_minute)
        metrics.per_page.set(self.page_size.current)

    # -- paging ------------------------------------------------------------------------

    def pages(self, cursor: ExportCursor) -> Iterator[ExportPage]:
        """Pages from `cursor` until end_of_stream (or caught up, or stopped)."""
        while not self._stopped():
            page = self.fetch_page(cursor)
            if page is None:
                return
            yield page
            if page.end_of_stream:
                return
            if page.next_cursor == cursor:  # never spin on a cursor that does not move
                self._metrics.errors.labels("cursor_stuck").inc()
                raise CursorStuckError(cursor.start_time)
            cursor = page.next_cursor

    def fetch_page(self, cursor: ExportCursor) -> ExportPage | None:
        try:
            if cursor.mode is ExportMode.CURSOR:
                return self._cursor_mode_page(cursor)
            if cursor.after_cursor is not None:
                return self._fallback_page(cursor)
            return self._time_page(cursor)
        except _CaughtUpError:
            return None

    def _too_recent(self, start_time: int) -> bool:
        return start_time > self._clock.now() - self.options.hold_back_margin

    def _time_page(self, cursor: ExportCursor) -> ExportPage:
        if self._too_recent(cursor.start_time):
            raise _CaughtUpError
        params = {"start_time": str(cursor.start_time), **self._common_params()}
        try:
            page = self._request(
                "incremental_tickets",
                TIME_PATH,
                params,
                lambda body, at: parse_time_page(body, cursor, at),
            )
        except _GatewayTimeoutAtFloorError:
            # read that second in exact pages through the cursor export, then go on
            log.warning(
                "504 at per_page %d from %d: reading that second via the cursor export",
                self.page_size.current,
                cursor.start_time,
            )
            return self._fallback_page(ExportCursor(cursor.start_time))
        stuck = (
            (page.tickets or page.malformed)
            and not page.end_of_stream
            and page.next_cursor.start_time == cursor.start_time
        )
        if stuck:
            # A legacy server loops on a full second; read that second through the cursor export.
            log.warning(
                "export stuck at %d; reading that second via the cursor export", cursor.start_time
            )
            self._metrics.errors.labels("cursor_stuck").inc()
            return self._fallback_page(ExportCursor(cursor.start_time))
        self._count(page)
        return page

    def _fallback_page(self, cursor: ExportCursor) -> ExportPage:
        """One cursor-export page inside stuck second S; time-based resumes at S+1 once past it."""
        second = cursor.start_time
        env = self._cursor_request(cursor)
        passed = env.end_of_stream or any(
            int(t["generated_timestamp"]) > second for t in env.tickets
        )
        if passed:
            next_cursor = ExportCursor(second + 1)
        else:
            self._require_progress(cursor, env)
            next_cursor = ExportCursor(second, env.after_cursor)
        return self._cursor_page(cursor, next_cursor, env)

    def _cursor_mode_page(self, cursor: ExportCursor) -> ExportPage:
        if cursor.after_cursor is None and self._too_recent(cursor.start_time):
            raise _CaughtUpError
        env = self._cursor_request(cursor)
        if not env.end_of_stream:
            self._require_progress(cursor, env)
        last = env.last_timestamp
        next_cursor = ExportCursor(
            max(cursor.start_time, last if last is not None else cursor.start_time),
            env.after_cursor if env.after_cursor is not None else cursor.after_cursor,
            ExportMode.CURSOR,
        )
        return self._cursor_page(cursor, next_cursor, env)

    def _require_progress(self, cursor: ExportCursor, env: CursorEnvelope) -> None:
        # a page of only malformed tickets still moved: they are dead-lettered, not lost
        if not (env.tickets or env.malformed) or env.after_cursor in (None, cursor.after_cursor):
            self._metrics.errors.labels("cursor_stuck").inc()
            raise CursorStuckError(cursor.start_time)

    def _cursor_request(self, cursor: ExportCursor) -> CursorEnvelope:
        params = (
            {"cursor": cursor.after_cursor}
            if cursor.after_cursor is not None
            else {"start_time": str(cursor.start_time)}
        )
        params.update(self._common_params())
        try:
            return self._request(
                "incremental_tickets_cursor",
                CURSOR_PATH,
                params,
                lambda body, _at: parse_cursor_page(body),
            )
        except FatalZendeskError as exc:
            if cursor.mode is ExportMode.TIME and not isinstance(exc, AuthError):
                # The time export worked but this server has no usable cursor export.
                self._metrics.errors.labels("cursor_stuck").inc()
                raise CursorStuckError(cursor.start_time) from exc
            raise

    def _cursor_page(
        self, start: ExportCursor, next_cursor: ExportCursor, env: CursorEnvelope
    ) -> ExportPage:
        page = ExportPage(
            tickets=env.tickets,
            start=start,
            next_cursor=next_cursor,
            end_of_stream=env.end_of_stream,
            fetched_at=self._clock.now(),
            malformed=env.malformed,
            sideloads=env.sideloads,
        )
        self._count(page)
        return page

    def _common_params(self) -> dict[str, str]:
        params = {
            "per_page": str(self.page_size.current),
            "support_type_scope": self.options.support_type_scope,
        }
        if self.options.include:
            params["include"] = ",".join(self.options.include)
        if self.options.exclude_deleted:
            params["exclude_deleted"] = "true"
        return params

    def _count(self, page: ExportPage) -> None:
        self._metrics.pages_fetched.inc()
        self._metrics.tickets_fetched.inc(len(page.tickets) + len(page.malformed))
        self._metrics.malformed_tickets.inc(len(page.malformed))

    # -- one request, with budget, retries and classification ---------------------------

    def _request(
        self,
        endpoint: str,
        path: str,
        params: dict[str, str],
        parse: Callable[[bytes, float], T],
    ) -> T:
        failures = 0  # transient errors in a row
        malformed = 0
        while True:
            self._wait_for_budget()
            params["per_page"] = str(self.page_size.current)  # a 504 may have shrunk it
            sent = self._clock.now()
            self.budget.on_request(sent)
            started = time.perf_counter()
            try:
                response = self._http.get(
                    self._base + path,
                    params=params,
                    timeout=self.options.timeout,
                    auth=self._auth,
                )
            except httpx.TransportError as exc:  # timeouts, refused and reset connections
                self._metrics.api_requests.labels(endpoint, "error").inc()
                error = RetryableZendeskError(f"{endpoint}: {exc.__class__.__name__}")
                failures = self._retry_transient(error, failures, exc)
                continue
            self._metrics.api_request_duration.labels(endpoint).observe(
                time.perf_counter() - started
            )
            status = response.status_code
            self._metrics.api_requests.labels(endpoint, status_class(status)).inc()
            now = self._clock.now()
            # "resets in N s" counts from when the server saw the request, not from now:
            # measuring from the response would add its latency to every wait.
            self.budget.observe(response.headers, sent)
            self._metrics.rate_budget_per_minute.set(self.budget.per_minute)
            if status == 200:
                try:
                    result = parse(response.content, now)
                except MalformedResponseError as exc:
                    self._metrics.errors.labels("malformed_response").inc()
                    malformed += 1
                    if malformed > self.options.malformed_retries:
                        raise
                    log.warning("%s: %s; retrying", endpoint, exc)
                    self._sleep(self._backoff.delay(malformed - 1))
                    continue
                self.page_size.on_success()
                self._floor_timeouts = 0
                self._metrics.per_page.set(self.page_size.current)
                return result
            if status == 429:
                self._metrics.rate_limited.inc()
                self._metrics.errors.labels("rate_limited").inc()
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                self.budget.on_rate_limited(retry_after, now)
                log.warning("%s: 429, retrying after %s s", endpoint, retry_after)
                continue
            if is_too_recent(response):
                raise _CaughtUpError
            if status in TRANSIENT:
                if status == 504:
                    at_floor = self.page_size.current <= self.page_size.floor
                    self._floor_timeouts = self._floor_timeouts + 1 if at_floor else 0
                    self.page_size.on_gateway_timeout()
                    self._metrics.per_page.set(self.page_size.current)
                    if self._floor_timeouts >= 2 and endpoint == "incremental_tickets":
                        # the time export returns a whole second whatever per_page says:
                        # a huge second stays too big, so smaller pages cannot help
                        self._metrics.errors.labels("transient").inc()
                        self._floor_timeouts = 0
                        raise _GatewayTimeoutAtFloorError
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                error = RetryableZendeskError(
                    f"{endpoint}: transient {status}", status=status, retry_after=retry_after
                )
                failures = self._retry_transient(error, failures, None)
                continue
            fatal = fatal_error(response)
            if status == 401 and self._api_tokens_retired():
                fatal = AuthError(
                    "credentials rejected (401): Zendesk stopped accepting API tokens on "
                    "2027-04-30; switch to OAuth (ZENDESK_CDC_ZENDESK_OAUTH_CLIENT_ID, ...)",
                    status=status,
                )
            self._metrics.errors.labels("auth" if isinstance(fatal, AuthError) else "fatal").inc()
            raise fatal

    def _retry_transient(
        self, error: RetryableZendeskError, failures: int, cause: BaseException | None
    ) -> int:
        self._metrics.errors.labels("transient").inc()
        limit = self.options.max_retries
        if limit is not None and failures >= limit:
            raise error from cause
        delay = self._backoff.delay(failures)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        log.warning("%s; retry %d in %.1f s", error, failures + 1, delay)
        self._sleep(delay)
        return failures + 1

    def _wait_for_budget(self) -> None:
        wait = self.budget.wait_needed(self._clock.now())
        if wait <= 0:
            return
        self._metrics.rate_limit_waits.inc()
        self._metrics.rate_limit_wait_seconds.inc(wait)
        self._sleep(wait)

    def _sleep(self, seconds: float) -> None:
        deadline = self._clock.now() + seconds
        while (left := deadline - self._clock.now()) > 0:
            if self._on_wait is not None:
                self._on_wait()
            if self._clock.sleep(min(left, _WAIT_SLICE), self._stop) or self._stopped():
                raise _CaughtUpError
        if self._stopped():
            raise _CaughtUpError

    def _api_tokens_retired(self) -> bool:
        return (
            isinstance(self.options.auth, ApiTokenAuth)
            and self._clock.now() >= API_TOKEN_RETIREMENT
        )

    def _stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

"""Zendesk credentials as httpx.Auth flows: API token, OAuth bearer, OAuth with refresh.

Secrets live in private attributes and never reach reprs, logs, exception messages or
metrics. A refreshed OAuth pair invalidates the old one, so it is written to disk
atomically (temp file, fsync, 0600, rename) before it is ever used.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from producer.clock import Clock, SystemClock
from producer.errors import AuthError, ConfigError, RetryableZendeskError
from producer.metrics import Metrics, status_class
from producer.zendesk.ratelimit import parse_retry_after

log = logging.getLogger(__name__)

REFRESH_EARLY = 60.0  # refresh this long before expiry so a request never races it
# Zendesk stops accepting API tokens on 2027-04-30 (ZENDESK_API.md §6)
API_TOKEN_RETIREMENT = datetime(2027, 4, 30, tzinfo=UTC).timestamp()


class ApiTokenAuth(httpx.Auth):
    """`Authorization: Basic base64("{email}/token:{token}")`."""

    def __init__(self, email: str, token: str) -> None:
        self.email = email
        raw = f"{email}/token:{token}".encode()
        self.__header = "Basic " + base64.b64encode(raw).decode("ascii")
        log.warning(
            "using a Zendesk API token: Zendesk retires API tokens (none can be created after "
            "2026-10-27, all stop working on 2027-04-30); switch to OAuth"
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.__header
        yield request

    def __repr__(self) -> str:
        return f"ApiTokenAuth(email={self.email!r}, token='**********')"


class OAuthBearer(httpx.Auth):
    """`Authorization: Bearer {access_token}` with a token managed elsewhere."""

    def __init__(self, access_token: str) -> None:
        self.__header = f"Bearer {access_token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.__header
        yield request

    def __repr__(self) -> str:
        return "OAuthBearer(access_token='**********')"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float | None = None  # unix seconds; None if Zendesk did not say

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at,
            }
        )


def read_token_file(path: Path) -> TokenPair:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TokenPair(
            str(data["access_token"]), str(data["refresh_token"]), data.get("expires_at")
        )
    except FileNotFoundError:
        raise ConfigError("oauth_token_file", f"{path} does not exist") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError("oauth_token_file", f"{path} is not a token pair file") from None


def write_token_file(path: Path, pair: TokenPair) -> None:
    """Replace `path` atomically: a crash leaves either the old pair or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(pair.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


class OAuthRefreshing(httpx.Auth):
    """Bearer auth that refreshes on expiry or 401 through `POST {base}/oauth/tokens`.

    The token file is the single source of truth; this process must be its only writer.
    """

    requires_response_body = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_file: Path,
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        initial_refresh_token: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.__secret = client_secret
        self.token_file = token_file
        self._clock = clock if clock is not None else SystemClock()
        self._metrics = metrics
        self._lock = threading.Lock()
        if not token_file.exists() and initial_refresh_token is not None:
            write_token_file(token_file, TokenPair("", initial_refresh_token, expires_at=0.0))
        self._pair = read_token_file(token_file)

    def __repr__(self) -> str:
        return f"OAuthRefreshing(client_id={self.client_id!r}, token_file='{self.token_file}')"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        pair = self._pair
        expires = pair.expires_at
        if not pair.access_token or (
            expires is not None and self._clock.now() >= expires - REFRESH_EARLY
        ):
            pair = yield from self._refresh(request, pair)
        request.headers["Authorization"] = f"Bearer {pair.access_token}"
        response = yield request
        if response.status_code == 401:
            pair = yield from self._refresh(request, pair)
            request.headers["Authorization"] = f"Bearer {pair.access_token}"
            yield request

    def _refresh(
        self, request: httpx.Request, used: TokenPair
    ) -> Generator[httpx.Request, httpx.Response, TokenPair]:
        with self._lock:
            if self._pair.refresh_token != used.refresh_token:
                return self._pair  # another request already rotated the pair
        url = request.url.copy_with(path="/oauth/tokens", query=None, fragment=None)
        body = {
            "grant_type": "refresh_token",
            "refresh_token": used.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.__secret,
        }
        response = yield httpx.Request("POST", url, json=body)
        if self._metrics is not None:
            status = status_class(response.status_code)
            self._metrics.api_requests.labels("oauth_tokens", status).inc()
        if response.status_code == 429 or response.status_code >= 500:
            # Zendesk is busy or down, the pair is still good: try again later
            raise RetryableZendeskError(
                f"OAuth refresh: Zendesk answered {response.status_code}; retrying later",
                status=response.status_code,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code != 200:
            raise AuthError(
                f"OAuth refresh failed ({response.status_code}): {self._error_code(response)}; "
                "re-authorise the OAuth client and write a new token file",
                status=response.status_code,
            )
        try:
            data: Any = response.json()
            access, refresh = data["access_token"], data["refresh_token"]
            expires_in = data.get("expires_in")
            if not (isinstance(access, str) and isinstance(refresh, str)):
                raise TypeError
            lifetime = None if expires_in is None else float(expires_in)
        except (ValueError, KeyError, TypeError):
            raise AuthError("OAuth refresh returned no usable token pair") from None
        expires_at = None if lifetime is None else self._clock.now() + lifetime
        pair = TokenPair(access, refresh, expires_at)
        with self._lock:
            # The old pair is dead now: persist the new one before anything uses it.
            try:
                write_token_file(self.token_file, pair)
            except OSError as exc:
                # keep working with the pair in memory rather than lose it outright
                log.error(
                    "could not save the rotated OAuth pair to %s (%s): it lives in memory "
                    "only, and a restart will need a re-authorised client",
                    self.token_file,
                    exc.strerror or exc.__class__.__name__,
                )
            self._pair = pair
        log.info("OAuth token pair refreshed and saved to %s", self.token_file)
        return pair

    def _error_code(self, response: httpx.Response) -> str:
        try:
            code = response.json().get("error")
        except (ValueError, AttributeError):
            code = None
        if not isinstance(code, str) or len(code) > 64 or self.__secret in code:
            return "no error code"
        return code

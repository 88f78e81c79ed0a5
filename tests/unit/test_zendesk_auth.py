"""Zendesk credentials: header shapes, OAuth refresh with rotation persisted first, no leaks."""

from __future__ import annotations

import base64
import json
import logging
import stat
import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from producer.errors import AuthError, ConfigError, RetryableZendeskError
from producer.metrics import Metrics
from producer.zendesk.auth import (
    ApiTokenAuth,
    OAuthBearer,
    OAuthRefreshing,
    TokenPair,
    read_token_file,
    write_token_file,
)
from producer.zendesk.options import ExportOptions

TOKEN = "api-token-SECRET-1234"
CLIENT_SECRET = "client-secret-SECRET-5678"
URL = "https://acme.zendesk.com/api/v2/incremental/tickets?start_time=5"


class FixedClock:
    def __init__(self, now: float) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.t += seconds
        return False


def test_api_token_header_and_retirement_warning(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    with caplog.at_level(logging.WARNING):
        auth = ApiTokenAuth("admin@acme.com", TOKEN)
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as http:
        http.get(URL)
    expected = base64.b64encode(f"admin@acme.com/token:{TOKEN}".encode()).decode()
    assert seen == [f"Basic {expected}"]
    assert "OAuth" in caplog.text
    assert "2027-04-30" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(auth)
    assert "admin@acme.com" in repr(auth)


def test_bearer_header_and_repr() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    auth = OAuthBearer("access-SECRET")
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as http:
        http.get(URL)
    assert seen == ["Bearer access-SECRET"]
    assert "access-SECRET" not in repr(auth)


class TokenServer:
    """A Zendesk that rotates pairs on refresh and invalidates the old ones."""

    def __init__(self, token_file: Path, access: str = "a0", refresh: str = "r0") -> None:
        self.token_file = token_file
        self.access = access
        self.refresh = refresh
        self.generation = 0
        self.log: list[str] = []
        self.file_at_use: list[dict[str, object]] = []
        self.fail_refresh = False
        self.busy_refreshes = 0  # the next N refreshes answer 503

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/tokens":
            body = json.loads(request.content)
            self.log.append(f"refresh {body['refresh_token']}")
            assert body["grant_type"] == "refresh_token"
            assert body["client_id"] == "cdc"
            assert body["client_secret"] == CLIENT_SECRET
            if self.busy_refreshes:
                self.busy_refreshes -= 1
                return httpx.Response(503, text="<html>busy</html>", headers={"Retry-After": "7"})
            if self.fail_refresh or body["refresh_token"] != self.refresh:
                return httpx.Response(400, json={"error": "invalid_grant"})
            self.generation += 1
            self.access, self.refresh = f"a{self.generation}", f"r{self.generation}"
            return httpx.Response(
                200,
                json={
                    "access_token": self.access,
                    "refresh_token": self.refresh,
                    "expires_in": 1800,
                    "token_type": "bearer",
                },
            )
        token = request.headers["Authorization"].removeprefix("Bearer ")
        self.log.append(f"get {token}")
        if token != self.access:
            return httpx.Response(401, json={"error": "Couldn't authenticate you"})
        self.file_at_use.append(json.loads(self.token_file.read_text()))
        return httpx.Response(200, json={"ok": True})


def test_401_refreshes_and_persists_the_new_pair_before_using_it(tmp_path: Path) -> None:
    token_file = tmp_path / "state" / "oauth.json"
    write_token_file(token_file, TokenPair("stale", "r0", None))
    server = TokenServer(token_file)
    metrics = Metrics()
    auth = OAuthRefreshing("cdc", CLIENT_SECRET, token_file, metrics=metrics)
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as http:
        assert http.get(URL).status_code == 200
        assert http.get(URL).status_code == 200
    assert server.log == ["get stale", "refresh r0", "get a1", "get a1"]
    # the file already held the new pair when the new access token was first used
    assert server.file_at_use[0]["access_token"] == "a1"
    assert server.file_at_use[0]["refresh_token"] == "r1"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert [p.name for p in token_file.parent.iterdir()] == ["oauth.json"]  # no temp left
    status = metrics.registry.get_sample_value(
        "zendesk_cdc_api_requests_total", {"endpoint": "oauth_tokens", "status": "2xx"}
    )
    assert status == 1


def test_expiry_refreshes_before_the_request(tmp_path: Path) -> None:
    token_file = tmp_path / "oauth.json"
    clock = FixedClock(10_000.0)
    write_token_file(token_file, TokenPair("a0", "r0", expires_at=10_030.0))
    server = TokenServer(token_file)
    auth = OAuthRefreshing("cdc", CLIENT_SECRET, token_file, clock=clock)
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as http:
        http.get(URL)
    assert server.log == ["refresh r0", "get a1"]
    assert read_token_file(token_file).expires_at == 10_000.0 + 1800


def test_a_new_process_resumes_with_the_rotated_pair(tmp_path: Path) -> None:
    token_file = tmp_path / "oauth.json"
    server = TokenServer(token_file, access="unknown")
    first = OAuthRefreshing("cdc", CLIENT_SECRET, token_file, initial_refresh_token="r0")
    with httpx.Client(transport=httpx.MockTransport(server), auth=first) as http:
        http.get(URL)
    second = OAuthRefreshing("cdc", CLIENT_SECRET, token_file)  # a restart reads the file
    with httpx.Client(transport=httpx.MockTransport(server), auth=second) as http:
        assert http.get(URL).status_code == 200
    assert server.log == ["refresh r0", "get a1", "get a1"]


def test_failed_refresh_is_an_auth_error_without_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "oauth.json"
    write_token_file(token_file, TokenPair("access-SECRET-old", "r0-SECRET-refresh", None))
    server = TokenServer(token_file)
    server.fail_refresh = True
    metrics = Metrics()
    auth = OAuthRefreshing("cdc", CLIENT_SECRET, token_file, metrics=metrics)
    caplog.set_level(logging.DEBUG)
    with (
        httpx.Client(transport=httpx.MockTransport(server), auth=auth) as http,
        pytest.raises(AuthError) as info,
    ):
        http.get(URL)
    assert "invalid_grant" in str(info.value)
    exposed = [
        str(info.value),
        repr(info.value),
        repr(auth),
        repr(read_token_file(token_file)),
        caplog.text,
        generate_latest(metrics.registry).decode(),
    ]
    for text in exposed:
        for secret in (CLIENT_SECRET, "r0-SECRET-refresh", "access-SECRET-old"):
            assert secret not in text


def test_missing_or_broken_token_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        OAuthRefreshing("cdc", CLIENT_SECRET, tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not a token pair"):
        OAuthRefreshing("cdc", CLIENT_SECRET, broken)


def test_write_is_atomic_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "oauth.json"
    write_token_file(token_file, TokenPair("a0", "r0", None))

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("producer.zendesk.auth.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_token_file(token_file, TokenPair("a1", "r1", None))
    assert read_token_file(token_file).refresh_token == "r0"  # the old pair is intact
    assert [p.name for p in tmp_path.iterdir()] == ["oauth.json"]


def test_options_repr_hides_credentials() -> None:
    options = ExportOptions("https://acme.zendesk.com", auth=ApiTokenAuth("a@b.c", TOKEN))
    assert TOKEN not in repr(options)
    assert base64.b64encode(f"a@b.c/token:{TOKEN}".encode()).decode() not in repr(options)


def test_a_busy_token_endpoint_is_retryable_and_the_pair_survives(tmp_path: Path) -> None:
    token_file = tmp_path / "oauth.json"
    write_token_file(token_file, TokenPair("stale", "r0", None))
    server = TokenServer(token_file)
    server.busy_refreshes = 1
    auth = OAuthRefreshing("cdc", CLIENT_SECRET, token_file)
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as http:
        with pytest.raises(RetryableZendeskError) as info:
            http.get(URL)
        assert info.value.retry_after == 7
        assert read_token_file(token_file).refresh_token == "r0"  # still good, still there
        assert http.get(URL).status_code == 200  # the next try refreshes and goes through
    assert server.log == ["get stale", "refresh r0", "get stale", "refresh r0", "get a1"]


def test_a_rotated_pair_that_cannot_be_saved_is_still_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "oauth.json"
    write_token_file(token_file, TokenPair("stale", "r0", None))
    server = TokenServer(token_file)
    auth = OAuthRefreshing("cdc", CLIENT_SECRET, token_file)

    def disk_full(path: Path, pair: TokenPair) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("producer.zendesk.auth.write_token_file", disk_full)
    server.file_at_use.clear()
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as http:
        assert http.get(URL).status_code == 200  # the old pair is dead; the new one works
    assert server.log == ["get stale", "refresh r0", "get a1"]
    assert "lives in memory only" in caplog.text

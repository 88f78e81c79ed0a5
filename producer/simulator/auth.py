"""API-token and OAuth authentication, with refresh that rotates and revokes the old pair."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from producer.simulator.config import SimulatorConfig

UNAUTHENTICATED = {"error": "Couldn't authenticate you"}
MISSING_SCOPE = {
    "error": "Forbidden",
    "description": "You are missing the following required scopes: read",
}
NOT_ADMIN = {
    "error": "Forbidden",
    "description": "You do not have access to this page. Please contact the account owner "
    "of this help desk for further help.",
}
READ_SCOPES = frozenset({"read", "tickets:read"})


@dataclass(frozen=True, slots=True)
class Denied:
    status: int
    body: Mapping[str, Any]


class Authenticator:
    """Not thread-safe: the simulator calls it under its own lock."""

    def __init__(self, config: SimulatorConfig, now: float) -> None:
        self._config = config
        self.admin = config.admin
        self.scopes = frozenset(config.scopes)
        self._access: dict[str, float] = {
            config.oauth_access_token: now + config.access_token_lifetime
        }
        self._refresh: dict[str, tuple[float, str]] = {
            config.oauth_refresh_token: (
                now + config.refresh_token_lifetime,
                config.oauth_access_token,
            )
        }
        self._issued = 0
        self.refreshes = 0

    def check(self, authorization: str | None, now: float) -> Denied | None:
        """None when the request may read the incremental export."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() == "bearer":
            expires = self._access.get(value.strip())
            if expires is None or now >= expires:
                return Denied(401, UNAUTHENTICATED)
            if not self.scopes & READ_SCOPES:
                return Denied(403, MISSING_SCOPE)
        elif scheme.lower() == "basic":
            if not self._basic_ok(value.strip(), now):
                return Denied(401, UNAUTHENTICATED)
        else:
            return Denied(401, UNAUTHENTICATED)
        if not self.admin:
            return Denied(403, NOT_ADMIN)
        return None

    def _basic_ok(self, value: str, now: float) -> bool:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, secret = decoded.partition(":")
        # email/password access was removed in January 2026: only "{email}/token" works
        if user != f"{self._config.email}/token" or secret != self._config.api_token:
            return False
        return now < self._config.api_token_retirement

    def refresh(self, form: Mapping[str, str], now: float) -> tuple[int, dict[str, Any]]:
        """POST /oauth/tokens with grant_type=refresh_token: a new pair, the old one revoked."""
        config = self._config
        if form.get("grant_type") != "refresh_token":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "The authorization grant type is not supported.",
            }
        if (
            form.get("client_id") != config.oauth_client_id
            or form.get("client_secret") != config.oauth_client_secret
        ):
            return 401, {
                "error": "invalid_client",
                "error_description": "Client authentication failed.",
            }
        entry = self._refresh.get(form.get("refresh_token", ""))
        if entry is None or now >= entry[0]:
            return 400, {
                "error": "invalid_grant",
                "error_description": "The provided authorization grant is invalid, expired, "
                "or revoked.",
            }
        old_refresh = form["refresh_token"]
        del self._refresh[old_refresh]
        self._access.pop(entry[1], None)
        self._issued += 1
        self.refreshes += 1
        access = f"sim-access-token-{self._issued}"
        refresh = f"sim-refresh-token-{self._issued}"
        self._access[access] = now + config.access_token_lifetime
        self._refresh[refresh] = (now + config.refresh_token_lifetime, access)
        return 200, {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": int(config.access_token_lifetime),
            "refresh_token_expires_in": int(config.refresh_token_lifetime),
            "scope": " ".join(sorted(self.scopes)),
        }


def basic_header(email: str, token: str) -> str:
    """The Authorization header value for an API token, for clients and curl examples."""
    raw = f"{email}/token:{token}".encode()
    return "Basic " + base64.b64encode(raw).decode()

"""Every knob of the built-in Zendesk, frozen; runtime faults live in `faults.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_SUBDOMAIN = "example"
DEFAULT_EMAIL = "admin@example.com"
DEFAULT_TOKEN = "sim-api-token-0123456789abcdef"  # noqa: S105 - a well-known demo credential
DEFAULT_OAUTH_CLIENT_ID = "zendesk-cdc-sim"
DEFAULT_OAUTH_CLIENT_SECRET = "sim-oauth-client-secret"  # noqa: S105
DEFAULT_ACCESS_TOKEN = "sim-access-token-0"  # noqa: S105
DEFAULT_REFRESH_TOKEN = "sim-refresh-token-0"  # noqa: S105
# Zendesk stops accepting API tokens on 2027-04-30 (ZENDESK_API.md §6).
API_TOKEN_RETIREMENT = 1809043200.0


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    # Data
    tickets: int = 1000
    seed: int = 1
    history_days: float = 30.0
    subdomain: str = DEFAULT_SUBDOMAIN
    ai_agent_fraction: float = 0.01  # tickets only visible with support_type_scope ai_agent/all
    deleted_fraction: float = 0.02
    # Share of historic tickets that land in a second shared with others (bulk updates),
    # so ordinary paging cuts pages inside a second.
    clustered_fraction: float = 0.1
    # Export semantics
    per_page_max: int = 1000
    hold_back_seconds: int = 60
    legacy_loop: bool = False  # old servers: a full same-second page loops (end_time == start)
    legacy_422: bool = False  # old accounts: too-recent start_time is 422 InvalidValue
    empty_page_nulls: bool = True  # empty page: end_time/next_page null (else start_time/URL)
    # Rate limit of the incremental exports
    rate_limit_enabled: bool = True
    rate_limit_per_minute: int = 10
    rate_limit_window: Literal["sliding", "fixed"] = "sliding"
    # Auth
    email: str = DEFAULT_EMAIL
    api_token: str = DEFAULT_TOKEN
    api_token_retirement: float = API_TOKEN_RETIREMENT
    oauth_client_id: str = DEFAULT_OAUTH_CLIENT_ID
    oauth_client_secret: str = DEFAULT_OAUTH_CLIENT_SECRET
    oauth_access_token: str = DEFAULT_ACCESS_TOKEN
    oauth_refresh_token: str = DEFAULT_REFRESH_TOKEN
    access_token_lifetime: float = 1800.0  # 30 minutes, on the simulator's clock
    refresh_token_lifetime: float = 30 * 86400.0
    admin: bool = True
    scopes: tuple[str, ...] = ("read",)
    account_exists: bool = True  # False: every request is a 404 like an unknown subdomain
    # Live activity: events per simulated minute (0 = only explicit calls)
    activity_per_minute: float = 0.0

    def __post_init__(self) -> None:
        if self.tickets < 0:
            raise ValueError("tickets must be >= 0")
        if not self.per_page_max >= 1:
            raise ValueError("per_page_max must be >= 1")
        if self.rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be >= 1")

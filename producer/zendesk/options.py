"""What a caller can tune about reading the export, validated once at construction."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import httpx

from producer.errors import ConfigError
from producer.model import ExportMode

SUPPORT_TYPE_SCOPES = ("agent", "ai_agent", "all")
MAX_PER_PAGE = 1000  # Zendesk's maximum and default


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ExportOptions:
    base_url: str  # https://ACCOUNT.zendesk.com, or http://127.0.0.1:PORT for the simulator
    auth: httpx.Auth | None = field(default=None, repr=False)
    per_page: int = MAX_PER_PAGE
    per_page_floor: int = 50  # a 504 halves per_page, but never below this (nor above per_page)
    grow_after: int = 5  # successes at a reduced per_page before doubling it again
    include: tuple[str, ...] = ()
    exclude_deleted: bool = False
    # Zendesk defaults to "agent", which silently leaves out AI-agent tickets.
    support_type_scope: str = "all"
    mode: ExportMode = ExportMode.TIME
    # Never ask for start_time later than now - margin: the API holds back the last minute.
    hold_back_margin: float = 60.0
    requests_per_minute: int = 10  # 30 with the High Volume add-on
    # Share of the account-wide budget (X-Rate-Limit) left to other integrations.
    reserve_fraction: float = 0.2
    # Extra seconds added to every budget window, absorbing clock and network jitter.
    rate_safety_seconds: float = 0.5
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    # plain http to a non-loopback host (a simulator in docker compose); never for Zendesk
    allow_insecure_http: bool = False
    max_retries: int | None = 10  # None: retry transient errors forever (errors_total alerts)
    malformed_retries: int = 3

    def __post_init__(self) -> None:
        url = httpx.URL(self.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError("zendesk_url", "must be an http(s) URL with a host")
        if url.scheme == "http" and not is_loopback(url.host) and not self.allow_insecure_http:
            raise ConfigError("zendesk_url", "plain http is only allowed for loopback hosts")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ConfigError("per_page", f"must be between 1 and {MAX_PER_PAGE}")
        if self.per_page_floor < 1:
            raise ConfigError("per_page_floor", "must be positive")
        if self.support_type_scope not in SUPPORT_TYPE_SCOPES:
            raise ConfigError("support_type_scope", f"must be one of {SUPPORT_TYPE_SCOPES}")
        if "last_audits" in self.include:
            raise ConfigError("include", "last_audits is not available on the incremental export")
        if self.hold_back_margin < 60:
            raise ConfigError("hold_back_margin", "must be at least 60 seconds")
        if self.requests_per_minute < 1:
            raise ConfigError("requests_per_minute", "must be positive")
        if not 0 <= self.reserve_fraction < 1:
            raise ConfigError("reserve_fraction", "must be in [0, 1)")
        if self.max_retries is not None and self.max_retries < 0:
            raise ConfigError("max_retries", "must be non-negative or unlimited")

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)

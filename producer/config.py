"""Settings: pydantic-settings models; the only place that reads the environment.

Every setting is an environment variable `ZENDESK_CDC_<NAME>` (case-insensitive) and,
for `run`, a command-line flag `--<name-with-dashes>`; the README has one table of all
of them, and docker-compose and the Helm chart use the same names.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from producer.errors import ConfigError
from producer.model import ExportMode
from producer.zendesk.start import parse_start

ENV_PREFIX = "ZENDESK_CDC_"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every setting of zendesk-cdc. Descriptions feed `check-config` and the README table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", case_sensitive=False
    )

    # --- Zendesk ---------------------------------------------------------------
    zendesk_url: str | None = Field(
        None, description="Base URL, https://ACCOUNT.zendesk.com (plain http only for loopback)"
    )
    zendesk_account: str | None = Field(
        None, description="Account name for keys and transactional.id; default: URL's subdomain"
    )
    zendesk_email: str | None = Field(None, description="Admin email, for API-token auth")
    zendesk_api_token: SecretStr | None = Field(
        None, description="API token (Zendesk retires API tokens on 2027-04-30: prefer OAuth)"
    )
    zendesk_oauth_access_token: SecretStr | None = Field(
        None, description="OAuth bearer access token (static; no refresh)"
    )
    zendesk_oauth_client_id: str | None = Field(None, description="OAuth client id, for refresh")
    zendesk_oauth_client_secret: SecretStr | None = Field(
        None, description="OAuth client secret, for refresh"
    )
    zendesk_oauth_refresh_token: SecretStr | None = Field(
        None,
        description="Initial OAuth refresh token; rotated pairs are kept in STATE_DIR afterwards",
    )
    export_mode: ExportMode = Field(
        ExportMode.TIME, description="time (time-based export) or cursor (cursor-based export)"
    )
    start: str = Field(
        "0",
        description="First-run start when Kafka holds no cursor: 0, an ISO date, or 30d/12h/90m",
    )
    per_page: int = Field(1000, ge=1, le=1000, description="Tickets per export page (max 1000)")
    per_page_floor: int = Field(
        100, ge=1, le=1000, description="Smallest per_page when 504s make it shrink"
    )
    include: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Side-loads, comma-separated (users,groups,organizations,metric_sets)"
    )
    exclude_deleted: bool = Field(False, description="Ask Zendesk to leave deleted tickets out")
    support_type_scope: Literal["agent", "ai_agent", "all"] = Field(
        "all", description="Which tickets: agent, ai_agent or all"
    )
    requests_per_minute: int = Field(
        10, ge=1, le=100, description="Export rate budget (10; 30 with High Volume add-on)"
    )
    account_rate_reserve: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Share of the account-wide rate limit left for other integrations",
    )
    hold_back_seconds: int = Field(
        60, ge=60, description="Never ask for start_time later than now minus this"
    )
    http_timeout_seconds: float = Field(60.0, gt=0, description="Timeout of one Zendesk request")
    allow_insecure_http: bool = Field(
        False, description="Allow plain http to a non-loopback Zendesk (the compose simulator)"
    )
    poll_interval_seconds: float = Field(
        60.0, gt=0, description="Wait between polls once caught up"
    )

    # --- Kafka -----------------------------------------------------------------
    bootstrap_servers: str | None = Field(None, description="Kafka bootstrap.servers")
    topic: str = Field("zendesk.tickets", description="Topic of ticket change records")
    changelog_topic: str | None = Field(
        None, description="Compacted store changelog; default TOPIC.changelog"
    )
    offsets_topic: str | None = Field(
        None, description="Compacted export-cursor checkpoints; default TOPIC.offsets"
    )
    dead_letter_topic: str | None = Field(
        None, description="Tickets that cannot be encoded; default TOPIC.dlq"
    )
    create_topics: bool = Field(
        True, description="Create missing topics; existing ones are checked"
    )
    topic_partitions: int = Field(3, ge=1, description="Partitions of new records/DLQ topics")
    changelog_partitions: int = Field(1, ge=1, description="Partitions of a new changelog topic")
    replication_factor: int = Field(1, ge=1, description="Replication factor of new topics")
    transactional_id: str | None = Field(
        None, description="Producer transactional.id; default zendesk-cdc-ACCOUNT"
    )
    transaction_timeout_ms: int = Field(
        60000, ge=1000, description="transaction.timeout.ms of the producer"
    )
    tombstones: bool = Field(True, description="Publish a tombstone after each delete record")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security.protocol"
    )
    sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    sasl_username: str | None = Field(None, description="SASL username")
    sasl_password: SecretStr | None = Field(None, description="SASL password")
    ssl_ca_location: str | None = Field(None, description="CA bundle for SSL")
    kafka_extra: dict[str, str] = Field(
        default_factory=dict,
        repr=False,  # may hold a pass-through sasl.password
        description='Any other librdkafka producer settings, as JSON: {"linger.ms": "50"}',
    )
    schema_registry_url: str | None = Field(
        None, description="Confluent Schema Registry URL; unset: Avro single-object encoding"
    )
    schema_registry_basic_auth: SecretStr | None = Field(
        None, description="Schema Registry USER:PASSWORD"
    )
    subject_name_strategy: Literal["topic", "record", "topic_record"] = Field(
        "topic", description="Schema Registry subject name strategy"
    )
    auto_register_schemas: bool = Field(True, description="Register schemas that are missing")

    # --- Running ---------------------------------------------------------------
    state_dir: Path = Field(Path("state"), description="Local store and OAuth token file")
    http_address: str = Field(
        "0.0.0.0:9108", description="HOST:PORT of /metrics, /livez and /readyz (empty: off)"
    )
    liveness_intervals: int = Field(
        5, ge=2, description="/livez fails after this many poll intervals with no loop iteration"
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="json in containers, text on a terminal (auto decides by TTY)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")

    @field_validator("include", mode="before")
    @classmethod
    def _split_include(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        try:
            parse_start(value, now=0.0)
        except ConfigError as exc:
            raise ValueError("use 0 (unix seconds), an ISO date, or 30d / 12h / 90m") from exc
        return value

    @field_validator("zendesk_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like https://ACCOUNT.zendesk.com")
        return value.rstrip("/")

    # --- derived ---------------------------------------------------------------
    @property
    def account(self) -> str:
        if self.zendesk_account:
            return self.zendesk_account
        host = urlsplit(self.zendesk_url or "").hostname or "local"
        return host.split(".")[0] if host.endswith(".zendesk.com") else host

    @property
    def records_topic(self) -> str:
        return self.topic

    @property
    def changelog(self) -> str:
        return self.changelog_topic or f"{self.topic}.changelog"

    @property
    def offsets(self) -> str:
        return self.offsets_topic or f"{self.topic}.offsets"

    @property
    def dead_letters(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dlq"

    @property
    def producer_transactional_id(self) -> str:
        return self.transactional_id or f"zendesk-cdc-{self.account}"

    def redacted(self) -> dict[str, Any]:
        """The effective settings with every secret replaced, for check-config and logs."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "**********"
            elif name == "kafka_extra":
                out[name] = {k: ("**********" if _looks_secret(k) else v) for k, v in value.items()}
            elif isinstance(value, ExportMode):
                out[name] = value.value
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, tuple):
                out[name] = ",".join(value)
            else:
                out[name] = value
        return out

    def secrets(self) -> list[str]:
        """Every secret value configured, so log handlers can scrub them."""
        found = [
            v.get_secret_value()
            for name in type(self).model_fields
            if isinstance(v := getattr(self, name), SecretStr) and v.get_secret_value()
        ]
        found += [v for k, v in self.kafka_extra.items() if _looks_secret(k) and v]
        return found


def _looks_secret(key: str) -> bool:
    return any(word in key.lower() for word in ("password", "secret", "token", "key"))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line overrides; ConfigError on bad input."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        setting = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{ENV_PREFIX}{setting.upper()}", first["msg"]) from exc
    host = urlsplit(settings.zendesk_url or "https://x").hostname or ""
    insecure = (settings.zendesk_url or "").startswith("http://")
    if insecure and not is_loopback(host) and not settings.allow_insecure_http:
        raise ConfigError(
            f"{ENV_PREFIX}ZENDESK_URL",
            "plain http is allowed only for loopback hosts; use https "
            f"(or set {ENV_PREFIX}ALLOW_INSECURE_HTTP=true for a simulator)",
        )
    return settings

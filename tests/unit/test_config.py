"""Settings: one prefix, typed values, errors that name the variable, secrets that stay secret."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from producer.config import ENV_PREFIX, Settings, load_settings
from producer.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def test_defaults_are_the_documented_ones() -> None:
    s = load_settings()
    assert (s.per_page, s.requests_per_minute, s.poll_interval_seconds) == (1000, 10, 60.0)
    assert s.support_type_scope == "all"  # Zendesk's own default leaves AI-agent tickets out
    assert s.hold_back_seconds == 60
    assert s.state_dir == Path("state")
    assert s.http_address == "0.0.0.0:9108"
    assert s.tombstones is True


def test_environment_is_read_with_the_prefix_case_insensitively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZENDESK_CDC_PER_PAGE", "250")
    monkeypatch.setenv("zendesk_cdc_topic", "acme.tickets")
    monkeypatch.setenv("ZENDESK_CDC_INCLUDE", "users, groups,,metric_sets")
    monkeypatch.setenv("ZENDESK_CDC_KAFKA_EXTRA", '{"linger.ms": "50"}')
    monkeypatch.setenv("ZENDESK_CDC_TOMBSTONES", "false")
    monkeypatch.setenv("PER_PAGE", "7")  # no prefix: not ours
    s = load_settings()
    assert s.per_page == 250
    assert s.topic == "acme.tickets"
    assert s.include == ("users", "groups", "metric_sets")
    assert s.kafka_extra == {"linger.ms": "50"}
    assert s.tombstones is False


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZENDESK_CDC_PER_PAGE", "250")
    assert load_settings(per_page="100").per_page == 100
    assert load_settings(per_page=None).per_page == 250  # None means "flag not given"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"per_page": "1001"}, "ZENDESK_CDC_PER_PAGE"),
        ({"per_page": "many"}, "ZENDESK_CDC_PER_PAGE"),
        ({"start": "yesterday"}, "ZENDESK_CDC_START"),
        ({"zendesk_url": "acme.zendesk.com"}, "ZENDESK_CDC_ZENDESK_URL"),
        ({"zendesk_url": "http://acme.zendesk.com"}, "ZENDESK_CDC_ZENDESK_URL"),
        ({"hold_back_seconds": "30"}, "ZENDESK_CDC_HOLD_BACK_SECONDS"),
        ({"support_type_scope": "agents"}, "ZENDESK_CDC_SUPPORT_TYPE_SCOPE"),
        ({"account_rate_reserve": "1"}, "ZENDESK_CDC_ACCOUNT_RATE_RESERVE"),
        ({"log_format": "xml"}, "ZENDESK_CDC_LOG_FORMAT"),
        ({"liveness_intervals": "1"}, "ZENDESK_CDC_LIVENESS_INTERVALS"),
        ({"no_such_setting": "1"}, "ZENDESK_CDC_NO_SUCH_SETTING"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(
    overrides: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    assert caught.value.setting == variable
    assert variable in str(caught.value)


def test_a_bad_value_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZENDESK_CDC_REQUESTS_PER_MINUTE", "0")
    with pytest.raises(ConfigError, match="ZENDESK_CDC_REQUESTS_PER_MINUTE"):
        load_settings()


@pytest.mark.parametrize("start", ["0", "1700000000", "30d", "12h", "90m", "2024-01-31"])
def test_start_accepts_the_documented_forms(start: str) -> None:
    assert load_settings(start=start).start == start


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"])
def test_plain_http_is_allowed_for_loopback_only(url: str) -> None:
    assert load_settings(zendesk_url=url).zendesk_url == url


def test_plain_http_elsewhere_needs_the_explicit_switch() -> None:
    url = "http://zendesk-sim:8080"
    assert load_settings(zendesk_url=url, allow_insecure_http="true").zendesk_url == url


def test_derived_names() -> None:
    s = load_settings(zendesk_url="https://acme.zendesk.com/", topic="t")
    assert s.zendesk_url == "https://acme.zendesk.com"
    assert s.account == "acme"
    assert (s.changelog, s.offsets, s.dead_letters) == ("t.changelog", "t.offsets", "t.dlq")
    assert s.producer_transactional_id == "zendesk-cdc-acme"
    named = load_settings(
        zendesk_url="https://acme.zendesk.com", zendesk_account="acme-eu", transactional_id="x"
    )
    assert (named.account, named.producer_transactional_id) == ("acme-eu", "x")


SECRET_VALUES = {
    "zendesk_api_token": "api-token-1a2b3c",
    "zendesk_oauth_access_token": "access-4d5e6f",
    "zendesk_oauth_client_secret": "client-secret-7a8b9c",
    "zendesk_oauth_refresh_token": "refresh-0d1e2f",
    "sasl_password": "sasl-3a4b5c",
    "schema_registry_basic_auth": "user:sr-pass-6d7e8f",
}


def test_every_secret_field_is_a_secret_str_and_redacted() -> None:
    secret_fields = {
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    assert secret_fields == set(SECRET_VALUES)  # a new secret must be added here on purpose
    extra = {"sasl.password": "extra-pw-9f8e7d", "ssl.key.password": "key-pw-1234", "acks": "all"}
    s = load_settings(**SECRET_VALUES, kafka_extra=extra)
    for name in SECRET_VALUES:
        assert isinstance(getattr(s, name), SecretStr)
    shown = json.dumps(s.redacted(), default=str)
    for value in [*SECRET_VALUES.values(), "extra-pw-9f8e7d", "key-pw-1234"]:
        assert value not in shown
    for value in SECRET_VALUES.values():
        assert value not in repr(s)
    assert s.redacted()["kafka_extra"] == {
        "sasl.password": "**********",
        "ssl.key.password": "**********",
        "acks": "all",
    }
    assert set(s.secrets()) == {*SECRET_VALUES.values(), "extra-pw-9f8e7d", "key-pw-1234"}


def test_redacted_lists_every_setting() -> None:
    assert set(load_settings().redacted()) == set(Settings.model_fields)


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        s.per_page = 5  # type: ignore[misc]


def test_repr_hides_pass_through_kafka_secrets() -> None:
    s = load_settings(kafka_extra={"sasl.password": "extra-pw-9f8e7d"})
    assert "extra-pw-9f8e7d" not in repr(s)

"""First-run start values and the export options' validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producer.errors import ConfigError
from producer.zendesk.options import ExportOptions
from producer.zendesk.start import parse_start

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("1700000000", 1700000000),
        ("30d", NOW - 30 * 86400),
        ("12h", NOW - 12 * 3600),
        ("45m", NOW - 45 * 60),
        ("2w", NOW - 14 * 86400),
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC).timestamp()),
        ("2024-01-31T10:00:00Z", datetime(2024, 1, 31, 10, tzinfo=UTC).timestamp()),
        ("2024-01-31T10:00:00+02:00", datetime(2024, 1, 31, 8, tzinfo=UTC).timestamp()),
        ("100000d", 0),
    ],
)
def test_start_values(value: str, expected: float) -> None:
    assert parse_start(value, NOW) == int(expected)


@pytest.mark.parametrize("value", ["", "yesterday", "30x", "-5", "2024-13-01"])
def test_bad_start_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="start"):
        parse_start(value, NOW)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "https://acme.zendesk.com"],
)
def test_allowed_urls(url: str) -> None:
    assert ExportOptions(url).base_url == url


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"base_url": "http://acme.zendesk.com"}, "zendesk_url"),
        ({"base_url": "http://10.0.0.5"}, "zendesk_url"),
        ({"base_url": "ftp://localhost"}, "zendesk_url"),
        ({"per_page": 1001}, "per_page"),
        ({"per_page_floor": 0}, "per_page_floor"),
        ({"support_type_scope": "everyone"}, "support_type_scope"),
        ({"include": ("users", "last_audits")}, "include"),
        ({"hold_back_margin": 30}, "hold_back_margin"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"reserve_fraction": 1.0}, "reserve_fraction"),
    ],
)
def test_bad_options_name_the_setting(kwargs: dict[str, object], setting: str) -> None:
    args: dict[str, object] = {"base_url": "https://acme.zendesk.com", **kwargs}
    with pytest.raises(ConfigError) as info:
        ExportOptions(**args)  # type: ignore[arg-type]
    assert info.value.setting == setting

"""The `zendesk-cdc` command line: every setting is a flag, flags win over the environment,
check-config never shows a secret, bad settings exit 2 naming the variable."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from producer.cli import EXIT_CONFIG, build_parser, main
from producer.config import ENV_PREFIX, Settings

SECRETS = {
    "ZENDESK_CDC_ZENDESK_API_TOKEN": "env-api-token-81f2",
    "ZENDESK_CDC_ZENDESK_OAUTH_CLIENT_SECRET": "env-client-secret-93a1",
}
FLAG_SECRETS = {
    "--sasl-password": "flag-sasl-pw-55c0",
    "--zendesk-oauth-refresh-token": "flag-refresh-6e7d",
    "--schema-registry-basic-auth": "user:flag-sr-pw-0b3c",
}
EXTRA_SECRET = "flag-extra-sasl-pw-7712"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def subcommand(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser = action.choices[name]
            return sub
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_every_setting_has_a_flag(command: str) -> None:
    flags = {
        action.dest: action.option_strings
        for action in subcommand(command)._actions
        if action.option_strings
    }
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in flags.get(name, []), name


def check_config(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, object], str]:
    code = main(["check-config", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else {}, out + err


def test_check_config_prints_the_effective_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code, shown, _ = check_config(
        capsys, "--zendesk-url", "https://acme.zendesk.com", "--bootstrap-servers", "k:9092"
    )
    assert code == 0
    assert set(Settings.model_fields) <= set(shown)
    assert shown["zendesk_url"] == "https://acme.zendesk.com"
    assert shown["(derived) account"] == "acme"
    assert shown["(derived) transactional.id"] == "zendesk-cdc-acme"


def test_flags_override_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ZENDESK_CDC_PER_PAGE", "500")
    monkeypatch.setenv("ZENDESK_CDC_TOPIC", "from-env")
    monkeypatch.setenv("ZENDESK_CDC_TOMBSTONES", "true")
    _, shown, _ = check_config(capsys, "--per-page", "200", "--no-tombstones")
    assert (shown["per_page"], shown["topic"], shown["tombstones"]) == (200, "from-env", False)
    _, shown, _ = check_config(capsys)
    assert (shown["per_page"], shown["tombstones"]) == (500, True)


def test_check_config_never_shows_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    flags = [part for pair in FLAG_SECRETS.items() for part in pair]
    extra = json.dumps({"sasl.password": EXTRA_SECRET, "linger.ms": "50"})
    code, shown, everything = check_config(capsys, *flags, "--kafka-extra", extra)
    assert code == 0
    for value in [*SECRETS.values(), *FLAG_SECRETS.values(), EXTRA_SECRET, "flag-sr-pw-0b3c"]:
        assert value not in everything
    for name in ("zendesk_api_token", "zendesk_oauth_client_secret", "sasl_password"):
        assert shown[name] == "**********"
    assert shown["kafka_extra"] == {"sasl.password": "**********", "linger.ms": "50"}


def test_check_config_warns_about_what_run_will_need(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 0
    err = capsys.readouterr().err
    assert "ZENDESK_CDC_ZENDESK_URL is not set" in err
    assert "ZENDESK_CDC_BOOTSTRAP_SERVERS is not set" in err


@pytest.mark.parametrize(
    ("args", "env", "variable"),
    [
        (["--per-page", "0"], {}, "ZENDESK_CDC_PER_PAGE"),
        (["--start", "last tuesday"], {}, "ZENDESK_CDC_START"),
        (["--zendesk-url", "http://acme.example.com"], {}, "ZENDESK_CDC_ZENDESK_URL"),
        ([], {"ZENDESK_CDC_POLL_INTERVAL_SECONDS": "-1"}, "ZENDESK_CDC_POLL_INTERVAL_SECONDS"),
        ([], {"ZENDESK_CDC_EXPORT_MODE": "stream"}, "ZENDESK_CDC_EXPORT_MODE"),
    ],
)
def test_a_bad_setting_exits_2_naming_the_variable(
    args: list[str],
    env: dict[str, str],
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", *args]) == EXIT_CONFIG == 2
    err = capsys.readouterr().err
    assert err.startswith("zendesk-cdc: setting ")
    assert variable in err


def test_kafka_extra_flag_must_be_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check-config", "--kafka-extra", "linger.ms=50"])
    assert exited.value.code == 2  # argparse's own usage error
    assert "--kafka-extra" in capsys.readouterr().err


def test_every_command_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "demo", "check-config", "simulate"):
        assert command in out

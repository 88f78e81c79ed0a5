"""docker-compose.yml validates against the Compose spec and passes only real settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy_support import (
    DASHBOARD,
    ROOT,
    env_names_in,
    load_from_env,
    parse_env_file,
    settings_env_names,
    unknown_settings,
)

COMPOSE = ROOT / "docker-compose.yml"
SERVICE = "zendesk-cdc"
SIMULATOR_ENV = "deploy/simulator.env"
REAL_ENV = "deploy/zendesk.env.example"  # what a user copies to deploy/zendesk.env
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${NAME:-default} substitution, enough for the paths in our file."""
    return _DEFAULTED.sub(lambda m: env.get(m.group(1)) or m.group(2), text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def env_files(service: dict[str, Any], variables: dict[str, str]) -> list[str]:
    entries = service.get("env_file", [])
    entries = [entries] if isinstance(entries, str) else entries
    return [interpolate(e if isinstance(e, str) else e["path"], variables) for e in entries]


def passed_settings(
    service: dict[str, Any], root: Path, variables: dict[str, str] | None = None
) -> set[str]:
    """Every ZENDESK_CDC_* a compose service passes: `environment` and its env files."""
    env = service.get("environment", {})
    names = set(env) if isinstance(env, dict) else {item.split("=", 1)[0] for item in env}
    for path in env_files(service, variables or {}):
        names |= env_names_in((root / path).read_text())
    return {n for n in names if n.startswith("ZENDESK_CDC_")}


def test_validates_against_the_compose_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_check_rejects_a_broken_file(tmp_path: Path) -> None:
    # guards against the check passing vacuously (wrong schema name, empty file, ...)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  x:\n    imagee: busybox\n")  # misspelt key
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(broken)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("env_file", [None, REAL_ENV])
def test_every_setting_passed_to_zendesk_cdc_exists(
    compose: dict[str, Any], env_file: str | None
) -> None:
    variables = {"CDC_ENV_FILE": env_file} if env_file else {}
    for name, service in compose["services"].items():
        names = passed_settings(service, ROOT, variables)
        assert unknown_settings(names) == set(), name
    passed = passed_settings(compose["services"][SERVICE], ROOT, variables)
    assert {"ZENDESK_CDC_BOOTSTRAP_SERVERS", "ZENDESK_CDC_ZENDESK_URL"} <= passed


def test_env_example_names_only_real_settings() -> None:
    names = env_names_in((ROOT / REAL_ENV).read_text())
    assert "ZENDESK_CDC_ZENDESK_URL" in names
    assert unknown_settings(names) == set()


def test_setting_check_catches_a_typo(tmp_path: Path) -> None:
    env_file = tmp_path / "x.env"
    env_file.write_text("ZENDESK_CDC_ZENDESK_URL=https://a.zendesk.com\nZENDESK_CDC_TOPICS=t\n")
    service = {
        "environment": {"ZENDESK_CDC_BOOTSTAP_SERVERS": "k:9092"},
        "env_file": [{"path": "${X:-y.env}"}],
    }
    found = passed_settings(service, tmp_path, {"X": "x.env"})
    assert unknown_settings(found) == {"ZENDESK_CDC_BOOTSTAP_SERVERS", "ZENDESK_CDC_TOPICS"}
    assert "ZENDESK_CDC_ZENDESK_URL" in settings_env_names()


def test_one_switch_replaces_the_simulator_env_file(compose: dict[str, Any]) -> None:
    service = compose["services"][SERVICE]
    assert env_files(service, {}) == [SIMULATOR_ENV]
    assert env_files(service, {"CDC_ENV_FILE": "deploy/zendesk.env"}) == ["deploy/zendesk.env"]
    # `environment` overrides env files in compose: it must not shadow the account switch
    switched = set(parse_env_file((ROOT / SIMULATOR_ENV).read_text()))
    switched |= env_names_in((ROOT / REAL_ENV).read_text())
    assert not switched & set(service["environment"])
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/zendesk.env" in ignored, "real credentials must stay out of git"


def test_simulator_path_allows_plain_http_only_for_the_simulator() -> None:
    simulator = parse_env_file((ROOT / SIMULATOR_ENV).read_text())
    assert simulator["ZENDESK_CDC_ZENDESK_URL"] == "http://simulator:8080"
    assert simulator["ZENDESK_CDC_ALLOW_INSECURE_HTTP"] == "true"
    example = parse_env_file((ROOT / REAL_ENV).read_text())
    assert "ZENDESK_CDC_ALLOW_INSECURE_HTTP" not in example
    assert example["ZENDESK_CDC_ZENDESK_URL"].startswith("https://")


def test_simulator_listens_where_zendesk_cdc_looks(compose: dict[str, Any]) -> None:
    command = compose["services"]["simulator"]["command"]
    assert command[0] == "simulate"
    # inside a container the default 127.0.0.1 would be unreachable from other services
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    assert f"http://simulator:{port}" in (ROOT / SIMULATOR_ENV).read_text()


def test_kafka_single_node_supports_transactions(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 1
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    bootstrap = compose["services"][SERVICE]["environment"]["ZENDESK_CDC_BOOTSTRAP_SERVERS"]
    assert f"INTERNAL://{bootstrap}" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_service_is_hardened_like_the_chart(compose: dict[str, Any]) -> None:
    service = compose["services"][SERVICE]
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    state = service["environment"]["ZENDESK_CDC_STATE_DIR"]
    assert any(v.endswith(f":{state}") for v in service["volumes"])


def test_prometheus_scrapes_the_metrics_address(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]
    port = compose["services"][SERVICE]["environment"]["ZENDESK_CDC_HTTP_ADDRESS"].split(":")[-1]
    assert f"{SERVICE}:{port}" in targets
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_grafana_mounts_the_one_dashboard_and_existing_provisioning(
    compose: dict[str, Any],
) -> None:
    mounts = [v.split(":") for v in compose["services"]["grafana"]["volumes"]]
    sources = {m[0] for m in mounts if m[0].startswith("./")}
    assert f"./{DASHBOARD.relative_to(ROOT)}" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/zendesk-cdc.yml").read_text()
    )
    dashboard_dir = provider["providers"][0]["options"]["path"]
    targets = {m[1] for m in mounts}
    assert f"{dashboard_dir}/zendesk-cdc.json" in targets
    datasources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"


def _service_env(compose: dict[str, Any], *env_files: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for path in env_files:  # later files win, as in compose
        env |= parse_env_file((ROOT / path).read_text())
    env |= {k: str(v) for k, v in compose["services"][SERVICE]["environment"].items()}
    return env


def test_simulator_path_loads_as_valid_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_from_env(monkeypatch, _service_env(compose, SIMULATOR_ENV))
    assert settings.zendesk_url == "http://simulator:8080"
    assert settings.allow_insecure_http is True
    assert settings.bootstrap_servers == "kafka:9092"
    assert str(settings.state_dir) == "/var/lib/zendesk-cdc"


def test_real_account_path_loads_and_turns_insecure_http_off(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _service_env(compose, REAL_ENV)
    # the example leaves credentials commented out; a user fills in one way
    env |= {"ZENDESK_CDC_ZENDESK_EMAIL": "a@b.c", "ZENDESK_CDC_ZENDESK_API_TOKEN": "t"}
    settings = load_from_env(monkeypatch, env)
    assert settings.zendesk_url == "https://ACCOUNT.zendesk.com"
    # nothing of the simulator's path leaks into a real account's settings
    assert settings.allow_insecure_http is False
    assert settings.zendesk_oauth_client_id is None

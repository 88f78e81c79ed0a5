"""docker-compose.yml validates against the Compose spec and passes only real settings."""

from __future__ import annotations

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
    settings_env_names,
    unknown_settings,
)

COMPOSE = ROOT / "docker-compose.yml"
SERVICE = "zendesk-cdc"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def passed_settings(service: dict[str, Any], root: Path) -> set[str]:
    """Every ZENDESK_CDC_* a compose service passes: `environment` and its env files."""
    env = service.get("environment", {})
    names = set(env) if isinstance(env, dict) else {item.split("=", 1)[0] for item in env}
    for entry in service.get("env_file", []):
        path = root / (entry if isinstance(entry, str) else entry["path"])
        if path.exists():
            names |= env_names_in(path.read_text())
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


def test_every_setting_passed_to_zendesk_cdc_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        names = passed_settings(service, ROOT)
        assert unknown_settings(names) == set(), name
    assert "ZENDESK_CDC_BOOTSTRAP_SERVERS" in passed_settings(compose["services"][SERVICE], ROOT)


def test_env_example_names_only_real_settings() -> None:
    names = env_names_in((ROOT / "deploy" / "zendesk.env.example").read_text())
    assert "ZENDESK_CDC_ZENDESK_URL" in names
    assert unknown_settings(names) == set()


def test_setting_check_catches_a_typo(tmp_path: Path) -> None:
    env_file = tmp_path / "x.env"
    env_file.write_text("ZENDESK_CDC_ZENDESK_URL=https://a.zendesk.com\nZENDESK_CDC_TOPICS=t\n")
    service = {"environment": {"ZENDESK_CDC_BOOTSTAP_SERVERS": "k:9092"}, "env_file": ["x.env"]}
    found = passed_settings(service, tmp_path)
    assert unknown_settings(found) == {"ZENDESK_CDC_BOOTSTAP_SERVERS", "ZENDESK_CDC_TOPICS"}
    assert "ZENDESK_CDC_ZENDESK_URL" in settings_env_names()


def test_real_account_env_file_is_optional_and_read_last(compose: dict[str, Any]) -> None:
    files = compose["services"][SERVICE]["env_file"]
    assert files[-1] == {"path": "deploy/zendesk.env", "required": False}
    # compose lets later env files override earlier ones, and `environment` overrides
    # them all: so the account switch must not be shadowed by `environment`.
    real = {"ZENDESK_CDC_ZENDESK_URL", "ZENDESK_CDC_ALLOW_INSECURE_HTTP"}
    assert not real & set(compose["services"][SERVICE]["environment"])
    for entry in files[:-1]:
        assert (ROOT / entry["path"]).exists()


def test_simulator_path_allows_plain_http_only_for_the_simulator() -> None:
    simulator = (ROOT / "deploy" / "simulator.env").read_text()
    assert "ZENDESK_CDC_ZENDESK_URL=http://simulator:8080" in simulator
    assert "ZENDESK_CDC_ALLOW_INSECURE_HTTP=true" in simulator
    example = (ROOT / "deploy" / "zendesk.env.example").read_text()
    assert "ZENDESK_CDC_ALLOW_INSECURE_HTTP=false" in example
    assert "ZENDESK_CDC_ZENDESK_URL=https://" in example


def test_simulator_listens_where_zendesk_cdc_looks(compose: dict[str, Any]) -> None:
    command = compose["services"]["simulator"]["command"]
    assert command[0] == "simulate"
    # inside a container the default 127.0.0.1 would be unreachable from other services
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    assert f"http://simulator:{port}" in (ROOT / "deploy" / "simulator.env").read_text()


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

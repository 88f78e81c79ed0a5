"""What the deployment artefacts may name: settings and metrics the service really has.

The CI checks of Dockerfile, compose, Helm chart and dashboard (tests/unit/test_deploy_*.py)
compare every ZENDESK_CDC_* variable and every zendesk_cdc_* metric they mention against
these sets, derived from `Settings` and `Metrics` themselves rather than copied lists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from producer.config import ENV_PREFIX, Settings, load_settings
from producer.metrics import PREFIX, Metrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "zendesk-cdc"
DASHBOARD = CHART / "dashboards" / "zendesk-cdc.json"

# A metric identifier inside PromQL; label values such as job="zendesk-cdc" never match
# because Prometheus metric names cannot contain "-".
_METRIC = re.compile(rf"(?<![A-Za-z0-9_:]){PREFIX}_[A-Za-z0-9_:]*")
_ENV = re.compile(rf"(?<![A-Za-z0-9_]){ENV_PREFIX}[A-Z0-9_]+")

# Sample suffixes prometheus-client exposes per family type.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
    "summary": ("", "_sum", "_count", "_created"),
}


def settings_env_names() -> frozenset[str]:
    """ZENDESK_CDC_<FIELD> for every field of Settings."""
    return frozenset(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def exported_metric_names() -> frozenset[str]:
    """Every sample name a fresh Metrics() exposes, plus those of families still empty.

    Families with unbound labels (broker RTT by broker) have no samples until first use,
    so their names come from the family type, exactly as prometheus-client will write them.
    """
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return frozenset(names)


def metric_names_in(expr: str) -> set[str]:
    """The zendesk_cdc_* metric identifiers a PromQL expression mentions."""
    return set(_METRIC.findall(expr))


def env_names_in(text: str) -> set[str]:
    """The ZENDESK_CDC_* variable names mentioned in a text (env file, manifest, Dockerfile)."""
    return set(_ENV.findall(text))


def unknown_metrics(exprs: Iterable[str]) -> dict[str, set[str]]:
    """Expression -> metric names in it that the service does not export (empty: all good)."""
    known = exported_metric_names()
    found = {expr: metric_names_in(expr) - known for expr in exprs}
    return {expr: names for expr, names in found.items() if names}


def unknown_settings(names: Iterable[str]) -> set[str]:
    """The ZENDESK_CDC_* names that are not a Settings field."""
    return {name for name in names if name.startswith(ENV_PREFIX)} - settings_env_names()



def parse_env_file(text: str) -> dict[str, str]:
    """NAME=value lines of a compose env file (comments and blanks skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            out[name] = value
    return out


def load_from_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Settings:
    """Settings exactly as the service would load them from this environment alone."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()

"""Helpers shared by the operations tests: scraping /metrics, probing, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from producer.config import Settings
from tests.integration.pipeline_support import pipeline_settings


@dataclass(frozen=True)
class Scrape:
    """One /metrics scrape: sample name + labels -> value."""

    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            raise KeyError(f"no series {name}{labels or ''} in the scrape")
        return self.samples[key]

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def scrape(base_url: str) -> Scrape:
    response = httpx.get(f"{base_url}/metrics", timeout=5)
    response.raise_for_status()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    return Scrape(samples)


def probe(base_url: str, path: str) -> int:
    return httpx.get(f"{base_url}{path}", timeout=5).status_code


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 50 ms; fail with `what` if it stays false for `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def service_settings(
    base_url: str, bootstrap: str, state: Path, topic: str, **overrides: Any
) -> Settings:
    """Settings of a service reading the simulator (default credentials) into `topic`."""
    return pipeline_settings(base_url, bootstrap, state, topic, **{"per_page": 500, **overrides})

"""The Grafana dashboard shipped with compose and the chart queries only real metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.deploy_support import (
    DASHBOARD,
    exported_metric_names,
    metric_names_in,
    unknown_metrics,
)


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def test_every_query_names_only_exported_metrics() -> None:
    exprs = _exprs(_dashboard())
    assert exprs, "the dashboard has no queries"
    assert unknown_metrics(exprs) == {}


def test_every_query_names_some_service_metric() -> None:
    # A query on no zendesk_cdc_* metric would silently show another system's data.
    assert [e for e in _exprs(_dashboard()) if not metric_names_in(e)] == []


def test_checker_flags_a_metric_the_service_does_not_export() -> None:
    bad = 'rate(zendesk_cdc_tickets_fetched{job="zendesk-cdc"}[5m])'  # missing _total
    assert unknown_metrics([bad]) == {bad: {"zendesk_cdc_tickets_fetched"}}


@pytest.mark.parametrize(
    "topic",
    [
        # issue 4: backfill progress, lag, throughput, rate budget, errors
        "zendesk_cdc_export_cursor_timestamp_seconds",
        "zendesk_cdc_backfill_start_timestamp_seconds",
        "zendesk_cdc_changes_published_total",
        "zendesk_cdc_tickets_fetched_total",
        "zendesk_cdc_rate_budget_requests_per_minute",
        "zendesk_cdc_rate_limit_waits_total",
        "zendesk_cdc_rate_limited_total",
        "zendesk_cdc_per_page",
        "zendesk_cdc_errors_total",
        "zendesk_cdc_dead_lettered_total",
        "zendesk_cdc_producer_recreated_total",
        "zendesk_cdc_store_entries",
        "zendesk_cdc_store_bytes",
        "zendesk_cdc_transaction_duration_seconds_bucket",
    ],
)
def test_dashboard_covers(topic: str) -> None:
    assert topic in exported_metric_names()
    assert any(topic in metric_names_in(e) for e in _exprs(_dashboard()))


def test_panels_are_well_formed() -> None:
    dashboard = _dashboard()
    panels = list(_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert dashboard["uid"] == "zendesk-cdc"
    for panel in panels:
        if panel["type"] == "row":
            continue
        # every panel follows the dashboard's data source variable, never a fixed uid,
        # so the same file works in compose and under the Grafana sidecar
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids, panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]

"""docs/grafana-dashboard.json loads as a Grafana dashboard, and every metric its queries
name is one the server exposes (and every exposed family has a panel), so a renamed
metric cannot leave the dashboard silently empty."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from probity.interfaces.api.observability import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
NAME = re.compile(r"\bprobity_[a-z_]+\b")


def _exposed() -> tuple[set[str], set[str]]:
    """(sample names, family names) of a server's metrics once each has a value."""
    metrics = Metrics()
    metrics.observe_search("candidates", 0.4)
    metrics.requests.labels("GET", "/health", "200").inc()
    metrics.request_seconds.labels("/health").observe(0.01)
    families = list(text_string_to_metric_families(metrics.exposition().decode()))
    samples = {s.name for f in families for s in f.samples}
    # ``*_created`` (a series' start time) is not something to chart, and the multiprocess
    # exposition the server uses leaves it out.
    return samples, {f.name for f in families if not f.name.endswith("_created")}


def _targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "Probity"
    assert isinstance(dashboard["schemaVersion"], int)
    assert [i["pluginId"] for i in dashboard["__inputs"]] == ["prometheus"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 6
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        assert panel["targets"], panel["title"]
    for target in _targets(dashboard):
        assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_every_metric_the_dashboard_queries_is_exposed_and_every_family_is_shown() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    samples, families = _exposed()
    named = {n for t in _targets(dashboard) for n in NAME.findall(t["expr"])}
    assert named, "the dashboard queries no Probity metric"
    unknown = sorted(named - samples)
    assert not unknown, f"the dashboard queries metrics the server does not expose: {unknown}"
    shown = {f for f in families if any(n == f or n.startswith(f + "_") for n in named)}
    assert shown == families, f"exposed but on no panel: {sorted(families - shown)}"


def test_the_check_catches_a_renamed_metric() -> None:
    samples, _ = _exposed()
    assert "probity_searches_total" in samples
    assert "probity_search_total" not in samples  # what a typo in a panel would name

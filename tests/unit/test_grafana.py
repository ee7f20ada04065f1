"""The Grafana dashboard (docs/grafana/) and its provisioning (deploy/monitoring/) hold together:
valid JSON, a sane layout, and every query names a metric the worker exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from worker import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "news-ingest.json"


def exported_names() -> set[str]:
    names = set()
    for family in metrics.REGISTRY.collect():
        names.add(family.name)
        if family.type == "histogram":  # labelled: no samples until observed
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    # counters' families drop "_total"; histograms export _bucket/_sum/_count (samples cover both)
    return names | {f"{name}_total" for name in names}


def test_the_dashboard_is_valid_json_with_unique_ids_and_a_24_column_layout():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "news-ingest" and dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 10
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        assert panel["targets"] and panel["type"] in {"timeseries", "stat"}


def test_every_query_names_an_exported_metric():
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported_names()
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queries.append(dashboard["templating"]["list"][1]["definition"])
    for query in queries:
        used = set(re.findall(r"\bingest_[a-z_]+\b", query))
        assert used and used <= known, (query, used - known)
        assert query.count("(") == query.count(")") and query.count("{") == query.count("}")


def test_the_provisioning_points_grafana_at_prometheus_and_the_dashboard_folder():
    base = ROOT / "deploy" / "monitoring"
    prometheus = yaml.safe_load((base / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["dns_sd_configs"][0]["port"] == 6066
    source = yaml.safe_load((base / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((base / "grafana/provisioning/dashboards/news-ingest.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_compose_profile_monitoring_mounts_the_provisioning_and_the_dashboard():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = {name: s for name, s in compose["services"].items() if "monitoring" in s.get("profiles", [])}
    assert set(services) == {"prometheus", "grafana"}
    for service in services.values():
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), volume
    assert "./docs/grafana:/var/lib/grafana/dashboards:ro" in services["grafana"]["volumes"]

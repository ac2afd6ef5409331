"""The Grafana dashboard, its provisioning and the compose file, checked without running them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = json.loads((REPO / "deploy/grafana/dashboards/nids-detector.json").read_text())
METRICS = (
    "nids_flows_consumed_total",
    "nids_alerts_total",
    "nids_invalid_records_total",
    "nids_classifications_total",
    "nids_batch_duration_seconds_bucket",
    "nids_end_to_end_latency_seconds_bucket",
    "nids_consumer_lag",
    "nids_model_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "nids_model_reloads_total",
    "nids_feature_drift_psi",
    "nids_feature_out_of_range_total",
    "nids_unseen_category_total",
    "nids_predicted_class_share",
    "nids_reference_class_share",
)


def test_every_panel_queries_the_provisioned_datasource_with_a_unit() -> None:
    datasource = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text())[
        "datasources"
    ][0]
    assert DASHBOARD["panels"]
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"]
            # Whether each query parses and returns data is checked on a real Prometheus
            # (tests/integration/detector/test_prometheus_dashboard.py).
            assert re.search(r"\bnids_|\bprocess_", target["expr"]), target["expr"]


def test_dashboard_covers_every_metric_the_issue_lists() -> None:
    exprs = " ".join(t["expr"] for p in DASHBOARD["panels"] for t in p["targets"])
    for metric in METRICS:
        assert metric in exprs, metric
    units = {p["title"]: p["fieldConfig"]["defaults"]["unit"] for p in DASHBOARD["panels"]}
    assert units["Batch duration"] == "s" and units["End-to-end latency p99"] == "s"
    assert units["Detector memory"] == "bytes" and units["Detection rate (recall) per class"] == "percentunit"


def test_dashboard_metric_names_exist_in_the_detector_or_incidents() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from detector.metrics import DetectorMetrics
    from incidents.metrics import IncidentMetrics

    exposed = "".join(
        generate_latest(metrics.registry).decode()
        for metrics in (DetectorMetrics(CollectorRegistry()), IncidentMetrics(CollectorRegistry()))
    )
    names = set(
        re.findall(
            r"\b(nids_[a-z_]+|process_[a-z_]+)\b",
            " ".join(t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]),
        )
    )
    for name in names:
        family = re.sub(r"_(bucket|total|sum|count)$", "", name)
        assert re.search(rf"^# TYPE ({family}|{name}) ", exposed, re.M), f"{name} is exposed by neither service"


def test_provisioning_points_at_the_dashboard_folder_compose_mounts() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/nids.yaml").read_text())["providers"][0]
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(m.endswith(":" + provider["options"]["path"] + ":ro") for m in mounts)
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["job_name"] == "nids-detector"
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: image must be pinned"

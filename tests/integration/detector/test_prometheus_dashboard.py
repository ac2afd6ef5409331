"""A real Prometheus scrapes a detector during a replay; every dashboard query returns data, and the
per-class detection rates Prometheus computes agree with the replayed labels."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Producer
from prometheus_client import start_http_server

from incidents.config import SuppressRule
from nids_harness.checkout import REPO
from nids_harness.incident_stream import RunningIncidents, incidents_config
from nids_harness.ports import free_port
from nids_harness.running_detector import RunningDetector, detector_config
from nids_harness.topics import make_topics
from nids_harness.waiting import wait_until
from nids_model.artifact import load_model
from tests.integration.helpers import prometheus_ready, query, replay_synthetic, scraped_total, start_prometheus

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "nids-detector.json"


def dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p["targets"]]


def test_every_dashboard_query_answers_from_a_real_scrape(
    kafka_bootstrap: str, unique_name: str, trained_model: Path, prometheus_binary: str, tmp_path: Path
) -> None:
    topics = make_topics(kafka_bootstrap, unique_name)
    running = RunningDetector(detector_config(kafka_bootstrap, topics, unique_name, trained_model))
    # nids-incidents on the detector's alerts, with a suppression rule: the incident panels' queries.
    incidents = RunningIncidents(
        incidents_config(
            kafka_bootstrap,
            unique_name,
            alerts=topics.alerts,
            suppress=(SuppressRule(name="recon-lab", attack_cat="Reconnaissance"),),
        )
    )
    metrics_port, incidents_port, prometheus_port = free_port(), free_port(), free_port()
    server, _thread = start_http_server(metrics_port, addr="127.0.0.1", registry=running.metrics.registry)
    incidents_server, _ = start_http_server(incidents_port, addr="127.0.0.1", registry=incidents.metrics.registry)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: nids-detector\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        f"  - job_name: nids-incidents\n    static_configs:\n      - targets: ['127.0.0.1:{incidents_port}']\n"
    )
    prometheus = start_prometheus(prometheus_binary, config, tmp_path, prometheus_port)
    base = f"http://127.0.0.1:{prometheus_port}"
    try:
        assert wait_until(lambda: prometheus_ready(base), 30), "prometheus did not become ready"
        assert wait_until(lambda: scraped_total(base, "sum(up{job='nids-detector'})") == 1, 30), (
            "no scrape of the detector"
        )
        # Two waves a few scrapes apart, so rate() windows see the counters move.
        first = replay_synthetic(kafka_bootstrap, topics.flows, 2000, seed=61, run_id="p1")
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= 2000, 60)
        time.sleep(3)
        second = replay_synthetic(kafka_bootstrap, topics.flows, 2000, seed=62, run_id="p2")
        flows = pd.concat([first, second], ignore_index=True)
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        for i in range(10):
            producer.produce(topics.flows, key=f"bad-{i}", value=b"\x00garbage")
        assert producer.flush(10) == 0
        assert running.wait_for(lambda: running.value("nids_flows_consumed_total") >= 4010, 90)
        # Let a few scrapes see the final counters.
        assert wait_until(lambda: scraped_total(base) >= 4010, 30)
        alerts = running.metrics.totals.alerts
        assert incidents.wait_for(lambda: incidents.value("nids_incident_alerts_tracked_total") >= alerts, 60)
        time.sleep(2)
        empty = []
        for title, expr in dashboard_queries():
            result = query(base, expr.replace("$__rate_interval", "1m"))
            values = [float(r["value"][1]) for r in result]
            if not result or not any(np.isfinite(values)):
                empty.append(f"{title}: {expr}")
        assert empty == [], "dashboard queries without data:\n" + "\n".join(empty)

        recall_expr = next(e for t, e in dashboard_queries() if t.startswith("Detection rate"))
        from_prometheus = {r["metric"]["actual"]: float(r["value"][1]) for r in query(base, recall_expr)}
    finally:
        prometheus.terminate()
        prometheus.wait(20)
        server.shutdown()
        incidents_server.shutdown()
        running.stop()
        incidents.stop()

    model, _ = load_model(trained_model)
    predicted = model.score(flows).attack_cat
    expected = {
        cls: float(np.mean(predicted[flows["attack_cat"].to_numpy() == cls] == cls))
        for cls in np.unique(flows["attack_cat"])
    }
    assert set(from_prometheus) == set(expected)
    for cls, rate in expected.items():
        assert from_prometheus[cls] == pytest.approx(rate, abs=1e-9), cls

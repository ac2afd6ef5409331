"""nids-incidents throughput on an all-attack backlog, both delivery modes side by side in one run.

    .venv/bin/python -m bench.incidents_throughput [--alerts 300000] [--sources 100000] [--rounds 2]

A topic is pre-filled with --alerts alerts (synthetic, from --sources attacking addresses, as the
detector writes them); then a fresh group of nids-incidents (in process, built as the CLI builds it)
re-keys, tracks and writes incidents for all of them. Printed per delivery mode: alerts/s (first
tracked alert to the last), incident records written and the reduction (alerts per record).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

from prometheus_client import CollectorRegistry

from bench.common import ensure_broker
from incidents.cli import build_service
from incidents.metrics import IncidentMetrics
from nids_harness.incident_stream import incidents_config, produce_alerts, synthetic_alerts
from nids_harness.waiting import wait_until


def one_run(bootstrap: str, alerts_topic: str, count: int, delivery: str) -> tuple[float, float]:
    """alerts/s and incident records written, for a fresh group over the pre-filled topic."""
    name = f"bench.incidents.{uuid.uuid4().hex[:6]}"
    config = incidents_config(bootstrap, name, delivery=delivery, instance_id=name)
    config = type(config)(
        kafka=config.kafka,
        topics=type(config.topics)(
            alerts=alerts_topic, incidents=config.topics.incidents, dead_letter=config.topics.dead_letter
        ),
        incidents=config.incidents,
        metrics=config.metrics,
    )
    metrics = IncidentMetrics(CollectorRegistry())
    service = build_service(config, metrics)
    registry = metrics.registry
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()

    def tracked() -> float:
        return registry.get_sample_value("nids_incident_alerts_tracked_total") or 0.0

    try:
        wait_until(lambda: tracked() > 0, 120, poll=0.01)
        started = time.perf_counter()
        wait_until(lambda: tracked() >= count, 600, poll=0.01)
        elapsed = time.perf_counter() - started
    finally:
        service.stop()
        thread.join(60)
    records = sum(
        registry.get_sample_value("nids_incident_records_total", {"state": s}) or 0
        for s in ("open", "update", "closed")
    )
    return tracked() / elapsed, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=300_000)
    parser.add_argument("--sources", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    bootstrap = ensure_broker()
    prefill = incidents_config(bootstrap, f"bench.incidents.{uuid.uuid4().hex[:6]}")
    started = time.perf_counter()
    sent = produce_alerts(
        bootstrap, prefill.topics.alerts, synthetic_alerts(args.alerts, args.sources, per_second=50_000)
    )
    print(f"pre-filled {sent:,} alerts from {args.sources:,} sources in {time.perf_counter() - started:.1f} s")
    results: dict[str, list[tuple[float, float]]] = {"at_least_once": [], "exactly_once": []}
    for _ in range(args.rounds):
        for delivery, runs in results.items():
            runs.append(one_run(bootstrap, prefill.topics.alerts, sent, delivery))
    print(f"{'delivery':<15} {'alerts/s (median)':>18} {'runs':>24} {'records':>10} {'alerts per record':>18}")
    for delivery, runs in results.items():
        rates = [rate for rate, _ in runs]
        records = runs[-1][1]
        print(
            f"{delivery:<15} {statistics.median(rates):>18,.0f} {', '.join(f'{r:,.0f}' for r in rates):>24} "
            f"{records:>10,.0f} {sent / max(records, 1):>18.1f}"
        )


if __name__ == "__main__":
    main()

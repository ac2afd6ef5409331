"""nids-incidents throughput on an all-attack backlog, both delivery modes side by side in one run.

    .venv/bin/python -m bench.incidents_throughput [--alerts 300000] [--sources 100,20000] [--rounds 2]

For each count of --sources, a topic is pre-filled with --alerts alerts (synthetic, from that many
attacking addresses in turn, as the detector writes them: UNSW-NB15's attacks come from a handful of
addresses; the larger count is the stress case, where every batch touches every key). Then a fresh
group of nids-incidents (in process, built as the CLI builds it) re-keys, tracks and writes
incidents for all of them. Printed per backlog and delivery mode: alerts/s (first batch of alerts
read to the last alert tracked), incident records written and the reduction (alerts per record).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

import pandas as pd
from prometheus_client import CollectorRegistry

from bench.common import ensure_broker, flows_frame, fresh_topics
from bench.detector_throughput import prefill_flows, timed_batch_detector
from incidents.cli import build_service
from incidents.metrics import IncidentMetrics
from nids_common.checkpoint import AT_LEAST_ONCE
from nids_common.schema import LABEL
from nids_harness.incident_stream import incidents_config, produce_alerts, synthetic_alerts
from nids_harness.waiting import wait_until

# The backlog of alerts the detector wrote (its flows carry no addresses: keys fall back to attack_cat).
DETECTOR = "nids-detect"


def detector_backlog(bootstrap: str, flows: int) -> tuple[str, int, float, str]:
    """The detector over an all-attack backlog of `flows` (the dev file's attack rows, repeated):
    its alert topic, how many alerts it wrote, its alerts/s, and the flows' source."""
    frame, source = flows_frame(2 * flows)
    attacks = frame[frame[LABEL] == 1]
    attacks = pd.concat([attacks] * -(-flows // len(attacks)), ignore_index=True).iloc[:flows]
    topics = fresh_topics("incidents-detector")
    prefill_flows(bootstrap, topics.flows, attacks)
    totals, elapsed = timed_batch_detector(bootstrap, topics, flows, delivery=AT_LEAST_ONCE)
    return topics.alerts, totals.alerts, totals.alerts / elapsed, f"attack rows of the {source}"


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

    def read() -> float:
        return registry.get_sample_value("nids_incident_alerts_read_total") or 0.0

    try:
        # From the first batch of alerts read (the group joined, state restored) to the last tracked.
        wait_until(lambda: read() > 0, 120, poll=0.01)
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
    parser.add_argument("--sources", default="100,20000", help="comma-separated: one backlog per count")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--detector-flows", type=int, default=300_000, help="all-attack flows for the detector's backlog (0: none)"
    )
    args = parser.parse_args()
    bootstrap = ensure_broker()
    # name → (alert topic, alerts on it)
    backlogs: dict[str, tuple[str, int]] = {}
    if args.detector_flows:
        topic, written, rate, source = detector_backlog(bootstrap, args.detector_flows)
        print(f"nids-detect (at_least_once) on {args.detector_flows:,} flows, {source}: {rate:,.0f} alerts/s")
        backlogs[DETECTOR] = (topic, written)
    for sources in (int(text) for text in args.sources.split(",")):
        prefill = incidents_config(bootstrap, f"bench.incidents.{uuid.uuid4().hex[:6]}")
        started = time.perf_counter()
        sent = produce_alerts(
            bootstrap, prefill.topics.alerts, synthetic_alerts(args.alerts, sources, per_second=50_000)
        )
        print(f"pre-filled {sent:,} alerts from {sources:,} sources in {time.perf_counter() - started:.1f} s")
        backlogs[f"{sources:,} sources"] = (prefill.topics.alerts, sent)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {
        (name, delivery): [] for name in backlogs for delivery in ("at_least_once", "exactly_once")
    }
    for _ in range(args.rounds):  # alternating, so drift of the machine spreads over all
        for (name, delivery), runs in results.items():
            topic, count = backlogs[name]
            runs.append(one_run(bootstrap, topic, count, delivery))
    print(
        f"{'backlog':<16} {'delivery':<15} {'alerts/s (median)':>18} {'runs':>26} {'records':>9} "
        f"{'alerts per record':>18}"
    )
    for (name, delivery), runs in results.items():
        rates = [rate for rate, _ in runs]
        records = runs[-1][1]
        print(
            f"{name:<16} {delivery:<15} {statistics.median(rates):>18,.0f} "
            f"{', '.join(f'{r:,.0f}' for r in rates):>26} {records:>9,.0f} {backlogs[name][1] / max(records, 1):>18.1f}"
        )


if __name__ == "__main__":
    main()

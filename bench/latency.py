"""End-to-end latency at a steady rate: Kafka timestamp of each flow → its alert in a reader's hands.

    .venv/bin/python -m bench.latency [--rate 10000] [--seconds 30] [--delivery both]

nids-detect and nids-replay run as separate processes, as deployed; a downstream reader
(read_committed) consumes the alerts live and notes when each arrives. An exactly_once alert is
readable only once its batch's transaction commits, so this is the latency a consumer of alerts
sees in either mode. Afterwards the flow topic is read back and every alert is matched to its flow by
(partition, offset): exact percentiles, not buckets. Both delivery modes run in turn by default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import numpy as np
from confluent_kafka import Message

from bench.common import ensure_broker, fresh_topics, model_path, replay_command
from nids_common.checkpoint import AT_LEAST_ONCE, EXACTLY_ONCE
from nids_common.contract import alert_decoder
from nids_harness.checkout import REPO
from nids_harness.detector_process import start_ready_detector
from nids_harness.ports import free_port
from nids_harness.reading import LiveReader, read_topic


def measure(bootstrap: str, rate: float, seconds: float, delivery: str) -> None:
    topics = fresh_topics(f"latency-{delivery}")
    arrivals: dict[tuple[int, int], float] = {}

    def arrived(message: Message, when: float) -> None:
        source = alert_decoder.decode(message.value() or b"").source
        arrivals[(source.partition, source.offset)] = when

    reader = LiveReader(bootstrap, topics.alerts, arrived)
    reader.start()
    group = f"bench-latency-{time.monotonic_ns()}"
    detector = start_ready_detector(
        bootstrap, topics, group, free_port(), model_path(), delivery=delivery, instance_id=f"{group}-1"
    )
    reader.wait_assigned()
    flows = int(rate * seconds)
    replay = subprocess.run(
        replay_command(topics.flows, "--rate", str(rate), "--limit", str(flows)),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    time.sleep(3)
    detector.terminate()
    detector.wait(30)
    reader.stop()
    sent_ms = {(m.partition(), m.offset()): m.timestamp()[1] for m in read_topic(bootstrap, topics.flows)}
    keys = list(arrivals)
    sent = np.array([sent_ms[key] for key in keys], dtype=np.float64)
    values = np.array([arrivals[key] for key in keys]) - sent / 1000.0
    print(f"{delivery}: {replay.stdout.strip()}")
    if os.environ.get("NIDS_BENCH_TIMELINE"):
        # p99 and worst per 5-second window of send time: tells a start-up cost from periodic stalls.
        window = (sent - sent.min()) // 5000
        for w in np.unique(window):
            part = values[window == w]
            print(
                f"  {w * 5:4.0f}-{w * 5 + 5:.0f} s: p99 {np.percentile(part, 99) * 1000:5.0f} ms, "
                f"max {part.max() * 1000:5.0f} ms"
            )
    p50, p95, p99, worst = np.percentile(values, [50, 95, 99, 100])
    print(
        f"{delivery:>13}: {len(values):,} alerts at {rate:,.0f} flows/s: latency p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms (target p99 ≤ 250 ms)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--delivery", choices=("both", AT_LEAST_ONCE, EXACTLY_ONCE), default="both")
    args = parser.parse_args()
    bootstrap = ensure_broker()
    for delivery in (AT_LEAST_ONCE, EXACTLY_ONCE) if args.delivery == "both" else (args.delivery,):
        measure(bootstrap, args.rate, args.seconds, delivery)


if __name__ == "__main__":
    main()

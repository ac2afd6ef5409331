"""End-to-end latency at a steady rate: Kafka timestamp of each flow → its alert's broker timestamp.

    .venv/bin/python -m bench.latency [--rate 10000] [--seconds 30]

nids-detect and nids-replay run as separate processes, as deployed. Afterwards both topics are read
back and every alert is matched to its flow by (partition, offset): exact percentiles, not buckets.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import numpy as np
from confluent_kafka import Consumer, Message

from bench.common import REPO, ensure_broker, fresh_topics, replay_command, start_detector
from nids_common.contract import alert_decoder


def read_all(bootstrap: str, topic: str) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-read-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out, idle = [], 0
    while idle < 6:
        batch = consumer.consume(5000, timeout=0.5)
        idle = 0 if batch else idle + 1
        out += [m for m in batch if m.error() is None]
    consumer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    bootstrap = ensure_broker()
    topics = fresh_topics("latency")
    detector = start_detector(bootstrap, topics, f"bench-latency-{time.monotonic_ns()}", 9191)
    time.sleep(4)  # model load and group join before traffic starts
    flows = int(args.rate * args.seconds)
    replay = subprocess.run(
        replay_command(topics["flows"], "--rate", str(args.rate), "--limit", str(flows)),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    print(replay.stdout.strip())
    time.sleep(3)
    detector.terminate()
    detector.wait(30)
    sources = {(m.partition(), m.offset()): m.timestamp()[1] for m in read_all(bootstrap, topics["flows"])}
    latencies, sent = [], []
    for alert in read_all(bootstrap, topics["alerts"]):
        source = alert_decoder.decode(alert.value() or b"").source
        sent.append(sources[(source.partition, source.offset)])
        latencies.append((alert.timestamp()[1] - sent[-1]) / 1000.0)
    values = np.array(latencies)
    if os.environ.get("NIDS_BENCH_TIMELINE"):
        # p99 and worst per 5-second window of send time: tells a start-up cost from periodic stalls.
        window = (np.array(sent) - min(sent)) // 5000
        for w in np.unique(window):
            part = values[window == w]
            print(
                f"  {w * 5:4.0f}-{w * 5 + 5:.0f} s: p99 {np.percentile(part, 99) * 1000:5.0f} ms, "
                f"max {part.max() * 1000:5.0f} ms"
            )
    p50, p95, p99, worst = np.percentile(values, [50, 95, 99, 100])
    print(
        f"{len(values):,} alerts at {args.rate:,.0f} flows/s: latency p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms (target p99 ≤ 250 ms)"
    )


if __name__ == "__main__":
    main()

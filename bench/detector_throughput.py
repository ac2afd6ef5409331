"""Detector throughput, side by side with a naive per-message detector, in one run.

    .venv/bin/python -m bench.detector_throughput [--flows 300000] [--naive-seconds 20] [--secure]

With --secure the same flows are also pre-filled on the secure local broker (scripts/kafka-local
start --secure) and the at_least_once detector takes turns between the two brokers: the cost of
SASL_SSL (TLS, SCRAM, the authorizer) side by side.

1. Pre-fill a 6-partition topic with --flows flows (the dev file repeated, or synthetic).
2. Micro-batch detector (this project's Detector): time to consume, score, alert and commit them all.
3. Naive detector on the same topic (own group): poll one message, json.loads, one-row DataFrame,
   score, produce its alert, commit; run for --naive-seconds.
4. Concurrent: the replay producer and the detector at once on this machine.
Prints flows/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from bench.common import ensure_broker, flows_frame, fresh_topics, model_path, replay_command
from detector.cli import GIL_SWITCH_INTERVAL_S, build_detector
from detector.config import load as load_detector_config
from detector.metrics import DetectorMetrics, Totals
from detector.reload import load_live
from detector.service import Detector
from nids_common.checkpoint import AT_LEAST_ONCE, EXACTLY_ONCE
from nids_common.config import Topics
from nids_common.contract import DEFAULT_PARTITIONS
from nids_harness.checkout import KAFKA_LOCAL, REPO
from nids_harness.detector_process import start_detector
from nids_harness.metrics import scrape_total
from nids_harness.ports import free_port
from nids_harness.secure import SecureBroker, secure_role_env
from nids_model.artifact import load_model
from producer.replay import ReplaySummary, replay

NO_DRIFT = "at_least_once, no drift"
# The detector as configured (at_least_once, drift metrics on), and what one setting changes.
VARIANTS: dict[str, dict[str, Any]] = {
    AT_LEAST_ONCE: {},
    EXACTLY_ONCE: {"delivery": EXACTLY_ONCE},
    NO_DRIFT: {"drift_metrics": False},
}


SASL_SSL = "at_least_once, SASL_SSL"


def prefill_flows(bootstrap: str, topic: str, frame: pd.DataFrame) -> ReplaySummary:
    """`frame`'s flows onto `topic` as nids-replay writes them, as fast as the broker takes them."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
            "batch.size": 1_000_000,
        }
    )
    return replay([frame.iloc[i : i + 50_000] for i in range(0, len(frame), 50_000)], producer, topic)


def secure_broker_topics() -> tuple[str, Topics, dict[str, Any]]:
    """The secure local broker (started if need be), fresh topics on it, and the admin's settings
    (a super user: the authorizer still runs, every ACL check passes)."""
    subprocess.run([KAFKA_LOCAL, "start", "--secure"], check=True, stdout=subprocess.DEVNULL)
    admin = secure_role_env("admin")
    broker = SecureBroker(admin["NIDS_KAFKA_BOOTSTRAP"])
    topics = Topics.named(f"bench.secure.{time.monotonic_ns()}", DEFAULT_PARTITIONS)
    broker.make_topics(topics)
    credentials: dict[str, Any] = json.loads(admin["NIDS_KAFKA_LIBRDKAFKA"])
    return broker.bootstrap, topics, credentials


def detector_for(
    bootstrap: str,
    topics: Topics,
    group: str,
    librdkafka: dict[str, Any] | None = None,
    model: Path | None = None,
    **settings: Any,
) -> Detector:
    """config/detector.yaml with its NIDS_* overrides, as nids-detect would run, on the bench's topics;
    with `model`, else models/latest."""
    model = model or model_path()
    base = load_detector_config(REPO / "config" / "detector.yaml")
    config = dataclasses.replace(
        base,
        kafka=dataclasses.replace(
            base.kafka, bootstrap=bootstrap, librdkafka={**base.kafka.librdkafka, **(librdkafka or {})}
        ),
        topics=topics,
        detector=dataclasses.replace(base.detector, group_id=group, model=model, instance_id=f"{group}-1", **settings),
        metrics=dataclasses.replace(base.metrics, port=0),
    )
    live = load_live(model, config.detector.model_threads)
    return build_detector(config, live, DetectorMetrics(CollectorRegistry()))


def run_batch_detector(
    bootstrap: str, topics: Topics, target: int, librdkafka: dict[str, Any] | None = None, **settings: Any
) -> float:
    """flows/s of a fresh group over the first `target` flows of the pre-filled topic."""
    totals, elapsed = timed_batch_detector(bootstrap, topics, target, librdkafka, **settings)
    return totals.consumed / elapsed


def timed_batch_detector(
    bootstrap: str, topics: Topics, target: int, librdkafka: dict[str, Any] | None = None, **settings: Any
) -> tuple[Totals, float]:
    """The detector's totals and seconds from its first batch read until `target` flows are consumed."""
    detector = detector_for(bootstrap, topics, f"bench-batch-{time.monotonic_ns()}", librdkafka, **settings)
    started: list[float] = []

    def keep_going() -> bool:
        if not started and detector.totals.consumed:
            started.append(time.perf_counter())
        return detector.totals.consumed < target

    t0 = time.perf_counter()
    detector.run(keep_going)
    return detector.totals, time.perf_counter() - (started[0] if started else t0)


def run_naive_detector(bootstrap: str, topics: Topics, seconds: float) -> float:
    model, _manifest = load_model(model_path())
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-naive-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    consumer.subscribe([topics.flows])
    done = 0
    first = None
    try:
        while True:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            first = first or time.perf_counter()
            record = json.loads(message.value() or b"")
            scores = model.score(pd.DataFrame([record]))
            if scores.is_attack[0]:
                producer.produce(
                    topics.alerts,
                    key=record["flow_id"],
                    value=json.dumps({"flow_id": record["flow_id"], "attack_cat": scores.attack_cat[0]}),
                )
                producer.poll(0)
            consumer.commit(message=message, asynchronous=True)
            done += 1
            if time.perf_counter() - first >= seconds:
                break
    finally:
        producer.flush(10)
        consumer.close()
    return done / (time.perf_counter() - first)


def run_detector_processes(bootstrap: str, topics: Topics, target: int, processes: int) -> float:
    """N real nids-detect processes in a fresh group; rate from their summed consumed counters."""
    group = f"bench-group-{time.monotonic_ns()}"
    ports = [free_port() for _ in range(processes)]
    children = [start_detector(bootstrap, topics, group, port, model_path()) for port in ports]
    try:
        first: tuple[float, float] | None = None
        consumed = 0.0
        deadline = time.monotonic() + 300
        while consumed < target and time.monotonic() < deadline:
            time.sleep(0.2)
            consumed = sum(scrape_total(port, "nids_flows_consumed_total") for port in ports)
            if consumed and first is None:
                first = (time.perf_counter(), consumed)
        if first is None:
            raise SystemExit("the detectors consumed nothing within 300 s")
        return (consumed - first[1]) / (time.perf_counter() - first[0])
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=300_000)
    parser.add_argument("--naive-seconds", type=float, default=20.0)
    parser.add_argument(
        "--repeats", type=int, default=3, help="micro-batch runs over the pre-filled topic (median shown)"
    )
    parser.add_argument("--secure", action="store_true", help="also the at_least_once detector over SASL_SSL")
    parser.add_argument(
        "--variants-only",
        action="store_true",
        help="only the detector variants side by side (no naive, group or concurrent runs)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        type=Path,
        help="instead of the variants: at_least_once with each of these model directories, side by side",
    )
    args = parser.parse_args()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # as nids-detect runs
    bootstrap = ensure_broker()
    frame, source = flows_frame(args.flows)
    topics = fresh_topics("detector")
    chunks = [frame.iloc[i : i + 50_000] for i in range(0, len(frame), 50_000)]
    summary = prefill_flows(bootstrap, topics.flows, frame)
    print(f"source: {source}; pre-filled {summary.delivered:,} flows ({summary.rate:,.0f} flows/s produced)")
    # name → (bootstrap, topics, librdkafka settings, detector settings)
    chosen = {str(path): {"model": path} for path in args.models} if args.models else VARIANTS
    variants: dict[str, tuple[str, Topics, dict[str, Any], dict[str, Any]]] = {
        name: (bootstrap, topics, {}, settings) for name, settings in chosen.items()
    }
    if args.secure:
        secure_bootstrap, secure_topics, credentials = secure_broker_topics()
        summary = replay(chunks, Producer({**credentials, "bootstrap.servers": secure_bootstrap}), secure_topics.flows)
        assert summary.delivered == args.flows, summary
        variants[SASL_SSL] = (secure_bootstrap, secure_topics, credentials, {})

    # This machine is shared and noisy: several runs, each in a fresh group over the same flows, the
    # variants taking turns so that a slow spell hits them alike.
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, rates in runs.items():
            where, on, librdkafka, settings = variants[name]
            rates.append(run_batch_detector(where, on, args.flows, librdkafka, **settings))
    rate = {name: float(np.median(rates)) for name, rates in runs.items()}
    for name, rates in runs.items():
        print(
            f"micro-batch detector, {name:<22}: {rate[name]:10,.0f} flows/s "
            f"(median of {', '.join(f'{r:,.0f}' for r in rates)})"
        )
    if args.models:
        first = str(args.models[0])
        for name, value in rate.items():
            print(f"{name} / {first}: {value / rate[first]:.1%}")
        return
    print(f"exactly_once / at_least_once                      : {rate[EXACTLY_ONCE] / rate[AT_LEAST_ONCE]:10.1%}")
    print(f"with drift metrics / without (both at_least_once) : {rate[AT_LEAST_ONCE] / rate[NO_DRIFT]:10.1%}")
    if args.secure:
        print(f"SASL_SSL / plaintext (both at_least_once)         : {rate[SASL_SSL] / rate[AT_LEAST_ONCE]:10.1%}")
    if args.variants_only:
        return
    batch_rate = rate[AT_LEAST_ONCE]
    naive_rate = run_naive_detector(bootstrap, topics, args.naive_seconds)
    print(f"naive per-message detector            : {naive_rate:10,.0f} flows/s")
    print(f"ratio                                 : {batch_rate / naive_rate:10,.1f}x")

    group_rate = run_detector_processes(bootstrap, topics, args.flows, processes=2)
    print(f"two nids-detect processes in one group (same topic): {group_rate:10,.0f} flows/s together")

    concurrent_topics = fresh_topics("concurrent")
    replay_process = subprocess.Popen(
        replay_command(concurrent_topics.flows, "--limit", str(args.flows)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    concurrent_rate = run_batch_detector(bootstrap, concurrent_topics, args.flows)
    replay_line = replay_process.communicate(timeout=120)[0].strip()
    print(f"concurrent (nids-replay in another process): detector {concurrent_rate:,.0f} flows/s; {replay_line}")


if __name__ == "__main__":
    main()

"""Two nids-detect builds (or settings) on one backlog, in alternating runs: A B A B …

    .venv/bin/python -m bench.detector_ab --a CHECKOUT[:MODEL] --b CHECKOUT[:MODEL] [--pairs 5]
        [--flows 500000] [--malformed 2000] [--delivery at_least_once] [--a-env K=V …] [--b-env K=V …]

A 6-partition topic is pre-filled once (the dev file repeated, or synthetic, with malformed records);
every run is one `nids-detect` process of a checkout (its own code on PYTHONPATH, this interpreter
and its libraries) in a group of its own, reading the whole topic from the start. A run's figure is
the sustained rate (records/s between 10 % and 90 % of the group's committed progress, read from the
broker, so any version of the detector can be measured). Runs alternate so that the machine's drift
falls on both sides alike; printed: every run, the ratio B/A of each pair and the median of the ratios.
`--a-env`/`--b-env` set environment overrides for one side (`NIDS_DETECTOR_DRIFT_METRICS=false`
measures the drift statistics with one checkout on both sides). The MODEL defaults to the checkout's
models/latest; each build needs a model in the artifact format it reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

from confluent_kafka import Producer

from bench.common import ensure_broker, flows_frame
from bench.detector_profile import DRAIN_TIMEOUT_S, POLL_S, sample_progress, sustained_rate
from nids_common.checkpoint import AT_LEAST_ONCE, EXACTLY_ONCE
from nids_common.contract import Topics
from nids_harness.chaos import prefill
from nids_harness.topics import make_topics, topics_env
from nids_harness.waiting import wait_until


@dataclasses.dataclass(frozen=True)
class Side:
    name: str
    checkout: Path
    model: Path
    env: dict[str, str]

    @classmethod
    def parse(cls, name: str, spec: str, env: list[str]) -> Side:
        checkout, _, model = spec.partition(":")
        root = Path(checkout).resolve()
        pairs = dict(item.split("=", 1) for item in env)
        return cls(name, root, Path(model).resolve() if model else root / "models" / "latest", pairs)


def run_once(side: Side, bootstrap: str, topics: Topics, records: int, delivery: str, log: Path) -> float:
    """One detector process of `side` draining the whole topic in a fresh group: its sustained rate."""
    group = f"ab-{side.name}-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(side.checkout),
        "NIDS_KAFKA_BOOTSTRAP": bootstrap,
        "NIDS_DETECTOR_DELIVERY": delivery,
        **topics_env(topics),
        **side.env,
    }
    command = [sys.executable, "-m", "detector.cli", "--model", str(side.model), "--group", group]
    with open(log, "ab") as sink:
        detector = subprocess.Popen(
            [*command, "--metrics-port", "0"], env=env, cwd=side.checkout, stdout=subprocess.DEVNULL, stderr=sink
        )
    progress: list[tuple[float, int]] = []

    def drained() -> bool:
        if detector.poll() is not None:
            raise SystemExit(f"{side.name}: nids-detect exited with {detector.returncode}; see {log}")
        return sample_progress(progress, bootstrap, group, topics.flows) >= records

    try:
        if not wait_until(drained, DRAIN_TIMEOUT_S, poll=POLL_S):
            raise SystemExit(f"{side.name}: not drained within {DRAIN_TIMEOUT_S:.0f} s; see {log}")
    finally:
        detector.terminate()
        detector.wait(60)
    return sustained_rate(progress, records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, metavar="CHECKOUT[:MODEL]")
    parser.add_argument("--b", required=True, metavar="CHECKOUT[:MODEL]")
    parser.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--flows", type=int, default=500_000)
    parser.add_argument("--malformed", type=int, default=2_000)
    parser.add_argument("--delivery", choices=(AT_LEAST_ONCE, EXACTLY_ONCE), default=AT_LEAST_ONCE)
    args = parser.parse_args(argv)
    sides = (Side.parse("A", args.a, args.a_env), Side.parse("B", args.b, args.b_env))
    bootstrap = ensure_broker()
    frame, source = flows_frame(args.flows)
    topics = make_topics(bootstrap, f"bench.ab.{uuid.uuid4().hex[:6]}")
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4"})
    prefill(producer, topics.flows, frame, range(args.malformed), "p", False, parts=4)
    records: int = args.flows + args.malformed
    log = Path(f"/tmp/detector-ab-{uuid.uuid4().hex[:6]}.log")
    print(f"source: {source}; {args.flows:,} flows + {args.malformed:,} malformed, {args.delivery}; log {log}")
    for side in sides:
        print(f"{side.name}: {side.checkout} model {side.model} {side.env or ''}")
    ratios = []
    for pair in range(1, args.pairs + 1):
        a, b = (run_once(side, bootstrap, topics, records, args.delivery, log) for side in sides)
        ratios.append(b / a)
        print(f"pair {pair}: A {a:9,.0f}  B {b:9,.0f} records/s  B/A {b / a:.3f}", flush=True)
    print(f"median B/A over {len(ratios)} pairs: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

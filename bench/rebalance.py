"""Rebalances under load: members join and leave a group of detectors while a backlog drains, with the
eager assignor (librdkafka's default, range,roundrobin) against the incremental one (cooperative-sticky).

    .venv/bin/python -m bench.rebalance [--flows 2400000] [--changes 10] [--every 4] [--delivery both]

A 24-partition flow topic is pre-filled once (the dev file, or synthetic flows). Per assignor and
delivery mode, a group of its own reads it from the start into topics of its own: one nids-detect
starts, and every --every seconds a member joins or leaves (SIGTERM: a clean leave) so that 1 to 3
are in the group, --changes times; then the group drains the rest. Printed: flows/s over the run,
the longest gap in scoring after each change (every member's nids_flows_scored_total, sampled
every 0.2 s), and what a read_committed reader of the alerts finds against the offline scoring of
the same flows (missing, repeated).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import os
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Producer

from bench.common import ensure_broker, flows_frame, model_path
from nids_common.checkpoint import AT_LEAST_ONCE, EXACTLY_ONCE
from nids_common.contract import Topics
from nids_harness.chaos import key_of, prefill
from nids_harness.detector_process import start_detector
from nids_harness.groups import group_lag
from nids_harness.metrics import scrape_total
from nids_harness.ports import free_port
from nids_harness.reading import read_topic
from nids_harness.topics import make_topics
from nids_harness.waiting import wait_until
from nids_model.artifact import load_model

PARTITIONS = 24
MAX_MEMBERS = 3
ASSIGNORS = {"eager": "range,roundrobin", "cooperative": "cooperative-sticky"}
SAMPLE_S = 0.2


@dataclasses.dataclass(frozen=True)
class RebalanceRun:
    assignor: str
    delivery: str
    flows_per_s: int
    gaps_s: list[float]  # the longest gap in scoring after each membership change before the backlog ran out
    changes: list[str]  # join or leave
    missing: int
    repeated: int
    log: str


class Member:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process, self.port, self.scored = process, port, 0.0


class Group:
    """The group's members, and the sum of what each has scored (a member gone keeps its last count)."""

    def __init__(self, bootstrap: str, topics: Topics, group: str, delivery: str, log: Path) -> None:
        self.bootstrap, self.topics, self.group, self.delivery, self.log = bootstrap, topics, group, delivery, log
        self.members: list[Member] = []
        self.gone: list[Member] = []
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def join(self) -> None:
        port = free_port()
        process = start_detector(
            self.bootstrap,
            self.topics,
            self.group,
            port,
            model_path(),
            self.log,
            delivery=self.delivery,
            instance_id=f"{self.group}-{uuid.uuid4().hex[:4]}",
        )
        self.members.append(Member(process, port))

    def leave(self) -> None:
        member = self.members.pop()
        member.process.terminate()
        member.process.wait(60)
        self.gone.append(member)

    def scored(self) -> float:
        for member in self.members:
            with contextlib.suppress(OSError):  # starting, or stopping
                member.scored = scrape_total(member.port, "nids_flows_scored_total")
        return sum(m.scored for m in self.members + self.gone)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.scored()))
            time.sleep(SAMPLE_S)

    def start_sampling(self) -> None:
        self._sampler.start()

    def stop(self) -> None:
        self._stop.set()
        self._sampler.join()
        while self.members:
            self.leave()

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time within [start, end] over which the scored count did not grow."""
        last_growth, previous, longest = start, None, 0.0
        for at, value in self.samples:
            if at < start or at > end:
                previous = value if at < start else previous
                continue
            if previous is not None and value > previous:
                longest = max(longest, at - last_growth)
                last_growth = at
            previous = value
        return max(longest, min(end, self.samples[-1][0]) - last_growth)


@dataclasses.dataclass(frozen=True)
class Backlog:
    topic: str
    flows: int
    alerted: set[str]  # the flow ids the model alerts on


def one_run(bootstrap: str, backlog: Backlog, assignor: str, delivery: str, changes: int, every: float) -> RebalanceRun:
    """One group over the shared pre-filled backlog, writing to topics of its own."""
    os.environ["NIDS_KAFKA_LIBRDKAFKA"] = orjson.dumps({"partition.assignment.strategy": ASSIGNORS[assignor]}).decode()
    name = f"bench.rebalance.{assignor}.{delivery}.{uuid.uuid4().hex[:6]}"
    topics = dataclasses.replace(make_topics(bootstrap, name, partitions=PARTITIONS), flows=backlog.topic)
    log = Path(tempfile.mkdtemp(prefix="rebalance-")) / "detectors.log"
    group = Group(bootstrap, topics, name, delivery, log)
    started = time.monotonic()
    group.join()
    group.start_sampling()
    changed_at: list[tuple[float, str]] = []
    grow = True
    try:
        if not wait_until(lambda: group.scored() > 0, 120, poll=0.2):
            raise SystemExit(f"the first detector scored nothing; see {log}")
        for _ in range(changes):
            time.sleep(every)
            if len(group.members) == MAX_MEMBERS:
                grow = False
            elif len(group.members) == 1:
                grow = True
            changed_at.append((time.monotonic(), "join" if grow else "leave"))
            if grow:
                group.join()
            else:
                group.leave()
        if not wait_until(lambda: group_lag(bootstrap, name, topics.flows) == 0, 600, poll=1.0):
            raise SystemExit(f"the group did not drain within 600 s; see {log}")
        drained = time.monotonic()
    finally:
        group.stop()
    alerts = collections.Counter(key_of(m) for m in read_topic(bootstrap, topics.alerts))
    # A change after the backlog was scored through has nothing left to stall: it is left out.
    done_at = next((at for at, value in group.samples if value >= backlog.flows), drained)
    gaps = [group.longest_gap(at, min(at + every, done_at)) for at, _ in changed_at if at < done_at]
    return RebalanceRun(
        assignor=assignor,
        delivery=delivery,
        flows_per_s=round(backlog.flows / (drained - started)),
        gaps_s=[round(gap, 1) for gap in gaps],
        changes=[kind for _, kind in changed_at],
        missing=len(backlog.alerted - set(alerts)),
        repeated=sum(n - 1 for n in alerts.values() if n > 1),
        log=str(log),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=2_400_000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--every", type=float, default=4.0, help="seconds between membership changes")
    parser.add_argument("--delivery", choices=("both", AT_LEAST_ONCE, EXACTLY_ONCE), default="both")
    parser.add_argument("--assignor", choices=("both", *ASSIGNORS), default="both")
    args = parser.parse_args()
    bootstrap = ensure_broker()
    frame, source = flows_frame(args.flows)
    print(
        f"source: {source}; {args.flows:,} flows on {PARTITIONS} partitions, "
        f"{args.changes} changes every {args.every} s"
    )
    # One backlog for every run: each group reads it from the start into topics of its own.
    flows = make_topics(bootstrap, f"bench.rebalance.{uuid.uuid4().hex[:6]}", partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4"})
    flow_ids, _ = prefill(producer, flows.flows, frame, range(0), "r", False, parts=1)
    detection, _ = load_model(model_path())
    alerted = {f for f, attack in zip(flow_ids, detection.score(frame).is_attack, strict=True) if attack}
    backlog = Backlog(flows.flows, len(flow_ids), alerted)
    deliveries = (AT_LEAST_ONCE, EXACTLY_ONCE) if args.delivery == "both" else (args.delivery,)
    assignors = tuple(ASSIGNORS) if args.assignor == "both" else (args.assignor,)
    for delivery in deliveries:
        for assignor in assignors:
            result = one_run(bootstrap, backlog, assignor, delivery, args.changes, args.every)
            print(
                f"{delivery:>13} {assignor:>11}: {result.flows_per_s:,} flows/s; longest gap after each change "
                f"{result.gaps_s} s (max {max(result.gaps_s)}); alerts missing {result.missing}, "
                f"repeated {result.repeated}",
                flush=True,
            )
            print(orjson.dumps(dataclasses.asdict(result)).decode(), flush=True)


if __name__ == "__main__":
    main()

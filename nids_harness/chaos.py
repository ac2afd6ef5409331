"""The chaos run: SIGKILL the detector mid-batch, then a broker fault (the single broker's SIGKILL, or a
cluster node's), and count what a downstream reader sees against the offline scoring of the same
flows (`bench.chaos` prints it; integration tests hold exactly_once to it)."""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from confluent_kafka import Message, Producer

from detector.config import DetectorConfig, DetectorSettings
from nids_common.contract import Topics
from nids_harness.detector_process import start_detector
from nids_harness.errors import HarnessError
from nids_harness.groups import committed_so_far, group_lag
from nids_harness.local_broker import sigkill_and_restart
from nids_harness.metrics import scrape_total
from nids_harness.payloads import bad_payloads, valid_flow
from nids_harness.ports import free_port
from nids_harness.reading import read_topic
from nids_harness.topics import make_topics
from nids_harness.waiting import wait_until
from nids_model.artifact import load_model
from producer.replay import replay

DELIVERY_MODES = ("exactly_once", "at_least_once")
OVERSIZED_BYTES = 1_600_000
CONSUMED = "nids_flows_consumed_total"
MAX_SUPERVISED_RESTARTS = 5


@dataclasses.dataclass(frozen=True)
class FaultTarget:
    """What a broker fault may aim at: the run's cluster, flow topic, group and transactional id."""

    bootstrap: str
    flows: str
    group: str
    transactional_id: str


# Injects a fault into the run's broker(s); returns what ends it (run once detection resumed).
BrokerFault = Callable[[FaultTarget], Callable[[], None]]


def single_broker_fault(_target: FaultTarget) -> Callable[[], None]:
    """SIGKILL the one local broker and start it again at once: nothing resumes without it."""
    sigkill_and_restart()
    return lambda: None


@dataclasses.dataclass
class ChaosReport:
    delivery: str
    flows: int
    expected_alerts: int
    missing_alerts: int
    duplicated_alerts: int
    expected_dead: int
    got_dead: int
    missing_dead: int
    duplicated_dead: int
    detector_stalls: list[float]
    broker_stall: float | None  # from the broker fault to the first batch committed after it
    supervisor_restarts: int  # the detector exited by itself (a fatal Kafka error) and was started again

    @property
    def longest_detector_stall(self) -> float:
        return max(self.detector_stalls, default=0.0)

    def line(self) -> str:
        broker = f"{self.broker_stall:.1f} s" if self.broker_stall is not None else "none"
        stalls = ", ".join(f"{s:.1f}" for s in self.detector_stalls)
        return (
            f"{self.delivery:>13}: {self.flows:,} flows; alerts expected {self.expected_alerts:,}, "
            f"missing {self.missing_alerts:,}, duplicated {self.duplicated_alerts:,}; dead letters expected "
            f"{self.expected_dead:,}, got {self.got_dead:,}, missing {self.missing_dead:,}, duplicated "
            f"{self.duplicated_dead:,}; stall after detector SIGKILL: longest {self.longest_detector_stall:.1f} s "
            f"({stalls}); after the broker fault: {broker}; supervisor restarts {self.supervisor_restarts}"
        )


def prefill(
    producer: Producer, topic: str, frame: pd.DataFrame, malformed: range, run_prefix: str, oversized: bool, parts: int
) -> tuple[list[str], set[str]]:
    """The flows in `parts` replays, the `malformed` records spread between them, and the oversized
    message in the middle. Returns the flow ids in frame order and the keys that must be dead-lettered."""
    bad = list(bad_payloads(valid_flow("bad", seed=5), max_bytes=65_536).values())
    dead_keys: set[str] = set()
    flow_ids: list[str] = []
    bounds = np.linspace(0, len(frame), parts + 1).astype(int)
    spread = np.array_split(np.asarray(malformed), parts)
    for part, (start, stop) in enumerate(itertools.pairwise(bounds)):
        run_id = f"{run_prefix}{part}"
        summary = replay([frame.iloc[start:stop]], producer, topic, run_id=run_id)
        if summary.failed:
            raise HarnessError(f"pre-fill failed: {summary.first_error}")
        flow_ids += [f"{run_id}-{i}" for i in range(stop - start)]
        for i in spread[part].tolist():
            producer.produce(topic, bad[i % len(bad)][0], f"bad-{i}")
            dead_keys.add(f"bad-{i}")
        if oversized and part == parts // 2:
            # Highly compressible: the broker accepts its lz4 batch, but it is far over any output limit.
            producer.produce(topic, b'{"flow_id": "big", "pad": "' + b"a" * OVERSIZED_BYTES + b'"}', "oversized")
            dead_keys.add("oversized")
    if producer.flush(60):
        raise HarnessError("pre-fill: messages still queued after 60 s")
    return flow_ids, dead_keys


class DetectorUnderChaos:
    """One nids-detect instance (fixed instance id), restarted after each SIGKILL, and supervised as
    compose's `restart: unless-stopped` does: started again when it exits by itself."""

    def __init__(self, bootstrap: str, topics: Topics, group: str, model: Path, log: Path, **settings: object) -> None:
        self.bootstrap, self.topics, self.group = bootstrap, topics, group
        self.model, self.log, self.settings = model, log, {**settings, "instance_id": f"{group}-one"}
        identity = DetectorSettings(group_id=group, instance_id=f"{group}-one")
        self.transactional_id = DetectorConfig(detector=identity).transactional_id
        self.port = 0
        self.exits: list[int] = []
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self.port = free_port()
        return start_detector(self.bootstrap, self.topics, self.group, self.port, self.model, self.log, **self.settings)

    def consumed(self) -> float:
        if self.process.poll() is not None:
            self.exits.append(self.process.returncode)
            if len(self.exits) > MAX_SUPERVISED_RESTARTS:
                raise HarnessError(f"nids-detect exited {len(self.exits)} times (codes {self.exits}); see {self.log}")
            self.process = self._start()
        return scrape_total(self.port, CONSUMED)

    def kill_and_restart(self) -> float:
        """SIGKILL, start again at once; seconds until the new process committed its first batch."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        killed = time.monotonic()
        self.process = self._start()
        if not wait_until(lambda: self.consumed() > 0, 120, poll=0.1):
            raise HarnessError(f"the restarted detector committed nothing within 120 s; see {self.log}")
        return time.monotonic() - killed

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_chaos(
    bootstrap: str,
    frame: pd.DataFrame,
    model: Path,
    delivery: str,
    kills: int,
    malformed: int,
    broker_fault: BrokerFault | None,
    seed: int = 1,
    workdir: Path | None = None,
    **settings: object,
) -> ChaosReport:
    """Three quarters of the flows (with the malformed records and the oversized one) before the
    kills, the last quarter once `broker_fault` has struck (while a cluster node is still down), so
    that every fault lands mid-stream."""
    topics = make_topics(bootstrap, f"chaos-{delivery}-{uuid.uuid4().hex[:6]}")
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4", "message.max.bytes": 20_000_000}
    )
    split = len(frame) * 3 // 4
    early, late = frame.iloc[:split], frame.iloc[split:]
    flow_ids, dead_keys = prefill(producer, topics.flows, early, range(malformed), "early", True, parts=4)
    rng = np.random.default_rng(seed)
    group = f"chaos-{delivery}-{time.monotonic_ns()}"
    log = (workdir or Path(tempfile.mkdtemp())) / f"{group}.log"
    detector = DetectorUnderChaos(bootstrap, topics, group, model, log, delivery=delivery, **settings)
    stalls: list[float] = []
    broker_stall = None

    def committed() -> int:
        return committed_so_far(bootstrap, group, topics.flows)

    try:
        for _ in range(kills):
            # A random point mid-stream: batches of 20,000 take a fraction of a second, so it is
            # almost always inside one.
            threshold = float(rng.integers(1, max(2, split // (2 * (kills + 1)))))
            if not wait_until(lambda: detector.consumed() >= threshold, 120, poll=0.1):  # noqa: B023
                raise HarnessError(f"the detector made no progress; see {log}")
            time.sleep(float(rng.uniform(0.0, 0.3)))
            stalls.append(detector.kill_and_restart())
        if not wait_until(lambda: detector.consumed() > 0, 120, poll=0.1):
            raise HarnessError(f"the detector made no progress; see {log}")
        before, killed = committed(), time.monotonic()
        target = FaultTarget(bootstrap, topics.flows, group, detector.transactional_id)
        recover = broker_fault(target) if broker_fault is not None else None
        late_malformed = range(malformed, malformed + 10)
        # The last quarter arrives while the fault lasts: written from a thread, so that the stall is
        # timed from here and not after a flush that itself waits for a partition's new leader.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as writer:
            late_written = writer.submit(prefill, producer, topics.flows, late, late_malformed, "late", False, 2)
            # detector.consumed() supervises the detector while the group catches up.
            resumed = wait_until(lambda: detector.consumed() >= 0 and committed() > before, 180, poll=0.25)
            if recover is not None:
                broker_stall = time.monotonic() - killed if resumed else None
                recover()
            late_ids, late_dead = late_written.result()
        flow_ids, dead_keys = flow_ids + late_ids, dead_keys | late_dead

        def all_committed() -> bool:
            return detector.consumed() >= 0 and group_lag(bootstrap, group, topics.flows) == 0

        if not wait_until(all_committed, 300, poll=1.0):
            raise HarnessError(f"the group did not commit every flow within 300 s; see {log}")
    finally:
        detector.stop()
    detection, _ = load_model(model)
    expected = {flow_id for flow_id, attack in zip(flow_ids, detection.score(frame).is_attack, strict=True) if attack}
    alerts = collections.Counter(key_of(m) for m in read_topic(bootstrap, topics.alerts))
    dead = collections.Counter(key_of(m) for m in read_topic(bootstrap, topics.dead_letter))
    return ChaosReport(
        delivery=delivery,
        flows=len(flow_ids),
        expected_alerts=len(expected),
        missing_alerts=len(expected - set(alerts)),
        duplicated_alerts=sum(n - 1 for n in alerts.values() if n > 1),
        expected_dead=len(dead_keys),
        got_dead=sum(dead.values()),
        missing_dead=len(dead_keys - set(dead)),
        duplicated_dead=sum(n - 1 for n in dead.values() if n > 1),
        detector_stalls=stalls,
        broker_stall=broker_stall,
        supervisor_restarts=len(detector.exits),
    )


def key_of(message: Message) -> str:
    return (message.key() or b"").decode()

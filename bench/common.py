"""Shared set-up for benchmarks: the broker, topics, the dev data when present, a model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from confluent_kafka import Consumer, Message, TopicPartition

from nids_common.contract import DEFAULT_PARTITIONS, Topics
from nids_common.kafka import ensure_topics
from nids_dataset.synthetic import synthetic_frame
from nids_dataset.unsw import load_flows

REPO = Path(__file__).resolve().parents[1]
DEV_DATA = REPO.parent / "shared" / "data" / "unsw-nb15" / "unsw_nb15_dev.csv"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")


SECURE_CREDENTIALS = REPO / ".kafka-local" / "secure" / "credentials"


def ensure_broker() -> str:
    if "KAFKA_BOOTSTRAP" not in os.environ:
        subprocess.run([str(REPO / "scripts" / "kafka-local"), "start"], check=True, stdout=subprocess.DEVNULL)
    return BOOTSTRAP


def fresh_topics(prefix: str, partitions: int = DEFAULT_PARTITIONS) -> Topics:
    topics = Topics.named(f"bench.{prefix}.{uuid.uuid4().hex[:6]}", partitions)
    ensure_topics({"bootstrap.servers": BOOTSTRAP}, topics.partition_counts(), configs=topics.configs())
    return topics


def flows_frame(rows: int) -> tuple[pd.DataFrame, str]:
    """The dev file (repeated to `rows`) when ../shared has it, else synthetic flows."""
    if DEV_DATA.exists():
        frame = load_flows([DEV_DATA])
        repeats = -(-rows // len(frame))
        return pd.concat([frame] * repeats, ignore_index=True).iloc[:rows], f"UNSW-NB15 dev file ({DEV_DATA.name})"
    return synthetic_frame(rows, seed=1), "synthetic flows (../shared absent)"


def model_path() -> Path:
    path = REPO / "models" / "latest"
    if not path.exists():
        raise SystemExit("no model: run `nids-train --data …` (or `make demo`) first")
    return path


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def replay_command(topic: str, *options: str) -> list[str]:
    """nids-replay as a user runs it, on the benchmark source: the dev file, looped, or synthetic flows."""
    source = ["--data", str(DEV_DATA), "--loop"] if DEV_DATA.exists() else ["--synthetic", "--loop"]
    return [sys.executable, "-m", "producer.cli", *source, *options, "--topic", topic]


def start_detector(
    bootstrap: str,
    topics: Topics,
    group: str,
    port: int,
    model: Path | None = None,
    log: Path | None = None,
    **settings: object,
) -> subprocess.Popen[bytes]:
    """nids-detect as a user runs it, in its own process, on `topics` and `group`, its log appended
    to `log`; `settings` are detector settings (NIDS_DETECTOR_<NAME>), e.g. delivery="exactly_once"."""
    env = {
        **os.environ,
        "NIDS_KAFKA_BOOTSTRAP": bootstrap,
        **topics_env(topics),
        **{f"NIDS_DETECTOR_{name.upper()}": str(value) for name, value in settings.items()},
    }
    command = [sys.executable, "-m", "detector.cli", "--model", str(model or model_path()), "--group", group]
    with open(log or os.devnull, "ab") as sink:
        return subprocess.Popen(
            [*command, "--metrics-port", str(port)], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=sink
        )


def start_ready_detector(
    bootstrap: str,
    topics: Topics,
    group: str,
    port: int,
    model: Path | None = None,
    log: Path | None = None,
    **settings: object,
) -> subprocess.Popen[bytes]:
    """`start_detector`, returning once it has loaded its model and been assigned partitions: traffic
    sent before would measure its start-up, not the stream (a larger model takes longer to load)."""
    detector = start_detector(bootstrap, topics, group, port, model=model, log=log, **settings)
    if not wait_assigned(port):
        detector.kill()
        raise SystemExit(f"the detector of group {group} did not join it within 60 s")
    return detector


def topics_env(topics: Topics) -> dict[str, str]:
    """The environment that points a service at `topics` (NIDS_TOPICS_*)."""
    return {
        "NIDS_TOPICS_FLOWS": topics.flows,
        "NIDS_TOPICS_ALERTS": topics.alerts,
        "NIDS_TOPICS_DEAD_LETTER": topics.dead_letter,
        "NIDS_TOPICS_VERDICTS": topics.verdicts,
    }


def secure_role_env(role: str) -> dict[str, str]:
    """A role's NIDS_KAFKA_* settings for the secure local broker, as `set -a; . FILE` exports them
    from the file `scripts/kafka-local start --secure` writes."""
    lines = (SECURE_CREDENTIALS / f"{role}.env").read_text().splitlines()
    return {name: value.strip("'") for name, _, value in (line.partition("=") for line in lines if line)}


def metrics_lines(port: int) -> list[str]:
    """The lines of a detector's /metrics on 127.0.0.1:`port`; none while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            return list(response.read().decode().splitlines())
    except OSError:
        return []


def scrape_value(port: int, sample: str) -> float:
    """One unlabelled sample of a detector's /metrics on 127.0.0.1:`port`; 0 while it does not answer."""
    for line in metrics_lines(port):
        if line.startswith(sample + " "):
            return float(line.split()[1])
    return 0.0


def wait_assigned(port: int, timeout: float = 60.0) -> bool:
    """Until the detector serving /metrics on `port` has loaded its model and been assigned partitions
    (its nids_consumer_lag has a partition label), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(line.startswith("nids_consumer_lag{") for line in metrics_lines(port)):
            return True
        time.sleep(0.2)
    return False


def downstream_consumer(bootstrap: str, name: str) -> Consumer:
    """A consumer as a downstream reader of the outputs runs one: a group of its own, from the start,
    committed transactions only."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{name}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )


def read_all(bootstrap: str, topic: str, idle_seconds: float = 3.0) -> list[Message]:
    """Every message of `topic` as a downstream reader sees it (read_committed), until it is idle."""
    consumer = downstream_consumer(bootstrap, f"bench-read-{topic}")
    consumer.subscribe([topic])
    out: list[Message] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_seconds:
            batch = consumer.consume(5000, timeout=0.5)
            if batch:
                last = time.monotonic()
            out += [m for m in batch if m.error() is None]
    finally:
        consumer.close()
    return out


class LiveReader(threading.Thread):
    """Reads `topic` as it fills and hands each message to `on_message` with its arrival time."""

    def __init__(self, bootstrap: str, topic: str, on_message: Callable[[Message, float], None]) -> None:
        super().__init__(daemon=True)
        self.consumer = downstream_consumer(bootstrap, f"bench-live-{topic}")
        # The consumer is used by this thread only (it is not thread-safe): its assignment is
        # reported to the others through an event.
        self.assigned = threading.Event()
        self.consumer.subscribe([topic], on_assign=lambda _consumer, _partitions: self.assigned.set())
        self.on_message = on_message
        self.running = True

    def wait_assigned(self, timeout: float = 30.0) -> None:
        if not self.assigned.wait(timeout):
            raise SystemExit(f"the reader got no partitions within {timeout:.0f} s")

    def run(self) -> None:
        while self.running:
            # consume() waits for all 5000 messages or the timeout: a short one keeps arrival times exact.
            for message in self.consumer.consume(5000, timeout=0.005):
                if message.error() is None:
                    self.on_message(message, time.time())
        self.consumer.close()

    def stop(self) -> None:
        self.running = False
        self.join(10)


def group_progress(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(committed, end): the group's committed offsets and the end offsets of `topic`, summed over its
    partitions (a partition without a commit counts from its start)."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = [TopicPartition(topic, p) for p in partitions]
        committed = {tp.partition: tp.offset for tp in reader.committed(wanted, timeout=10)}
        done = end = 0
        for p in partitions:
            low, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            done += committed[p] if committed[p] >= 0 else low
            end += high
        return done, end
    finally:
        reader.close()


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages of `topic` the group has not committed yet."""
    done, end = group_progress(bootstrap, group, topic)
    return end - done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

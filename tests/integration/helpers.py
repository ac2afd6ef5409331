"""Every helper the integration tests share: the repository, a broker that is not there, free ports,
topics, replaying flows, a detector running in a thread, reading topics back as a downstream reader."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Message, Producer
from prometheus_client import CollectorRegistry

from bench.common import downstream_consumer
from detector.config import DetectorConfig, DetectorSettings, MetricsSettings
from detector.metrics import DetectorMetrics
from detector.reload import load_live
from detector.service import Detector
from nids_common.config import KafkaSettings
from nids_common.contract import DEFAULT_PARTITIONS, Topics
from nids_common.kafka import ensure_topics
from nids_dataset.synthetic import synthetic_frame
from producer.replay import replay

REPO = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = str(REPO / "scripts" / "kafka-local")


def unavailable(reason: str) -> None:
    """A component the test needs is missing: under CI=true that fails the test, elsewhere it skips."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def make_topics(bootstrap: str, name: str, partitions: int = DEFAULT_PARTITIONS) -> Topics:
    """The contract's topics under a name of the test's own, with `partitions` partitions each."""
    topics = Topics.named(name, partitions)
    ensure_topics({"bootstrap.servers": bootstrap}, topics.partition_counts(), configs=topics.configs())
    return topics


def replay_synthetic(bootstrap: str, topic: str, rows: int, seed: int, run_id: str) -> pd.DataFrame:
    """`rows` synthetic flows replayed to `topic` as nids-replay sends them; the frame with their flow ids."""
    frame = synthetic_frame(rows, seed=seed)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    summary = replay([frame], producer, topic, run_id=run_id)
    assert summary.failed == 0 and summary.delivered == rows
    return frame.assign(flow_id=[f"{run_id}-{i}" for i in range(rows)])


def detector_config(bootstrap: str, topics: Topics, group: str, model: Path, **settings: Any) -> DetectorConfig:
    """A detector on the test's topics and group; each gets an instance id of its own unless given."""
    settings.setdefault("instance_id", f"{group}-{uuid.uuid4().hex[:6]}")
    return DetectorConfig(
        kafka=KafkaSettings(bootstrap=bootstrap),
        topics=topics,
        detector=DetectorSettings(group_id=group, model=model, **settings),
        metrics=MetricsSettings(port=0),
    )


class RunningDetector:
    """A real Detector on its own thread, with its own metrics registry."""

    def __init__(self, config: DetectorConfig, before_start: Callable[[Detector], None] | None = None) -> None:
        self.metrics = DetectorMetrics(CollectorRegistry())
        live = load_live(config.detector.model, config.detector.model_threads)
        self.detector = Detector(config, live, self.metrics)
        if before_start is not None:
            before_start(self.detector)
        self.thread = threading.Thread(target=self.detector.run, daemon=True)
        self.thread.start()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if not self.thread.is_alive():
                return False
            time.sleep(0.2)
        return condition()

    def stop(self) -> None:
        self.detector.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "detector did not stop within 30 s"

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found


def read_topic(bootstrap: str, topic: str, expected: int | None = None, idle_seconds: float = 5.0) -> list[Message]:
    """Every message of `topic` from the start; stops after `expected` messages or `idle_seconds` of silence."""
    consumer = downstream_consumer(bootstrap, f"reader-{topic}")
    consumer.subscribe([topic])
    out: list[Message] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_seconds:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is None:
                    out.append(message)
                    last = time.monotonic()
            if expected is not None and len(out) >= expected:
                # Linger briefly so duplicates beyond `expected` would still be seen.
                expected, idle_seconds = None, 1.0
    finally:
        consumer.close()
    return out

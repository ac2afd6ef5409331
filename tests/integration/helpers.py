"""Helpers for integration tests: a detector running in a thread, reading topics back."""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any, Callable

from confluent_kafka import Consumer, Message
from prometheus_client import CollectorRegistry

from detector.config import DetectorConfig, DetectorSettings, MetricsSettings
from detector.metrics import DetectorMetrics
from detector.service import Detector
from nids_common.config import KafkaSettings, Topics
from nids_common.kafka import ensure_topics
from training.artifact import load_model


def make_topics(bootstrap: str, name: str, partitions: int = 6) -> Topics:
    topics = Topics(flows=f"{name}.flows", alerts=f"{name}.alerts", dead_letter=f"{name}.dlq", verdicts=f"{name}.verdicts")
    ensure_topics({"bootstrap.servers": bootstrap}, {topics.flows: partitions, topics.alerts: 3, topics.dead_letter: 1,
                                                      topics.verdicts: 3})
    return topics


def detector_config(bootstrap: str, topics: Topics, group: str, model: Path, **settings: Any) -> DetectorConfig:
    return DetectorConfig(kafka=KafkaSettings(bootstrap=bootstrap), topics=topics,
                          detector=DetectorSettings(group_id=group, model=model, **settings),
                          metrics=MetricsSettings(port=0))


class RunningDetector:
    """A real Detector on its own thread, with its own metrics registry."""

    def __init__(self, config: DetectorConfig, before_start: Callable[[Detector], None] | None = None) -> None:
        model, manifest = load_model(config.detector.model)
        self.metrics = DetectorMetrics(CollectorRegistry())
        self.detector = Detector(config, model, manifest["version"], self.metrics)
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
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
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


def with_settings(config: DetectorConfig, **settings: Any) -> DetectorConfig:
    return dataclasses.replace(config, detector=dataclasses.replace(config.detector, **settings))

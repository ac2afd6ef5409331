"""The detector wired to the in-memory Kafka stand-in (tests.unit.kafka_standins) and a stand-in model."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from prometheus_client import CollectorRegistry

from detector.clients import client_health
from detector.config import DetectorConfig, DetectorSettings
from detector.metrics import DetectorMetrics
from detector.reload import ModelReloader
from detector.service import Detector
from detector.values import LiveModel
from nids_common.checkpoint import EXACTLY_ONCE, make_checkpoint
from nids_common.config import KafkaSettings
from nids_common.contract import Topics
from nids_common.metrics_server import MetricsSettings
from nids_common.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from nids_common.stages import StageTimes
from nids_model.detection import Features, Scores
from tests.unit.kafka_standins import Record, StandInBroker, StandInConsumer, StandInProducer

TOPICS = Topics.named("unit", partitions=2)
CLASSES = ("DoS", "Exploits", "Normal")
ATTACK_BYTES = 1000.0  # the stand-in model calls a flow an attack when its sbytes reach this


def flow(flow_id: str, sbytes: float) -> bytes:
    record: dict[str, Any] = {**dict.fromkeys(CATEGORICAL_FEATURES, "tcp"), **dict.fromkeys(NUMERIC_FEATURES, 1.0)}
    return orjson.dumps({**record, "flow_id": flow_id, "sbytes": sbytes})


class StandInModel:
    """Scores by one rule (sbytes >= ATTACK_BYTES → DoS); `fail_on_call` makes that call raise."""

    classes = CLASSES

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call

    def features(self, columns: dict[str, np.ndarray]) -> Features:
        matrix = np.asarray(columns["sbytes"], dtype=np.float32).reshape(-1, 1)
        return Features(matrix, matrix)

    def score_features(self, features: Features, stages: StageTimes | None = None) -> Scores:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("scorer broke")
        is_attack = features.label[:, 0] >= ATTACK_BYTES
        probabilities = np.full((len(is_attack), len(CLASSES)), np.nan)
        probabilities[is_attack] = [0.9, 0.1, 0.0]
        return Scores(
            attack_probability=np.where(is_attack, 0.95, 0.05),
            is_attack=is_attack,
            attack_cat=np.where(is_attack, "DoS", "Normal").astype(object),
            class_probabilities=probabilities,
        )


class NoReloads(ModelReloader):
    """A reloader without its watching thread: nothing new ever becomes ready."""

    def __init__(self) -> None:
        self.on_result = lambda _result: None
        self._ready = None

    def stop(self) -> None:
        pass


@dataclasses.dataclass
class Rig:
    """A detector wired to stand-ins, and the stand-ins."""

    detector: Detector
    broker: StandInBroker
    consumer: StandInConsumer
    producer: StandInProducer
    metrics: DetectorMetrics

    def topic(self, name: str) -> list[Record]:
        return self.broker.records(name)

    def alert_keys(self) -> list[bytes | None]:
        return [record.key for record in self.topic(TOPICS.alerts)]

    def flows(self) -> dict[int, list[Record]]:
        return self.broker.logs[TOPICS.flows]

    def run(self, consume_calls: int = 20) -> None:
        """Run the loop until consume() has been called `consume_calls` times, then shut down."""
        self.detector.run(lambda: self.consumer.consume_calls < consume_calls)


def rig(logs: dict[int, list[bytes]], *, batch: int = 4, model: StandInModel | None = None, **settings: Any) -> Rig:
    """A detector over `logs` (partition → values of the flow topic) with stand-in clients, `batch`
    records a consume()."""
    config = DetectorConfig(
        kafka=KafkaSettings(bootstrap="stand-in:9092"),
        topics=TOPICS,
        detector=DetectorSettings(max_records=batch, drift_metrics=False, instance_id="unit", **settings),
        metrics=MetricsSettings(port=0),
    )
    broker = StandInBroker({**TOPICS.partition_counts(), TOPICS.flows: len(logs)})
    for partition, values in logs.items():
        broker.fill(TOPICS.flows, partition, values)
    metrics = DetectorMetrics(CollectorRegistry(), classes=CLASSES)
    consumer = StandInConsumer(broker, batch)
    exactly_once = config.detector.delivery == EXACTLY_ONCE
    producer = StandInProducer(broker, transactional=exactly_once)
    health = client_health(config, metrics)
    checkpoint = make_checkpoint(config.detector.delivery, consumer, producer, metrics, health.refusals)  # type: ignore[arg-type]
    live = LiveModel(model or StandInModel(), "v1", Path("."))  # type: ignore[arg-type]
    detector = Detector(config, live, metrics, consumer, checkpoint, health, NoReloads(), ThreadPoolExecutor(1))  # type: ignore[arg-type]
    return Rig(detector, broker, consumer, producer, metrics)


def partition_logs(sizes: tuple[int, ...], attack_every: int = 2) -> dict[int, list[bytes]]:
    """Partition → flows; every `attack_every`-th flow of each partition is an attack."""
    return {
        partition: [flow(f"f{partition}-{i}", ATTACK_BYTES if i % attack_every == 0 else 10.0) for i in range(size)]
        for partition, size in enumerate(sizes)
    }

"""Stand-ins for the detector's Kafka clients and model, for unit tests of the loop without a broker.

They keep to the behaviour the loop relies on: a consumer reads per-partition logs from a position
that seek() moves and commit() stores; a producer holds produced messages until flush() reports their
delivery, and in a transaction shows them only once it commits. Faults are scheduled by the test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry

from detector.clients import client_health
from detector.config import EXACTLY_ONCE, DetectorConfig, DetectorSettings, MetricsSettings
from detector.metrics import DetectorMetrics
from detector.reload import ModelReloader
from detector.service import Detector
from detector.values import LiveModel
from nids_common.checkpoint import Checkpoint, TransactionalCheckpoint
from nids_common.config import KafkaSettings
from nids_common.contract import Topics
from nids_common.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from nids_model.detection import Features, Scores

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

    def score_features(self, features: Features) -> Scores:
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


class StandInConsumer:
    """One topic's partitions as lists of values. `on_consume[n]` runs before the n-th consume() call
    (1-based) with this consumer: a test revokes, loses partitions or raises from there."""

    def __init__(self, topic: str, logs: dict[int, list[bytes]], batch: int) -> None:
        self.topic, self.logs, self.batch = topic, logs, batch
        self.position = dict.fromkeys(logs, 0)
        self.committed: dict[int, int] = {}
        self.commits: list[tuple[dict[int, int], bool]] = []  # (offsets, asynchronous)
        self.seeks: list[tuple[int, int]] = []
        self.on_consume: dict[int, Callable[[StandInConsumer], None]] = {}
        self.consume_calls = 0
        self.callbacks: dict[str, Callable[..., None]] = {}
        self.closed = False

    # -- what the loop calls ----------------------------------------------------------------------
    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        assert topics == [self.topic]
        self.callbacks = callbacks
        self.callbacks["on_assign"](self, self.partitions())

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.consume_calls += 1
        event = self.on_consume.get(self.consume_calls)
        if event is not None:
            event(self)
        out: list[Message] = []
        for partition, log in self.logs.items():
            while len(out) < min(num_messages, self.batch) and self.position[partition] < len(log):
                offset = self.position[partition]
                out.append(
                    Message(
                        topic=self.topic,
                        partition=partition,
                        offset=offset,
                        key=f"k{partition}-{offset}".encode(),
                        value=log[offset],
                        timestamp=(1, 1_700_000_000_000),
                    )
                )
                self.position[partition] += 1
        return out

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append((partition.partition, partition.offset))
        self.position[partition.partition] = partition.offset

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool = True) -> None:
        stored = {tp.partition: tp.offset for tp in offsets}
        self.commits.append((stored, asynchronous))
        self.committed.update(stored)

    def consumer_group_metadata(self) -> object:
        return "group-metadata"

    def close(self) -> None:
        self.closed = True

    # -- what a test calls --------------------------------------------------------------------------
    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in self.logs]

    def revoke(self) -> None:
        """The group takes the partitions away, as librdkafka does inside consume()."""
        self.callbacks["on_revoke"](self, self.partitions())
        self.position = {p: self.committed.get(p, 0) for p in self.logs}
        self.callbacks["on_assign"](self, self.partitions())

    def lose(self) -> None:
        self.callbacks["on_lost"](self, self.partitions())
        self.position = {p: self.committed.get(p, 0) for p in self.logs}
        self.callbacks["on_assign"](self, self.partitions())

    def total(self) -> int:
        return sum(map(len, self.logs.values()))


@dataclasses.dataclass
class Produced:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None
    partition: int = -1


class StandInProducer:
    """Delivers on flush(). `failing_deliveries` reports that many deliveries as failed;
    `errors[call]` is a list of KafkaErrors that call raises, one per attempt, before it succeeds.
    Outputs a read_committed reader would see are in `visible`."""

    def __init__(self, transactional: bool = False, group: StandInConsumer | None = None) -> None:
        self.transactional, self.group = transactional, group  # a transaction commits offsets to `group`
        self.pending: list[tuple[Produced, Callable[..., None]]] = []
        self.in_transaction: list[Produced] = []
        self.visible: list[Produced] = []
        self.failing_deliveries = 0
        self.errors: dict[str, list[KafkaError]] = {}
        self.calls: list[str] = []
        self.offsets_sent: list[dict[int, int]] = []
        self._failed_in_transaction = False

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        on_delivery: Callable[..., None] | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        assert on_delivery is not None
        self.pending.append((Produced(topic, key, value, headers, partition), on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return self.flush(timeout)

    def flush(self, timeout: float = 0) -> int:
        pending, self.pending = self.pending, []
        for produced, on_delivery in pending:
            message = Message(topic=produced.topic, key=produced.key, value=produced.value)
            if self.failing_deliveries > 0:
                self.failing_deliveries -= 1
                self._failed_in_transaction = self.transactional
                on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), message)
                continue
            (self.in_transaction if self.transactional else self.visible).append(produced)
            on_delivery(None, message)
        return 0

    def init_transactions(self, timeout: float) -> None:
        self._call("init_transactions")

    def begin_transaction(self) -> None:
        self._call("begin_transaction")
        self.in_transaction, self._failed_in_transaction = [], False

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: object, timeout: float) -> None:
        self._call("send_offsets_to_transaction")
        self.offsets_sent.append({tp.partition: tp.offset for tp in offsets})

    def commit_transaction(self, timeout: float) -> None:
        """As librdkafka's: flush first; a failed delivery makes the transaction abortable."""
        self.flush()
        if self._failed_in_transaction:
            raise KafkaException(kafka_error(KafkaError._INCONSISTENT, txn_requires_abort=True))
        self._call("commit_transaction")
        self.visible.extend(self.in_transaction)
        self.in_transaction = []
        if self.group is not None and self.offsets_sent:
            self.group.committed.update(self.offsets_sent[-1])

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort_transaction")
        self.pending, self.in_transaction = [], []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        queued = self.errors.get(name)
        if queued:
            raise KafkaException(queued.pop(0))


def kafka_error(
    code: int, *, fatal: bool = False, retriable: bool = False, txn_requires_abort: bool = False
) -> KafkaError:
    return KafkaError(code, "stand-in", fatal=fatal, retriable=retriable, txn_requires_abort=txn_requires_abort)


@dataclasses.dataclass
class Rig:
    """A detector wired to stand-ins, and the stand-ins."""

    detector: Detector
    consumer: StandInConsumer
    producer: StandInProducer
    metrics: DetectorMetrics

    def topic(self, name: str) -> list[Produced]:
        return [p for p in self.producer.visible if p.topic == name]

    def alert_keys(self) -> list[object]:
        return [p.key for p in self.topic(TOPICS.alerts)]

    def run(self, consume_calls: int = 20) -> None:
        """Run the loop until consume() has been called `consume_calls` times, then shut down."""
        self.detector.run(lambda: self.consumer.consume_calls < consume_calls)


class NoReloads(ModelReloader):
    """A reloader without its watching thread: nothing new ever becomes ready."""

    def __init__(self, current: LiveModel) -> None:
        self.on_result = lambda _result: None
        self._ready = None

    def stop(self) -> None:
        pass


def rig(
    logs: dict[int, list[bytes]],
    *,
    batch: int = 4,
    model: StandInModel | None = None,
    **settings: Any,
) -> Rig:
    """A detector over `logs` (partition → values) with stand-in clients, `batch` records a consume()."""
    config = DetectorConfig(
        kafka=KafkaSettings(bootstrap="stand-in:9092"),
        topics=TOPICS,
        detector=DetectorSettings(max_records=batch, drift_metrics=False, instance_id="unit", **settings),
        metrics=MetricsSettings(port=0),
    )
    metrics = DetectorMetrics(CollectorRegistry(), classes=CLASSES)
    consumer = StandInConsumer(TOPICS.flows, logs, batch)
    exactly_once = config.detector.delivery == EXACTLY_ONCE
    producer = StandInProducer(transactional=exactly_once, group=consumer)
    health = client_health(config, metrics)
    checkpoint_class = TransactionalCheckpoint if exactly_once else Checkpoint
    checkpoint = checkpoint_class(consumer, producer, metrics, refusals=health.refusals)  # type: ignore[arg-type]
    live = LiveModel(model or StandInModel(), "v1", Path("."))  # type: ignore[arg-type]
    scorer = ThreadPoolExecutor(1)
    detector = Detector(config, live, metrics, consumer, checkpoint, health, NoReloads(live), scorer)  # type: ignore[arg-type]
    return Rig(detector, consumer, producer, metrics)


def partition_logs(sizes: Sequence[int], attack_every: int = 2) -> dict[int, list[bytes]]:
    """Partition → flows; every `attack_every`-th flow of each partition is an attack."""
    return {
        partition: [flow(f"f{partition}-{i}", ATTACK_BYTES if i % attack_every == 0 else 10.0) for i in range(size)]
        for partition, size in enumerate(sizes)
    }

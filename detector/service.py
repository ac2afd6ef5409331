"""The detector loop: consume a micro-batch → decode → score → produce alerts → flush → commit.

At-least-once: a batch's offsets are committed only after every alert, verdict and dead-letter
message of the batch is delivered. If any delivery fails, the partitions are rewound to the batch's
first offsets and the batch is processed again, so no flow goes unscored or unalerted.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from threadpoolctl import threadpool_limits

from detector.alerts import alert_payloads, dead_letter_headers
from detector.config import DetectorConfig
from detector.decode import decode_batch, ground_truth
from detector.metrics import DetectorMetrics, observe_many
from training.detection import DetectionModel

log = logging.getLogger("nids.detect")


@dataclasses.dataclass
class Counts:
    consumed: int = 0
    scored: int = 0
    alerts: int = 0
    invalid: int = 0


class Detector:
    def __init__(self, config: DetectorConfig, model: DetectionModel, model_version: str, metrics: DetectorMetrics) -> None:
        self.config, self.model, self.model_version, self.metrics = config, model, model_version, metrics
        self.counts = Counts()
        self.running = True
        self._delivery_failed = 0
        self._status = StatusLine(config.detector.group_id) if sys.stderr.isatty() else None
        common = config.kafka.client_config(error_cb=self._on_kafka_error)
        self.consumer = Consumer({
            **common,
            "group.id": config.detector.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # Larger fetches keep a 2-core consumer fed at tens of thousands of flows per second.
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 10_485_760,
            "statistics.interval.ms": 5000,
            "stats_cb": lambda stats: self.metrics.record_statistics(stats, config.topics.flows),
            **dict(config.kafka.librdkafka),
        })
        self.producer = Producer({
            **common,
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
            **dict(config.kafka.librdkafka),
        })
        metrics.set_model(model_version)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, should_continue: Callable[[], bool] = lambda: True) -> Counts:
        detector = self.config.detector
        threadpool_limits(limits=detector.model_threads, user_api="openmp")
        self.consumer.subscribe([self.config.topics.flows], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while self.running and should_continue():
                batch = self.consumer.consume(num_messages=detector.max_records, timeout=detector.max_wait_ms / 1000)
                if batch:
                    self.process(batch)
                elif self._status:
                    self._status.show(self.counts, self.metrics)
        finally:
            self.close()
        return self.counts

    def process(self, batch: list[Message]) -> None:
        started = time.perf_counter()
        messages = [m for m in batch if not self._is_error(m)]
        if not messages:
            return
        sources = MessageSources(messages)
        decoded = decode_batch([m.value() for m in messages], sources, self.config.detector.max_message_bytes)
        self._delivery_failed = 0
        for position, error in decoded.invalid:
            message = messages[position]
            self.producer.produce(self.config.topics.dead_letter, key=message.key(), value=message.value(),
                                  headers=dead_letter_headers(error), on_delivery=self._on_delivery)
        alert_rows = np.empty(0, dtype=np.int64)
        scores = None
        if len(decoded.valid):
            scores = self.model.score(decoded.columns)
            alert_rows = np.flatnonzero(scores.is_attack)
            for key, value in alert_payloads(alert_rows, decoded.records, scores, self.model.classes, sources,
                                             decoded.valid, self.model_version):
                self._produce(self.config.topics.alerts, key, value)
            if self.config.detector.emit_verdicts:
                every_row = np.arange(len(decoded.valid))
                for key, value in alert_payloads(every_row, decoded.records, scores, self.model.classes, sources,
                                                 decoded.valid, self.model_version, include_probabilities=False):
                    self._produce(self.config.topics.verdicts, key, value)
        # Kafka semantics: the offsets may be committed only once everything the batch produced is
        # acknowledged; flush() returning > 0 or a failed delivery report means it was not.
        remaining = self.producer.flush(30)
        if remaining or self._delivery_failed:
            self.metrics.delivery_failures.inc(remaining + self._delivery_failed)
            log.error("%d output message(s) not delivered; rewinding the batch to process it again",
                      remaining + self._delivery_failed)
            self._rewind(messages)
            return
        # position() is the next offset the application would read in each partition: right after
        # this batch, and it follows a seek() — unlike the stored offsets, which a rewind leaves
        # ahead and which would then commit past flows not processed again yet.
        positions = [tp for tp in self.consumer.position(self.consumer.assignment()) if tp.offset >= 0]
        if positions:
            self.consumer.commit(offsets=positions, asynchronous=False)
        self._account(batch, messages, decoded, scores, alert_rows, started)

    def stop(self) -> None:
        self.running = False

    def close(self) -> None:
        try:
            remaining = self.producer.flush(30)
            if remaining:
                log.error("%d message(s) undelivered at shutdown; their batch was not committed", remaining)
        finally:
            self.consumer.close()
            if self._status:
                self._status.done()
            log.info("detector stopped: consumed %d, scored %d, alerts %d, invalid %d", self.counts.consumed,
                     self.counts.scored, self.counts.alerts, self.counts.invalid)

    # -- helpers --------------------------------------------------------------------------------
    def _produce(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value, on_delivery=self._on_delivery)
                return
            except BufferError:
                self.producer.poll(0.05)

    def _account(self, batch: list[Message], messages: list[Message], decoded: Any, scores: Any,
                 alert_rows: np.ndarray, started: float) -> None:
        m, c = self.metrics, self.counts
        c.consumed += len(messages)
        c.scored += len(decoded.valid)
        c.invalid += len(decoded.invalid)
        c.alerts += len(alert_rows)
        m.consumed.inc(len(messages))
        m.scored.inc(len(decoded.valid))
        for _, error in decoded.invalid:
            m.invalid.labels(reason=error.reason).inc()
        if scores is not None:
            m.count_alerts(scores.attack_cat[alert_rows])
            actual, known = ground_truth(decoded.records)
            m.count_classifications(actual[known], scores.attack_cat[known])
            if len(alert_rows):
                now = time.time()
                created = np.fromiter((messages[decoded.valid[r]].timestamp()[1] for r in alert_rows.tolist()),
                                      dtype=np.float64, count=len(alert_rows))
                observe_many(m.latency, np.maximum(now - created / 1000.0, 0.0))
        m.batch_records.observe(len(batch))
        m.batch_duration.observe(time.perf_counter() - started)
        m.broker_up.set(1)
        if self._status:
            self._status.show(c, m)

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        self.metrics.kafka_errors.labels(code=error.name()).inc()
        log.warning("consume error: %s", error.str())
        return True

    def _rewind(self, messages: list[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            first.setdefault((message.topic(), message.partition()), message.offset())
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._delivery_failed += 1
            log.warning("delivery failed: %s", err.str())

    def _on_kafka_error(self, err: KafkaError) -> None:
        self.metrics.kafka_errors.labels(code=err.name()).inc()
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.metrics.broker_up.set(0)
        # librdkafka reconnects by itself; the loop keeps polling and resumes when brokers return.
        log.warning("kafka: %s", err.str())

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(p.partition for p in partitions))
        self.metrics.set_partitions(p.partition for p in partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Batches are committed before the next consume(), inside which rebalances run: nothing is
        # in flight here, so there is nothing to commit.
        log.info("revoked partitions %s", sorted(p.partition for p in partitions))


class MessageSources(Sequence[tuple[str, int, int]]):
    """(topic, partition, offset) of the batch's messages, read only for the rows that need them
    (alerts, dead letters): three method calls per message add up at tens of thousands per second."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, position: int) -> tuple[str, int, int]:  # type: ignore[override]
        message = self.messages[position]
        return message.topic(), message.partition(), message.offset()


class StatusLine:
    """One live line on a terminal: flows/s, alerts/s, lag."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.last_time = time.monotonic()
        self.last = Counts()

    def show(self, counts: Counts, metrics: DetectorMetrics) -> None:
        now = time.monotonic()
        if now - self.last_time < 1.0:
            return
        span = now - self.last_time
        lag = sum(sample.value for sample in metrics.lag.collect()[0].samples)
        sys.stderr.write(
            f"\r{self.group}: {(counts.consumed - self.last.consumed) / span:9,.0f} flows/s  "
            f"{(counts.alerts - self.last.alerts) / span:8,.0f} alerts/s  lag {lag:9,.0f}  "
            f"scored {counts.scored:,}  invalid {counts.invalid:,}   ")
        sys.stderr.flush()
        self.last_time, self.last = now, dataclasses.replace(counts)

    def done(self) -> None:
        sys.stderr.write("\n")

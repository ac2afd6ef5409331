"""The detector loop: consume a micro-batch → decode → score → produce alerts → flush → commit.

At-least-once: a batch's offsets are committed only after every alert, verdict and dead-letter
message of the batch is delivered. If any delivery fails, the partitions are rewound to the batch's
first offsets and the batch is processed again, so no flow goes unscored or unalerted.

Under a backlog, batch N scores on a scorer thread while batch N+1 is consumed and decoded: the
compiled model holds no GIL, so the two cores both work. At most one batch is ever in flight, it is
finished before a rebalance gives its partitions away, and its commit names its own offsets.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from operator import itemgetter
from typing import Callable, Sequence

import numpy as np
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from threadpoolctl import threadpool_limits

from detector.alerts import Origin, alert_payloads, dead_letter_headers
from detector.config import DetectorConfig
from detector.decode import DecodedBatch, decode_batch, ground_truth
from detector.metrics import DetectorMetrics, observe_many
from training.detection import DetectionModel, Scores

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
            "on_commit": self._on_commit,
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
        detector = config.detector
        model.use_threads(detector.model_threads)
        model.warm_up()
        # One scorer thread: the compiled model walks its trees without the GIL, so a batch scores
        # while the loop reads, decodes and produces around it.
        self._scorer = ThreadPoolExecutor(1, thread_name_prefix="nids-scorer", initializer=threadpool_limits,
                                          initargs=(detector.model_threads, "openmp"))
        self._in_flight: InFlight | None = None

    # -- the loop -------------------------------------------------------------------------------
    def run(self, should_continue: Callable[[], bool] = lambda: True) -> Counts:
        detector = self.config.detector
        self.consumer.subscribe([self.config.topics.flows], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while self.running and should_continue():
                batch = self.consumer.consume(num_messages=detector.max_records, timeout=detector.max_wait_ms / 1000)
                arriving = self._begin(batch)
                earlier, self._in_flight = self._in_flight, None
                if earlier is not None and not self._finish(earlier):
                    # Rewound to the failed batch's first offsets: the batch read after it comes again.
                    self._rewind(earlier.messages + (arriving.messages if arriving else []))
                    arriving = None
                if arriving is not None:
                    # A full batch means a backlog: it scores on the scorer thread while the next one
                    # is read and decoded. Otherwise it is finished now: latency matters more then.
                    if len(batch) >= detector.max_records:
                        self._in_flight = arriving
                    elif not self._finish(arriving):
                        self._rewind(arriving.messages)
                if self._status and not batch:
                    self._status.show(self.counts, self.metrics)
            self._finish_in_flight()
        finally:
            # After an error the batch in flight is dropped uncommitted (the group reads it again),
            # not finished from the revoke callback that close() triggers.
            self._in_flight = None
            self.close()
        return self.counts

    def _begin(self, batch: list[Message]) -> InFlight | None:
        """Decode a consumed batch and hand its valid flows to the scorer thread."""
        started = time.perf_counter()
        # Errors (partition EOF, broker trouble) are rare: one C-level pass tells whether to look.
        has_errors = any(map(Message.error, batch))
        messages = [m for m in batch if not self._is_error(m)] if has_errors else batch
        if not messages:
            return None
        decoded = decode_batch(list(map(Message.value, messages)), MessageSources(messages),
                               self.config.detector.max_message_bytes)
        scores = None
        if len(decoded.valid):
            scores = self._scorer.submit(self.model.score_features, self.model.features(decoded.columns))
        return InFlight(batch, messages, decoded, scores, started)

    def _finish(self, work: InFlight, wait_for_commit: bool = False) -> bool:
        """Dead letters and alerts out, flushed, then the batch's offsets committed. False if any
        delivery failed: nothing is committed and the caller rewinds."""
        self._delivery_failed = 0
        decoded = work.decoded
        for position, error in decoded.invalid:
            message = work.messages[position]
            self.producer.produce(self.config.topics.dead_letter, key=message.key(), value=message.value(),
                                  headers=dead_letter_headers(error), on_delivery=self._on_delivery)
        alert_rows = np.empty(0, dtype=np.int64)
        alerted: list[Message] = []
        scores = work.scores.result() if work.scores is not None else None
        if scores is not None:
            alert_rows = np.flatnonzero(scores.is_attack)
            alerted = [work.messages[position] for position in decoded.valid[alert_rows].tolist()]
            self._produce(self.config.topics.alerts, alert_payloads(
                alert_rows, decoded.records, scores, self.model.classes, origin(alerted), self.model_version))
            if self.config.detector.emit_verdicts:
                scored = [work.messages[position] for position in decoded.valid.tolist()]
                self._produce(self.config.topics.verdicts, alert_payloads(
                    np.arange(len(decoded.valid)), decoded.records, scores, self.model.classes, origin(scored),
                    self.model_version, include_probabilities=False))
        # Kafka semantics: the offsets may be committed only once everything the batch produced is
        # acknowledged; flush() returning > 0 or a failed delivery report means it was not.
        remaining = self.producer.flush(30)
        if remaining or self._delivery_failed:
            self.metrics.delivery_failures.inc(remaining + self._delivery_failed)
            log.error("%d output message(s) not delivered; rewinding the batch to process it again",
                      remaining + self._delivery_failed)
            return False
        # The batch's own offsets, not position(): with a batch in flight the consumer has already
        # read past this one, and committing its position would skip flows not yet alerted.
        # Asynchronous while the loop runs: the order of outputs before offsets is already kept,
        # waiting for the coordinator's answer would only idle the loop. A failure is logged and
        # counted, and the next batch's commit covers the same partitions again.
        self.consumer.commit(offsets=next_offsets(work.messages), asynchronous=not wait_for_commit)
        self._account(work, scores, alert_rows, alerted)
        return True

    def _finish_in_flight(self) -> None:
        work, self._in_flight = self._in_flight, None
        if work is not None and not self._finish(work, wait_for_commit=True):
            log.error("batch in flight not committed: this group reads it again")

    def stop(self) -> None:
        self.running = False

    def close(self) -> None:
        try:
            remaining = self.producer.flush(30)
            if remaining:
                log.error("%d message(s) undelivered at shutdown; their batch was not committed", remaining)
        finally:
            self.consumer.close()
            self._scorer.shutdown(cancel_futures=True)
            if self._status:
                self._status.done()
            log.info("detector stopped: consumed %d, scored %d, alerts %d, invalid %d", self.counts.consumed,
                     self.counts.scored, self.counts.alerts, self.counts.invalid)

    # -- helpers --------------------------------------------------------------------------------
    def _produce(self, topic: str, messages: list[tuple[str, bytes]]) -> None:
        produce, report = self.producer.produce, self._on_delivery
        for key, value in messages:
            try:
                produce(topic, value, key, on_delivery=report)
            except BufferError:
                # The local queue is full: serve delivery reports until there is room, then retry.
                while True:
                    self.producer.poll(0.05)
                    try:
                        produce(topic, value, key, on_delivery=report)
                        break
                    except BufferError:
                        pass

    def _account(self, work: InFlight, scores: Scores | None, alert_rows: np.ndarray, alerted: list[Message]) -> None:
        m, c = self.metrics, self.counts
        messages, decoded = work.messages, work.decoded
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
            if alerted:
                now = time.time()
                created = np.fromiter(map(itemgetter(1), map(Message.timestamp, alerted)), dtype=np.float64,
                                      count=len(alerted))
                observe_many(m.latency, np.maximum(now - created / 1000.0, 0.0))
        m.batch_records.observe(len(work.batch))
        m.batch_duration.observe(time.perf_counter() - work.started)
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

    def _on_commit(self, err: KafkaError | None, _partitions: list[TopicPartition]) -> None:
        if err is not None:
            self.metrics.kafka_errors.labels(code=err.name()).inc()
            log.warning("offset commit failed: %s", err.str())

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
        # Called inside consume(): the batch in flight is finished and committed while this member
        # still owns its partitions, so the next owner starts right after it.
        log.info("revoked partitions %s", sorted(p.partition for p in partitions))
        self._finish_in_flight()


@dataclasses.dataclass
class InFlight:
    """A consumed batch between decoding and commit; its scores come from the scorer thread."""

    batch: list[Message]  # as consumed, errors included (for the batch-size histogram)
    messages: list[Message]
    decoded: DecodedBatch
    scores: Future[Scores] | None  # None when no message of the batch was valid
    started: float


def next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """Per partition, the offset after its last message: what a commit of these messages stores."""
    last: dict[tuple[str, int], int] = {}
    # Offsets only grow within a partition, so each (topic, partition)'s last message is its latest.
    for position, key in enumerate(zip(map(Message.topic, messages), map(Message.partition, messages))):
        last[key] = position
    return [TopicPartition(topic, partition, messages[position].offset() + 1)
            for (topic, partition), position in last.items()]


def origin(messages: list[Message]) -> Origin:
    """Topics, partitions and offsets of `messages`, read in C-level passes."""
    return list(map(Message.topic, messages)), list(map(Message.partition, messages)), list(map(Message.offset, messages))


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

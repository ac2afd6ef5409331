"""The detector loop: consume → decode → score → produce → flush → commit.

At-least-once: a batch's offsets are committed only after every alert, verdict and dead letter it
produced is delivered (detector.checkpoint); a failed delivery rewinds the batch.

Under a backlog, batch N scores on a scorer thread while batch N+1 is consumed and decoded: the
compiled model holds no GIL, so both cores work. At most one batch is ever in flight; it is
completed before a rebalance gives its partitions away and before shutdown.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from threadpoolctl import threadpool_limits

from detector.batch import Batch, MessageSources, origin, position
from detector.checkpoint import Checkpoint, TransactionalCheckpoint
from detector.clients import make_consumer, make_producer
from detector.config import EXACTLY_ONCE, DetectorConfig
from detector.decode import decode_batch
from detector.drift import DriftMonitor
from detector.messages import dead_letter, verdict_payloads
from detector.metrics import DetectorMetrics, Output
from detector.reload import LiveModel, ModelReloader, load_live
from detector.status import Counts, StatusLine
from nids_common.kafka import FatalKafkaError, ProduceStalled, Refusals, produce_all
from nids_model.detection import DetectionModel, Features, Scores

log = logging.getLogger("nids.detect")
LOG_EVERY_S = 10.0


class Detector:
    def __init__(self, config: DetectorConfig, live: LiveModel, metrics: DetectorMetrics) -> None:
        self.config, self.live, self.metrics = config, live, metrics
        self.counts = Counts()
        self.running = True
        self._fatal: KafkaError | None = None
        self.refusals = Refusals(
            config.kafka.librdkafka,
            {
                "topic": config.topics.flows,
                "group": config.detector.group_id,
                "transactional id": config.transactional_id,
            },
        )
        self._logged_errors: dict[int, float] = {}
        self._status = StatusLine(config.detector.group_id) if sys.stderr.isatty() else None
        self.consumer = make_consumer(
            config,
            self._on_kafka_error,
            lambda stats: metrics.record_statistics(stats, config.topics.flows),
            self._on_commit,
        )
        self.producer = make_producer(config, self._on_kafka_error)
        exactly_once = config.detector.delivery == EXACTLY_ONCE
        self.checkpoint = (TransactionalCheckpoint if exactly_once else Checkpoint)(
            self.consumer, self.producer, metrics, running=self._healthy, refusals=self.refusals
        )
        metrics.set_model(live.version)
        threads = config.detector.model_threads
        self.reloader = ModelReloader(
            config.detector.model,
            live,
            config.detector.model_poll_s,
            metrics,
            lambda path: load_live(path, threads, config.detector.require_signed_model),
        )
        # One scorer thread: the compiled model walks its trees without the GIL, so a batch scores
        # while the loop reads, decodes and produces around it.
        self._scorer = ThreadPoolExecutor(
            1, thread_name_prefix="nids-scorer", initializer=threadpool_limits, initargs=(threads, "openmp")
        )
        self._in_flight: Batch | None = None
        self._drift = self._drift_monitor(live)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, should_continue: Callable[[], bool] = lambda: True) -> Counts:
        self.consumer.subscribe(
            [self.config.topics.flows], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        try:
            while self.running and should_continue():
                self._take_new_model()  # between batches: the next one scores with it
                batch = self._decode(self._consume())  # consume → decode; scoring starts on the scorer thread
                self._advance(batch)  # the batch before it: score → produce → flush → commit
            self._complete_in_flight()
        finally:
            # After an error the batch in flight is dropped uncommitted (the group reads it again),
            # not completed from the revoke callback that close() triggers.
            self._in_flight = None
            self._close()
        return self.counts

    def _consume(self) -> list[Message]:
        settings = self.config.detector
        try:
            consumed = self.consumer.consume(num_messages=settings.max_records, timeout=settings.max_wait_ms / 1000)
        except KafkaException as exc:
            if self.refusals.note(exc.args[0], "READ"):
                self.refusals.raise_first()
            if not exc.args[0].fatal():
                raise
            self._fatal = exc.args[0]
        self.refusals.raise_first()
        if self._fatal is not None:
            # Nothing is committed after a fatal error; a supervisor's restart resumes from the last commit.
            raise FatalKafkaError(f"fatal Kafka error: {self._fatal.str()}")
        return consumed

    def _decode(self, consumed: list[Message]) -> Batch | None:
        """Decode a consumed batch and hand its valid flows to the scorer thread."""
        started = time.perf_counter()
        # Errors (partition EOF, broker trouble) are rare: one C-level pass tells whether to look.
        messages = [m for m in consumed if not self._is_error(m)] if any(map(Message.error, consumed)) else consumed
        if not messages:
            return None
        decoded = decode_batch(
            list(map(Message.value, messages)), MessageSources(messages), self.config.detector.max_message_bytes
        )
        scoring = None
        if len(decoded.valid):
            features = self.live.model.features(decoded.columns)
            scoring = self._scorer.submit(score_and_watch, self.live.model, features, self._drift)
        return Batch(
            self.live,
            consumed,
            messages,
            decoded,
            scoring,
            started,
            full=len(consumed) >= self.config.detector.max_records,
        )

    def _advance(self, arriving: Batch | None) -> None:
        """Complete the batch in flight; then hold the arriving one in flight if it came from a
        backlog (it scores while the next is read), else complete it now: latency matters then."""
        earlier, self._in_flight = self._in_flight, None
        if earlier is not None and not self._complete(earlier):
            # Rewound to the failed batch's first offsets: the batch read after it comes again.
            self.checkpoint.rewind(earlier.messages + (arriving.messages if arriving else []))
            return
        if arriving is None:
            if self._status:
                self._status.show(self.counts, self.metrics.total_lag())
        elif arriving.full:
            self._in_flight = arriving
        elif not self._complete(arriving):
            self.checkpoint.rewind(arriving.messages)

    def _complete(self, batch: Batch, wait_for_commit: bool = False) -> bool:
        """score → produce → flush → commit. False when an output was not delivered: nothing is
        committed and the caller rewinds."""
        scores = batch.scores()
        self.checkpoint.begin()
        try:
            alert_rows, alerted = self._produce(batch, scores)
        except ProduceStalled as exc:
            log.error("%s; rewinding the batch to process it again", exc)
            self.checkpoint.abort()
            return False
        if not self.checkpoint.commit(batch.messages, wait=wait_for_commit):
            return False
        self._account(batch, scores, alert_rows, alerted)
        return True

    def _produce(self, batch: Batch, scores: Scores | None) -> tuple[np.ndarray, list[Message]]:
        """Dead letters, alerts and (when enabled) verdicts of a batch; returns the alerted rows and messages."""
        topics, report, running = self.config.topics, self.checkpoint.on_delivery, self._healthy
        invalid = batch.decoded.invalid
        if invalid:
            limit = self.config.detector.dead_letter_max_bytes
            letters = [dead_letter(batch.messages[position].value(), error, limit) for position, error in invalid]
            keys = [batch.messages[position].key() for position, _ in invalid]
            produce_all(
                self.producer,
                topics.dead_letter,
                zip(keys, (value for value, _ in letters), strict=True),
                report,
                headers=[headers for _, headers in letters],
                on_refused=lambda index, error: self._refused(Output.DEAD_LETTERS, str(invalid[index][1]), error),
                running=running,
            )
        if scores is None:
            return np.empty(0, dtype=np.intp), []
        alert_rows = np.flatnonzero(scores.is_attack)
        alerted = self._produce_verdicts(topics.alerts, Output.ALERTS, batch, scores, alert_rows)
        if self.config.detector.emit_verdicts:
            every_row = np.arange(len(batch.decoded.valid))
            self._produce_verdicts(topics.verdicts, Output.VERDICTS, batch, scores, every_row)
        return alert_rows, alerted

    def _produce_verdicts(
        self, topic: str, output: str, batch: Batch, scores: Scores, rows: np.ndarray
    ) -> list[Message]:
        """The verdicts of `rows` (positions among the valid records) to `topic`; returns their messages."""
        messages = batch.valid_messages(rows)
        payloads = verdict_payloads(
            rows, batch.decoded.records, scores, batch.live.model.classes, origin(messages), batch.live.version
        )
        produce_all(
            self.producer,
            topic,
            payloads,
            self.checkpoint.on_delivery,
            on_refused=lambda index, error: self._refused(output, _where(messages[index]), error),
            running=self._healthy,
        )
        return messages

    def _refused(self, output: str, record: str, error: KafkaError) -> None:
        """An output the producer refuses outright (no retry can help) is counted, logged and skipped:
        holding the batch back for it would read the same record again and again, and stop detection."""
        self.metrics.refused.labels(output=output).inc()
        log.error("%s of %s not produced, skipped: %s", output, record, error.str())

    def _take_new_model(self) -> None:
        live = self.reloader.take()
        if live is None:
            return
        previous, self.live = self.live, live
        self._drift = self._drift_monitor(live)
        self.metrics.set_model(live.version)
        self.metrics.model_reloads.labels(result="loaded").inc()
        log.info("model %s is live (was %s)", live.version, previous.version)

    def _drift_monitor(self, live: LiveModel) -> DriftMonitor | None:
        if not self.config.detector.drift_metrics:
            return None
        if live.profile is None:
            log.warning("model %s has no reference profile: no drift metrics", live.version)
            return None
        return DriftMonitor(live.profile, self.metrics)

    def _complete_in_flight(self) -> None:
        batch, self._in_flight = self._in_flight, None
        if batch is not None and not self._complete(batch, wait_for_commit=True):
            log.error("batch in flight not committed: this group reads it again")

    def _healthy(self) -> bool:
        """Retries go on only while the detector runs, no fatal error ended its clients and the
        broker refused nothing."""
        return self.running and self._fatal is None and self.refusals.first is None

    def stop(self) -> None:
        self.running = False

    def _close(self) -> None:
        self.reloader.stop()
        try:
            self.checkpoint.close()
        finally:
            self.consumer.close()
            self._scorer.shutdown(cancel_futures=True)
            if self._status:
                self._status.done()
            c = self.counts
            log.info(
                "detector stopped: consumed %d, scored %d, alerts %d, invalid %d",
                c.consumed,
                c.scored,
                c.alerts,
                c.invalid,
            )

    # -- accounting and callbacks ---------------------------------------------------------------
    def _account(self, batch: Batch, scores: Scores | None, alert_rows: np.ndarray, alerted: list[Message]) -> None:
        decoded, c = batch.decoded, self.counts
        c.consumed += len(batch.messages)
        c.scored += len(decoded.valid)
        c.invalid += len(decoded.invalid)
        c.alerts += len(alert_rows)
        self.metrics.record_batch(batch, scores, alert_rows, alerted)
        if self._status:
            self._status.show(c, self.metrics.total_lag())

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        self.metrics.kafka_errors.labels(code=error.name()).inc()
        if not self.refusals.note(error, "READ", message.topic()):
            log.warning("consume error: %s", error.str())
        return True

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        self.checkpoint.on_commit(err, partitions)

    def _on_kafka_error(self, err: KafkaError) -> None:
        self.metrics.kafka_errors.labels(code=err.name()).inc()
        self.refusals.note(err, "use")
        if err.fatal():
            self._fatal = err
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.metrics.broker_up.set(0)
        # librdkafka reconnects by itself; the loop keeps polling and resumes when brokers return.
        # An outage repeats the same error many times a second: the counter has them all, the log
        # one line per error code every LOG_EVERY_S.
        now = time.monotonic()
        if err.fatal() or now - self._logged_errors.get(err.code(), -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged_errors[err.code()] = now
            log.warning("kafka: %s", err.str())

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(p.partition for p in partitions))
        self.metrics.set_partitions(p.partition for p in partitions)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The session expired (the coordinator was out of reach): the partitions may already be
        # another member's, so the batch in flight is dropped uncommitted and read again by their owner.
        log.warning("lost partitions %s; the batch in flight is read again", sorted(p.partition for p in partitions))
        self._in_flight = None

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside consume(): the batch in flight is completed and committed while this member
        # still owns its partitions, so the next owner starts right after it.
        log.info("revoked partitions %s", sorted(p.partition for p in partitions))
        self._complete_in_flight()


def _where(message: Message) -> str:
    topic, partition, offset = position(message)
    return f"{topic}[{partition}]@{offset}"


def score_and_watch(model: DetectionModel, features: Features, drift: DriftMonitor | None) -> Scores:
    """The scorer thread's work for one batch: its scores, then its drift statistics."""
    scores = model.score_features(features)
    if drift is not None:
        drift.observe(features.label, scores.attack_cat)
    return scores

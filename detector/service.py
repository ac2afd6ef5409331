"""The detector loop: consume → decode → score → produce → flush → commit.

The loop takes its clients (detector.cli.build_detector makes them), so it runs the same on the real
broker and on stand-ins in the unit tests. One pass of `run`:

1. Take a new model if the reloader has one ready: the batches consumed from here score with it.
2. Consume up to `max_records` messages (or what arrived within `max_wait_ms`) and decode them; the
   valid flows' feature matrix goes to the scorer thread at once (`_decode`).
3. Advance (`_advance`): commit the batch whose outputs were produced on the pass before, if any,
   then produce the outputs of the batch in flight, if any. If either fails, rewind to the first
   offsets of the oldest batch held: the batches after it are read again too, so none is held.
4. Hold the batch just consumed in flight if it was full (a backlog: it scores while the next is
   consumed), else complete it now (latency matters when the topic is caught up). Under a backlog
   the batch produced in step 3 is committed on the next pass: by the time the next batch is read and
   decoded the broker has acknowledged its outputs, so the flush (or the transaction's commit) no
   longer idles the loop.

Completing a batch: wait for its scores, begin (a transaction in exactly_once), produce its dead
letters, alerts and verdicts (`_produce_outputs`), then commit (`_commit`): flush every output and,
only when all are acknowledged, commit the batch's own offsets (in its transaction in exactly_once).
A delivery that fails commits nothing and the caller rewinds; at-least-once may repeat outputs,
exactly-once never shows them to read_committed readers.

At most one batch is ever in flight, and at most one produced and not yet committed; one batch is
produced at a time, so a transaction never spans two. A revoke commits both while this member still
owns its partitions; lost partitions drop them (the produced one's transaction aborted: their new
owner reads them again); an error drops them uncommitted; shutdown commits them, then flushes and
closes in `finally`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np
from confluent_kafka import Consumer, Message, TopicPartition

from detector.config import DetectorConfig
from detector.decode import decode_batch
from detector.drift import DriftMonitor
from detector.messages import verdict_payloads
from detector.metrics import DetectorMetrics, Output, Totals
from detector.reload import ModelReloader
from detector.status import StatusLine
from detector.values import Batch, LiveModel, MessageSources, Stage, origin, where
from nids_common.checkpoint import Checkpoint
from nids_common.client_health import ClientHealth
from nids_common.dead_letters import dead_letter
from nids_common.kafka import ProduceStalled, produce_all
from nids_common.stages import StageTimes
from nids_model.detection import DetectionModel, Features, Scores

log = logging.getLogger("nids.detect")


class Detector:
    def __init__(
        self,
        config: DetectorConfig,
        live: LiveModel,
        metrics: DetectorMetrics,
        consumer: Consumer,
        checkpoint: Checkpoint,
        health: ClientHealth,
        reloader: ModelReloader,
        scorer: Executor,
    ) -> None:
        """`consumer` and `checkpoint.producer` report to `health`; `scorer` is one thread: the
        compiled model walks its trees without the GIL, so a batch scores while the loop reads,
        decodes and produces around it."""
        self.config, self.live, self.metrics = config, live, metrics
        self.consumer, self.checkpoint, self.health = consumer, checkpoint, health
        self.reloader, self._scorer = reloader, scorer
        self.running = True
        # The checkpoint's retries end when this detector stops, as every other bounded retry does.
        checkpoint.may_retry = self.may_retry
        self._status = StatusLine(config.detector.group_id) if sys.stderr.isatty() else None
        self._in_flight: Batch | None = None
        self._produced: Batch | None = None  # outputs produced, to commit on the next pass
        self.stages = StageTimes()  # the loop's, since the last committed batch
        metrics.set_model(live.version)
        self._drift = self._drift_monitor(live)

    @property
    def totals(self) -> Totals:
        return self.metrics.totals

    # -- the loop -------------------------------------------------------------------------------
    def run(self, should_continue: Callable[[], bool] = lambda: True) -> Totals:
        self.consumer.subscribe(
            [self.config.topics.flows], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        try:
            while self.running and should_continue():
                self._take_new_model()
                batch = self._decode(self._consume())
                self._advance(batch)
            self._complete_in_flight()
        finally:
            # After an error the batches held are dropped uncommitted (the group reads them again),
            # not completed from the revoke callback that close() triggers.
            self._in_flight = self._produced = None
            self._close()
        return self.totals

    def stop(self) -> None:
        """Safe from a signal handler: the current batch finishes, then the loop ends."""
        self.running = False

    def may_retry(self) -> bool:
        """Retries go on only while the detector runs and its clients are sound."""
        return self.running and self.health.ok()

    def _consume(self) -> list[Message]:
        settings = self.config.detector
        with self.stages.timing(Stage.CONSUME):
            return self.health.consume(
                self.consumer, settings.max_records, settings.max_wait_ms / 1000, self.config.topics.flows
            )

    def _decode(self, consumed: list[Message]) -> Batch | None:
        """Decode a consumed batch and hand its valid flows to the scorer thread."""
        started = time.perf_counter()
        messages = self.health.without_errors(consumed)
        if not messages:
            return None
        with self.stages.timing(Stage.DECODE):
            decoded = decode_batch(
                list(map(Message.value, messages)), MessageSources(messages), self.config.detector.max_message_bytes
            )
        scoring = None
        scorer_stages = StageTimes()
        if len(decoded.valid):
            with self.stages.timing(Stage.FEATURES):
                features = self.live.model.features(decoded.columns)
            scoring = self._scorer.submit(score_and_watch, self.live.model, features, self._drift, scorer_stages)
        full = len(consumed) >= self.config.detector.max_records
        return Batch(self.live, consumed, messages, decoded, scoring, started, full, scorer_stages)

    def _advance(self, arriving: Batch | None) -> None:
        """Steps 3 and 4 of the module docstring."""
        produced, self._produced = self._produced, None
        earlier, self._in_flight = self._in_flight, None
        if produced is not None and not self._commit(produced):
            self._rewind([batch for batch in (produced, earlier, arriving) if batch is not None])
            return
        held = [batch for batch in (earlier, arriving) if batch is not None]  # oldest first
        backlog = arriving is not None and arriving.full
        if earlier is not None:
            if not self._produce_outputs(earlier):
                self._rewind(held)
                return
            if backlog:
                self._produced = earlier
            elif not self._commit(earlier):
                self._rewind(held)
                return
        if arriving is None:
            self._show_status()
        elif backlog:
            self._in_flight = arriving
        elif not self._complete(arriving):
            self._rewind([arriving])

    def _complete(self, batch: Batch, handover: bool = False) -> bool:
        """produce → flush → commit. False when an output was not delivered: nothing is committed
        and the caller rewinds."""
        return self._produce_outputs(batch) and self._commit(batch, handover)

    def _produce_outputs(self, batch: Batch) -> bool:
        """Wait for the batch's scores, begin, produce its outputs. False (aborted) when the producer
        stalled: the caller rewinds."""
        with self.stages.timing(Stage.WAIT_FOR_SCORES):
            scores = batch.scores()
        self.stages.merge(batch.scorer_stages.take())
        self.checkpoint.begin()
        try:
            alert_rows, alerted = self._produce(batch, scores)
        except ProduceStalled as exc:
            log.error("%s; rewinding the batch to process it again", exc)
            self.checkpoint.abort()
            return False
        with self.stages.timing(Stage.METRICS):
            batch.produced = batch.outcome(scores, alert_rows, alerted)
        return True

    def _commit(self, batch: Batch, handover: bool = False) -> bool:
        """Commit a batch whose outputs are produced (the checkpoint flushes them first). False when
        one was not delivered: nothing is committed and the caller rewinds."""
        with self.stages.timing(Stage.COMMIT):
            committed = self.checkpoint.commit(batch.messages, handover=handover)
        if not committed:
            return False
        with self.stages.timing(Stage.METRICS):
            if batch.produced is not None:
                self.metrics.record_batch(batch.produced, time.perf_counter() - batch.started)
            self.metrics.record_stages(self.stages.take())
        self._show_status()
        return True

    def _rewind(self, batches: list[Batch]) -> None:
        """Read `batches` (oldest first) again from the first offsets of the oldest."""
        self.checkpoint.rewind([message for batch in batches for message in batch.messages])

    def _complete_in_flight(self) -> None:
        """Commit what is held before the partitions change hands or the loop ends: the produced
        batch, then the one in flight, each synchronously."""
        produced, self._produced = self._produced, None
        batch, self._in_flight = self._in_flight, None
        if produced is not None and not self._commit(produced, handover=True):
            log.error("batch not committed: this group reads it again, and the batch after it")
            return
        if batch is not None and not self._complete(batch, handover=True):
            log.error("batch in flight not committed: this group reads it again")

    # -- produce --------------------------------------------------------------------------------
    def _produce(self, batch: Batch, scores: Scores | None) -> tuple[np.ndarray, list[Message]]:
        """Dead letters, alerts and (when enabled) verdicts of a batch; returns the alerted rows and messages."""
        self._produce_dead_letters(batch)
        if scores is None:
            return np.empty(0, dtype=np.intp), []
        topics = self.config.topics
        alert_rows = np.flatnonzero(scores.is_attack)
        alerted = self._produce_scored(topics.alerts, Output.ALERTS, batch, scores, alert_rows)
        if self.config.detector.emit_verdicts:
            every_row = np.arange(len(batch.decoded.valid))
            self._produce_scored(topics.verdicts, Output.VERDICTS, batch, scores, every_row)
        return alert_rows, alerted

    def _produce_dead_letters(self, batch: Batch) -> None:
        invalid = batch.decoded.invalid
        if not invalid:
            return
        limit = self.config.detector.dead_letter_max_bytes
        letters = [dead_letter(batch.messages[index].value(), error, limit) for index, error in invalid]
        keys = [batch.messages[index].key() for index, _ in invalid]
        with self.stages.timing(Stage.PRODUCE):
            produce_all(
                self.checkpoint.producer,
                self.config.topics.dead_letter,
                zip(keys, (value for value, _ in letters), strict=True),
                self.checkpoint.on_delivery,
                headers=[headers for _, headers in letters],
                on_refused=lambda index, error: self._refused(Output.DEAD_LETTERS, str(invalid[index][1]), error.str()),
                running=self.may_retry,
            )

    def _produce_scored(self, topic: str, output: str, batch: Batch, scores: Scores, rows: np.ndarray) -> list[Message]:
        """Verdicts of `rows` (positions among the valid records) to `topic`: the alerts when `rows`
        are the attacks. Returns their messages."""
        with self.stages.timing(Stage.PAYLOADS):
            messages = batch.valid_messages(rows)
            payloads = verdict_payloads(
                rows, batch.decoded.records, scores, batch.live.model.classes, origin(messages), batch.live.version
            )
        with self.stages.timing(Stage.PRODUCE):
            produce_all(
                self.checkpoint.producer,
                topic,
                payloads,
                self.checkpoint.on_delivery,
                on_refused=lambda index, error: self._refused(output, where(messages[index]), error.str()),
                running=self.may_retry,
            )
        return messages

    def _refused(self, output: str, record: str, reason: str) -> None:
        """An output the producer refuses outright (no retry can help) is counted, logged and skipped:
        holding the batch back for it would read the same record again and again, and stop detection."""
        self.metrics.refused.labels(output=output).inc()
        log.error("%s of %s not produced, skipped: %s", output, record, reason)

    # -- models ---------------------------------------------------------------------------------
    def _take_new_model(self) -> None:
        live = self.reloader.take()
        if live is None:
            return
        previous, self.live = self.live, live
        self._drift = self._drift_monitor(live)
        self.metrics.set_model(live.version)
        log.info("model %s is live (was %s)", live.version, previous.version)

    def _drift_monitor(self, live: LiveModel) -> DriftMonitor | None:
        if not self.config.detector.drift_metrics:
            return None
        if live.profile is None:
            log.warning("model %s has no reference profile: no drift metrics", live.version)
            return None
        return DriftMonitor(live.profile, self.metrics)

    # -- shutdown, status and group callbacks ---------------------------------------------------
    def _close(self) -> None:
        self.reloader.stop()
        try:
            self.checkpoint.close()
        finally:
            self.consumer.close()
            self._scorer.shutdown(cancel_futures=True)
            if self._status:
                self._status.done()
            t = self.totals
            log.info(
                "detector stopped: consumed %d, scored %d, alerts %d, invalid %d",
                t.consumed,
                t.scored,
                t.alerts,
                t.invalid,
            )

    def _show_status(self) -> None:
        if self._status:
            self._status.show(self.totals, self.metrics.total_lag())

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(p.partition for p in partitions))
        self.metrics.assign_partitions(p.partition for p in partitions)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The session expired (the coordinator was out of reach): the partitions may already be
        # another member's, so the batches held are dropped uncommitted (the produced one's
        # transaction aborted) and read again by their owner.
        log.warning("lost partitions %s; the batches held are read again", sorted(p.partition for p in partitions))
        self._in_flight = None
        produced, self._produced = self._produced, None
        if produced is not None:
            self.checkpoint.discard()
        self.metrics.revoke_partitions(p.partition for p in partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside consume(): the batches held are completed and committed while this member
        # still owns its partitions, so the next owner starts right after them.
        log.info("revoked partitions %s", sorted(p.partition for p in partitions))
        self._complete_in_flight()
        self.metrics.revoke_partitions(p.partition for p in partitions)


def score_and_watch(
    model: DetectionModel, features: Features, drift: DriftMonitor | None, stages: StageTimes
) -> Scores:
    """The scorer thread's work for one batch: its scores, then its drift statistics; their seconds
    go to `stages` (the batch's own, read by the loop once this returned)."""
    scores = model.score_features(features, stages)
    if drift is not None:
        with stages.timing(Stage.DRIFT):
            drift.observe(features.label, scores.attack_cat)
    return scores

"""The incidents loop: consume → re-key → track → produce → commit, on the project's checkpoint.

One consumer reads two topics: the alert topic (keyed by flow_id) and this group's repartition topic
(alerts keyed by incident key: every alert of one key reaches one partition, so one member). One pass
of `run`:

1. Consume a batch from both topics.
2. Re-key (`_rekey`): each alert of the alert topic is decoded (a message that is not an alert goes to
   the dead-letter topic with its reason) and goes to the repartition partition of its incident key,
   in runs (incidents.repartition).
3. Track (`_track`): the repartition partition's alerts go, in order, to that partition's incidents
   (incidents.tracker.PartitionIncidents); then incidents idle by stream time close, and, once a
   second, every partition that saw no alert for idle_close_s of processing time closes its own.
4. Produce the incident records (the compacted incidents topic, keyed by incident_id) and each
   changed key's state (the compacted changelog, same partition as the repartition topic: its state
   or a tombstone).
5. Commit: the outputs and both topics' offsets, in one transaction in exactly_once.

A partition's state is restored from its changelog when the partition is assigned, before any of
its alerts is processed. A batch whose outputs fail is rewound, and the state of every partition is
restored again from the changelog: in exactly_once that drops exactly what the aborted transaction
had changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import cast

import msgspec
from confluent_kafka import Consumer, Message, TopicPartition

from incidents.changelog import ChangelogReader
from incidents.config import IncidentsConfig
from incidents.keys import key_function
from incidents.metrics import IncidentMetrics
from incidents.repartition import decode_run, encode_runs, partition_for
from incidents.suppression import Suppressor
from incidents.tracker import Changes, PartitionIncidents
from nids_common.checkpoint import Checkpoint
from nids_common.client_health import ClientHealth
from nids_common.contract import AlertSummary, Reason, alert_summary_decoder
from nids_common.dead_letters import InvalidRecord, classify_invalid, classify_unparsable, dead_letter
from nids_common.kafka import ProduceStalled, produce_all

log = logging.getLogger("nids.incidents")
QUIET_CHECK_S = 1.0
_incident_encoder = msgspec.json.Encoder()


class IncidentService:
    def __init__(
        self,
        config: IncidentsConfig,
        metrics: IncidentMetrics,
        consumer: Consumer,
        checkpoint: Checkpoint,
        health: ClientHealth,
        changelog: ChangelogReader,
        repartition_partitions: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config, self.metrics = config, metrics
        self.consumer, self.checkpoint, self.health, self.changelog = consumer, checkpoint, health, changelog
        self.clock = clock
        self.repartition_partitions = repartition_partitions
        self.running = True
        checkpoint.may_retry = self.may_retry
        settings = config.incidents
        self.suppressor = Suppressor(settings.suppress)
        self._exported_suppressed: dict[str, int] = {}
        self._key = key_function(settings.key)
        self.partitions: dict[int, PartitionIncidents] = {}
        self._next_quiet_check = 0.0
        self._max_bytes = config.incidents.max_alert_bytes

    # -- the loop -------------------------------------------------------------------------------
    def run(self, should_continue: Callable[[], bool] = lambda: True) -> None:
        topics = [self.config.topics.alerts, self.config.repartition_topic]
        self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)
        try:
            while self.running and should_continue():
                self._step(self._consume())
        finally:
            self._close()

    def stop(self) -> None:
        """Safe from a signal handler: the current batch finishes, then the loop ends."""
        self.running = False

    def may_retry(self) -> bool:
        return self.running and self.health.ok()

    def _step(self, consumed: list[Message]) -> None:
        started = time.perf_counter()
        messages = self.health.without_errors(consumed)
        now = self.clock()
        alerts_topic = self.config.topics.alerts
        alerts: list[Message] = []
        rekeyed: list[Message] = []
        for message in messages:
            (alerts if message.topic() == alerts_topic else rekeyed).append(message)
        quiet_due = now >= self._next_quiet_check
        if not messages and not quiet_due:
            return
        changes, tracked, unreadable = self._track(rekeyed, now, quiet_due)
        if not messages and not changes:
            return
        self.checkpoint.begin()
        try:
            self._rekey(alerts)
            self._dead_letter(unreadable)
            self._produce_changes(changes)
        except ProduceStalled as exc:
            log.error("%s; rewinding the batch to process it again", exc)
            self.checkpoint.abort()
            self._rewind(messages)
            return
        if not self.checkpoint.commit(messages):
            self._rewind(messages)
            return
        self.metrics.alerts_read.inc(len(alerts))
        self.metrics.alerts_tracked.inc(tracked)
        for found in changes.values():
            self.metrics.record_incidents(found.incidents)
        self.metrics.record_suppressed(self.suppressor.counts, self._exported_suppressed)
        self.metrics.open.set(sum(p.open_incidents for p in self.partitions.values()))
        if messages:
            self.metrics.batch_duration.observe(time.perf_counter() - started)

    def _consume(self) -> list[Message]:
        settings = self.config.incidents
        return self.health.consume(
            self.consumer, settings.max_records, settings.max_wait_ms / 1000, self.config.topics.alerts
        )

    # -- re-key ---------------------------------------------------------------------------------
    def _rekey(self, messages: Sequence[Message]) -> None:
        """Alerts to the repartition partition of their incident key; what is not an alert, dead-lettered."""
        if not messages:
            return
        runs: dict[int, list[AlertSummary]] = {}
        invalid: list[tuple[Message, InvalidRecord]] = []
        key, partitions = self._key, self.repartition_partitions
        for message in messages:
            value = message.value()
            try:
                if not value:
                    raise _NotAlert("empty", None, "no value")
                if len(value) > self._max_bytes:
                    raise _NotAlert("too_large", None, f"{len(value)} bytes > limit {self._max_bytes}")
                alert = alert_summary_decoder.decode(value)
            except _NotAlert as exc:
                invalid.append((message, _invalid(message, exc.args)))
                continue
            except msgspec.ValidationError as exc:
                invalid.append((message, _invalid(message, classify_invalid(str(exc)))))
                continue
            except msgspec.DecodeError:
                invalid.append((message, _invalid(message, classify_unparsable(cast(bytes, value)))))
                continue
            runs.setdefault(partition_for(key(alert), partitions), []).append(alert)
        for partition, alerts in runs.items():
            produce_all(
                self.checkpoint.producer,
                self.config.repartition_topic,
                [(None, run) for run in encode_runs(alerts)],
                self.checkpoint.on_delivery,
                running=self.may_retry,
                partition=partition,
            )
        self._dead_letter(invalid)

    def _dead_letter(self, invalid: list[tuple[Message, InvalidRecord]]) -> None:
        if not invalid:
            return
        letters = [dead_letter(message.value(), error, self._max_bytes) for message, error in invalid]
        produce_all(
            self.checkpoint.producer,
            self.config.topics.dead_letter,
            zip((message.key() for message, _ in invalid), (value for value, _ in letters), strict=True),
            self.checkpoint.on_delivery,
            headers=[headers for _, headers in letters],
            running=self.may_retry,
        )
        for _, error in invalid:
            self.metrics.invalid.labels(reason=error.reason).inc()
            log.warning("dead-lettered %s", error)

    # -- track ----------------------------------------------------------------------------------
    def _track(
        self, messages: Sequence[Message], now: float, quiet_due: bool
    ) -> tuple[dict[int, Changes], int, list[tuple[Message, InvalidRecord]]]:
        """Each partition's alerts to its incidents, then the closes by stream and processing time.
        Returns the changes per partition, how many alerts were tracked, and the messages that are
        not runs of alerts (only this group writes the topic: a foreign writer's, to dead-letter)."""
        by_partition: dict[int, list[AlertSummary]] = {}
        unreadable: list[tuple[Message, InvalidRecord]] = []
        tracked = 0
        for message in messages:
            try:
                alerts = decode_run(cast(bytes, message.value()))
            except msgspec.ValidationError as exc:
                unreadable.append((message, _invalid(message, classify_invalid(str(exc)))))
                continue
            except msgspec.DecodeError as exc:
                problem = (Reason.NOT_OBJECT, None, f"not a run of alerts: {exc}")
                unreadable.append((message, _invalid(message, problem)))
                continue
            by_partition.setdefault(cast(int, message.partition()), []).extend(alerts)
            tracked += len(alerts)
        changes: dict[int, Changes] = {}
        for partition, alerts in by_partition.items():
            incidents = self.partitions.get(partition)
            if incidents is None:  # assigned without a restore: cannot happen, as the callbacks run first
                raise RuntimeError(
                    f"{self.config.repartition_topic}[{partition}] processed before its state was restored"
                )
            found = incidents.add_batch(alerts, now)
            found.extend(incidents.expire())
            changes[partition] = found
        if quiet_due:
            self._next_quiet_check = now + QUIET_CHECK_S
            for partition, incidents in self.partitions.items():
                closed = incidents.close_quiet(now)
                if closed.incidents or closed.changed_keys:
                    changes.setdefault(partition, Changes()).extend(closed)
        return changes, tracked, unreadable

    def _produce_changes(self, changes: dict[int, Changes]) -> None:
        """Incident records keyed by incident_id; each changed key's state to the changelog partition
        of its incidents."""
        changelog = self.config.changelog_topic
        for partition, found in changes.items():
            if found.incidents:
                produce_all(
                    self.checkpoint.producer,
                    self.config.topics.incidents,
                    [(incident.incident_id, _incident_encoder.encode(incident)) for incident in found.incidents],
                    self.checkpoint.on_delivery,
                    running=self.may_retry,
                )
            produce_all(
                self.checkpoint.producer,
                changelog,
                self.partitions[partition].changelog_records(found.changed_keys),
                self.checkpoint.on_delivery,
                running=self.may_retry,
                partition=partition,
            )

    # -- state ----------------------------------------------------------------------------------
    def _restore(self, partitions: Sequence[int]) -> None:
        """Each of `partitions`' incidents as its changelog has them, the partitions read side by side."""
        started = time.perf_counter()
        found = self.changelog.read(partitions)
        seconds = time.perf_counter() - started
        self.metrics.restore_seconds.observe(seconds)
        for partition, records in found.items():
            restored = PartitionIncidents.restore(records, self.config.incidents, self.clock(), self.suppressor)
            self.partitions[partition] = restored
            self.metrics.restored_keys.inc(restored.open_incidents)
            log.info(
                "%s[%d]: %d open incidents restored from %d changelog records in %.2f s",
                self.config.repartition_topic,
                partition,
                restored.open_incidents,
                len(records),
                seconds,
            )

    def _rewind(self, messages: Sequence[Message]) -> None:
        """The batch is read again, onto state as the changelog has it (what the failed batch wrote
        was aborted, or is at-least-once's repeat)."""
        self.checkpoint.rewind(messages)
        self._restore(list(self.partitions))

    def _close(self) -> None:
        try:
            self.checkpoint.close()
        finally:
            self.consumer.close()
            self.changelog.close()
            log.info("nids-incidents stopped")

    # -- group callbacks --------------------------------------------------------------------------
    def _owned(self, partitions: list[TopicPartition]) -> list[int]:
        return sorted(p.partition for p in partitions if p.topic == self.config.repartition_topic)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        owned = self._owned(partitions)
        log.info("assigned repartition partitions %s", owned)
        if owned:
            self._restore(owned)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every batch is committed before the next consume(): nothing is in flight to hand over.
        for partition in self._owned(partitions):
            self.partitions.pop(partition, None)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoke(consumer, partitions)


class _NotAlert(Exception):
    """(reason, field, detail) of a message rejected before decoding."""


def _invalid(message: Message, problem: tuple[str, str | None, str]) -> InvalidRecord:
    return InvalidRecord(
        *problem, cast(str, message.topic()), cast(int, message.partition()), cast(int, message.offset())
    )

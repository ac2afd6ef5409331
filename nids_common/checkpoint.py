"""Offsets, rewind and commit of a stream service's batches, in one object (after Quix Streams'
Checkpoint); the detector and nids-incidents both run on it.

at_least_once (`Checkpoint`): a batch's offsets are committed only after every output it produced
(alerts, verdicts, dead letters, incidents, state) is acknowledged by the broker. A failed delivery rewinds the
consumer to the batch's first offsets, so its flows are processed again and none goes unscored; a
crash between the outputs and the commit repeats them.

exactly_once (`TransactionalCheckpoint`): a batch's outputs and its input offsets are one Kafka
transaction (KIP-98, KIP-447), as in librdkafka's examples/transactions.c. Readers with
isolation.level=read_committed see each output once: an aborted or crashed batch's outputs never.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Final, Literal, Protocol, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import Counter, Gauge

from nids_common.errors import EXIT_FAILURE, NidsError
from nids_common.kafka import Refusals

log = logging.getLogger("nids.checkpoint")

# The two delivery modes a stream service runs in: `Checkpoint` and `TransactionalCheckpoint`.
Delivery = Literal["at_least_once", "exactly_once"]
AT_LEAST_ONCE: Final = "at_least_once"
EXACTLY_ONCE: Final = "exactly_once"

FLUSH_TIMEOUT_S = 30.0
TRANSACTION_TIMEOUT_S = 10.0
TRANSACTION_ATTEMPTS = 3
# librdkafka can block in a transaction call long past its timeout (send_offsets_to_transaction while
# the group coordinator is away: librdkafka issues #5456 and #5511). A call still running this long
# after its own timeout ends the process: nothing of the open transaction is committed, and the
# restart that follows aborts it and resumes from the last committed batch. librdkafka returns within
# milliseconds of its timeout when it returns at all (the watchdog looks every WATCH_TICK_S): each second
# more only lengthens the stall a coordinator's crash costs.
STUCK_GRACE_S = 2.0
WATCH_TICK_S = 0.5
# A transaction call that takes this long is waiting on the cluster (a broker or coordinator away,
# writes refused for want of in-sync replicas): the service is told, as of a failed call, before
# the call's own timeout, which a stuck call may never reach.
SLOW_CALL_S = 2.0
# How often a fenced or failed transactional producer is replaced in-process before the service
# stops instead. A broker failover costs one (nids-incidents, whose transactions time out at 6 s,
# may need one per node of a rolling restart); two live instances sharing a transactional id fence
# each other every few seconds and reach the bound within a minute.
MAX_RENEWALS = 10
RENEWAL_WINDOW_S = 600.0


def exit_stuck(operation: str, seconds: float) -> None:
    """The default end of a stuck transaction call: a fatal error, the process exits non-zero."""
    log.critical(
        "%s did not return within %.0f s (a known librdkafka hang); exiting without committing", operation, seconds
    )
    logging.shutdown()
    os._exit(EXIT_FAILURE)


class ClientMetrics(Protocol):
    """The Kafka-client counters every service's metrics declare (`nids_delivery_failures_total`,
    `nids_kafka_errors_total{code}`, `nids_broker_up`)."""

    @property
    def delivery_failures(self) -> Counter: ...

    @property
    def kafka_errors(self) -> Counter: ...

    @property
    def broker_up(self) -> Gauge: ...

    @property
    def producer_renewals(self) -> Counter: ...


class WriteWatcher(Protocol):
    """Told of every failed write and every committed batch (nids_common.replicas.WriteAvailability
    asks the cluster why writes fail)."""

    def on_failed_write(self) -> None: ...

    def on_written(self) -> None: ...

    def close(self) -> None: ...


@dataclasses.dataclass
class _Guarded:
    name: str
    started: float
    seconds: float
    said_slow: bool = False


class Watchdog:
    """Calls `on_stuck(name, seconds)` when a guarded call runs past its deadline, and `on_slow()`
    once per call that runs longer than `slow_after_s`; one daemon thread, until `close()`."""

    def __init__(
        self,
        on_stuck: Callable[[str, float], None],
        on_slow: Callable[[], None] = lambda: None,
        slow_after_s: float = SLOW_CALL_S,
    ) -> None:
        self.on_stuck, self.on_slow, self.slow_after_s = on_stuck, on_slow, slow_after_s
        self._guarded: _Guarded | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="nids-txn-watchdog", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop watching: the thread ends within its next tick and lets go of the callbacks (and
        whatever they hold: a checkpoint and its producer)."""
        self._closed.set()
        if threading.current_thread() is not self._thread:  # a callback may close it from the thread
            self._thread.join(WATCH_TICK_S * 4)

    @contextlib.contextmanager
    def guard(self, name: str, seconds: float) -> Iterator[None]:
        self._guarded = _Guarded(name, time.monotonic(), seconds)
        try:
            yield
        finally:
            self._guarded = None

    def _watch(self) -> None:
        while not self._closed.wait(WATCH_TICK_S):
            guarded = self._guarded
            if guarded is None:
                continue
            running = time.monotonic() - guarded.started
            if not guarded.said_slow and running > self.slow_after_s:
                guarded.said_slow = True
                self.on_slow()
            if running > guarded.seconds:
                self.on_stuck(guarded.name, guarded.seconds)
                self._guarded = None


class Checkpoint:
    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        metrics: ClientMetrics,
        timeout: float = FLUSH_TIMEOUT_S,
        may_retry: Callable[[], bool] = lambda: True,
        refusals: Refusals | None = None,
    ) -> None:
        """`timeout`: seconds a flush (or a transaction call) may take; `may_retry`: whether a
        failed call is worth another try (false once the service stops or its clients broke)."""
        self.consumer, self.producer, self.metrics = consumer, producer, metrics
        self.timeout, self.may_retry = timeout, may_retry
        self.refusals = refusals
        # Told of every failed delivery, failed or slow transaction call, and committed batch.
        self.watcher: WriteWatcher | None = None
        self._failed_deliveries = 0

    def begin(self) -> None:
        """A batch's outputs are about to be produced: failures count from here."""
        self._failed_deliveries = 0

    def abort(self) -> None:
        """The batch's outputs will not all be produced; it will be rewound. Those already produced
        may still be delivered: at-least-once repeats them."""
        self._failed_write()
        self.discard()

    def discard(self) -> None:
        """The outputs produced since begin() will not be committed, through no failure of theirs (the
        partitions were lost): exactly_once aborts their transaction; at-least-once has nothing to undo."""

    def commit(self, messages: Sequence[Message], *, handover: bool = False) -> bool:
        """The batch committed (`_commit`), and the watcher told whether it was."""
        committed = self._commit(messages, handover=handover)
        if not committed:
            self._failed_write()
        elif self.watcher is not None:
            self.watcher.on_written()
        return committed

    def _failed_write(self) -> None:
        if self.watcher is not None:
            self.watcher.on_failed_write()

    def _commit(self, messages: Sequence[Message], *, handover: bool) -> bool:
        """Flush the batch's outputs, then commit its offsets. False, committing nothing, if any output
        was not acknowledged: the caller rewinds.

        The offsets are the batch's own, never the consumer's position(): with a batch in flight the
        consumer has already read past this one. Asynchronous, unless this is the last commit before
        the partitions change hands (`handover`: a revoke or shutdown), when the next owner must
        start after it: the outputs are already acknowledged, and waiting for the coordinator would
        only idle the loop; a failed commit is logged and counted, and the next batch's commit
        covers the same partitions again.
        """
        remaining = self.producer.flush(self.timeout)
        failed = remaining + self._failed_deliveries
        if failed:
            self.metrics.delivery_failures.inc(failed)
            log.error("%d output message(s) not delivered; rewinding the batch to process it again", failed)
            return False
        offsets = next_offsets(messages)
        if not offsets:  # outputs of processing time alone (a window closed while nothing came)
            return True
        if handover:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        else:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        return True

    def rewind(self, messages: Sequence[Message]) -> None:
        """Seek each partition back to the first of `messages`: they are consumed again."""
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            first.setdefault((cast(str, message.topic()), cast(int, message.partition())), cast(int, message.offset()))
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))

    def on_delivery(self, err: KafkaError | None, message: Message) -> None:
        if err is not None:
            self._failed_deliveries += 1
            self._failed_write()
            refused = self.refusals is not None and self.refusals.note(err, "WRITE", message.topic())
            # The first failure of a batch says why; the batch's count follows when it is rewound
            # (a broker outage fails thousands of messages at once, for one reason).
            if not refused and self._failed_deliveries == 1:
                log.warning("delivery failed: %s (%s [%s])", err.str(), message.topic(), message.partition())

    def close(self) -> None:
        """Deliver what is still queued; a batch whose outputs are lost here was never committed."""
        if self.watcher is not None:
            self.watcher.close()
        try:
            remaining = self.producer.flush(self.timeout)
        except KafkaException as exc:  # a producer in a fatal state delivers nothing more
            log.error("output undelivered at shutdown (%s); its batch was not committed", exc.args[0].str())
            return
        if remaining:
            log.error("%d message(s) undelivered at shutdown; their batch was not committed", remaining)


class TransactionFailed(NidsError):
    """A transaction error no abort can recover from (fenced by a newer instance with the same
    transactional.id, or fatal): the detector stops without committing."""


class TransactionalCheckpoint(Checkpoint):
    """exactly_once: begin → outputs → the batch's offsets → commit, as one transaction.

    Errors as librdkafka's transactions example treats them: retriable → the same call again
    (bounded); abortable → abort, and the caller rewinds to the batch's first offsets, which are the
    committed ones; fatal, or fenced → with `renew`, a new producer under the same transactional id
    replaces it (at most MAX_RENEWALS in RENEWAL_WINDOW_S) and the caller rewinds; else, or past
    that, TransactionFailed: the service stops.

    Fenced is what a broker's failover most often brings: a transaction held open past its timeout
    while partition leaders or the coordinator moved is aborted by the broker, which bumps the
    producer's epoch, and librdkafka then calls the producer fenced, as if a newer instance had
    started. A new producer (init_transactions) takes the epoch back; an aborted transaction is all
    that was lost, and the rewind does it again. A second live instance with the same id would be
    fenced in turn and renew too: the bound stops that, and such a deployment is wrong anyway (one
    instance id per member).
    """

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        metrics: ClientMetrics,
        timeout: float = TRANSACTION_TIMEOUT_S,
        may_retry: Callable[[], bool] = lambda: True,
        refusals: Refusals | None = None,
        on_stuck: Callable[[str, float], None] = exit_stuck,
        renew: Callable[[], Producer] | None = None,
    ) -> None:
        super().__init__(consumer, producer, metrics, timeout, may_retry, refusals)
        self._watchdog = Watchdog(on_stuck, on_slow=self._failed_write)
        self._renew = renew
        self._renewed_at: collections.deque[float] = collections.deque()
        try:
            # Fences any earlier incarnation with this transactional.id and aborts its open transaction.
            self._settle(producer.init_transactions, timeout)
        except BaseException:
            self._watchdog.close()  # nothing else will: the caller gets no checkpoint to close
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._watchdog.close()

    def begin(self) -> None:
        super().begin()
        try:
            self._settle(self.producer.begin_transaction)
        except TransactionFailed as failure:
            self._renew_or_raise(failure)
            self._settle(self.producer.begin_transaction)

    def discard(self) -> None:
        try:
            self._settle(self.producer.abort_transaction, self.timeout)
        except TransactionFailed as exc:
            self._renew_or_raise(exc)

    def _renew_or_raise(self, failure: TransactionFailed) -> None:
        """Replace a fenced or failed producer with a new one under the same transactional id, or
        raise `failure` when there is no `renew` or it renewed MAX_RENEWALS times in the window."""
        now = time.monotonic()
        while self._renewed_at and now - self._renewed_at[0] > RENEWAL_WINDOW_S:
            self._renewed_at.popleft()
        refused = self.refusals is not None and self.refusals.first is not None
        if self._renew is None or refused or not self.may_retry() or len(self._renewed_at) >= MAX_RENEWALS:
            raise failure
        self._renewed_at.append(now)
        log.warning(
            "%s; a new producer with the same transactional id takes over (%d of %d in %.0f s), and the batch is "
            "read again",
            failure,
            len(self._renewed_at),
            MAX_RENEWALS,
            RENEWAL_WINDOW_S,
        )
        self.metrics.producer_renewals.inc()
        self.producer = self._renew()
        self._failed_deliveries = 0
        self._settle(self.producer.init_transactions, self.timeout)

    def _commit(self, messages: Sequence[Message], *, handover: bool) -> bool:
        """Add the batch's offsets to its transaction and commit it. False, after aborting it, when
        the transaction must be aborted: the caller rewinds.

        A committed transaction has stored the offsets, so a `handover` needs nothing more."""
        if self._failed_deliveries:
            self.metrics.delivery_failures.inc(self._failed_deliveries)
            log.error("%d output message(s) not delivered; aborting the batch's transaction", self._failed_deliveries)
            self.abort()
            return False
        try:
            offsets = next_offsets(messages)
            if offsets:
                self._retrying(
                    self.producer.send_offsets_to_transaction,
                    offsets,
                    self.consumer.consumer_group_metadata(),
                    self.timeout,
                )
            self._retrying(self.producer.commit_transaction, self.timeout)
        except TransactionFailed as failure:
            self._renew_or_raise(failure)
            return False
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not error.txn_requires_abort():
                self._renew_or_raise(TransactionFailed(f"transaction not committed: {error.str()}"))
                return False
            self.metrics.kafka_errors.labels(code=error.name()).inc()
            # commit_transaction flushes: deliveries that fail there are reported during the call.
            self.metrics.delivery_failures.inc(self._failed_deliveries)
            log.error("transaction aborted (%s); rewinding the batch to process it again", error.str())
            self.abort()
            return False
        return True

    def _settle(self, operation: Callable[..., None], *args: object) -> None:
        """`operation` with retries; any error left is one the detector cannot go on from."""
        try:
            self._retrying(operation, *args)
        except KafkaException as exc:
            if self.refusals is not None and self.refusals.note(exc.args[0], "WRITE"):
                self.refusals.raise_first()
            raise TransactionFailed(f"{operation.__name__}: {exc.args[0].str()}") from None

    def _retrying(self, operation: Callable[..., None], *args: object) -> None:
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                with self._watchdog.guard(operation.__name__, self.timeout + STUCK_GRACE_S):
                    operation(*args)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                self._failed_write()
                if self.refusals is not None and self.refusals.note(error, "WRITE"):
                    self.refusals.raise_first()
                log.warning("%s failed after %.1f s: %s", operation.__name__, time.monotonic() - started, error.str())
                if error.fatal():
                    raise TransactionFailed(f"{operation.__name__}: {error.str()}") from None
                if not error.retriable() or attempt == TRANSACTION_ATTEMPTS or not self.may_retry():
                    raise
                log.warning(
                    "%s: %s; retrying (%d of %d)", operation.__name__, error.str(), attempt, TRANSACTION_ATTEMPTS
                )


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """Per partition, the offset after its last message: what a commit of these messages stores."""
    # Offsets only grow within a partition, so each (topic, partition)'s last message is its latest:
    # later positions overwrite earlier ones.
    topics = cast(list[str], list(map(Message.topic, messages)))
    partitions = cast(list[int], list(map(Message.partition, messages)))
    last = dict(zip(zip(topics, partitions, strict=True), range(len(messages))))
    return [
        TopicPartition(topic, partition, cast(int, messages[index].offset()) + 1)
        for (topic, partition), index in last.items()
    ]


def make_checkpoint(
    delivery: Delivery,
    consumer: Consumer,
    producer: Producer,
    metrics: ClientMetrics,
    refusals: Refusals,
    renew: Callable[[], Producer] | None = None,
) -> Checkpoint:
    """The checkpoint of `delivery`: one transaction per batch in exactly_once (the producer is
    transactional, replaced by `renew()` when fenced), else outputs flushed before the offsets are
    committed."""
    if delivery == EXACTLY_ONCE:
        return TransactionalCheckpoint(consumer, producer, metrics, refusals=refusals, renew=renew)
    return Checkpoint(consumer, producer, metrics, refusals=refusals)

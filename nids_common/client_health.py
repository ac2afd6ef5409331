"""What a service's Kafka clients report about themselves: errors, refusals, a fatal error.

The clients call in from librdkafka's callbacks (error_cb, on_commit, a consumed error message); the
loop and the checkpoint ask whether retrying still makes sense and stop on a refusal or a fatal error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from nids_common.checkpoint import ClientMetrics
from nids_common.kafka import FatalKafkaError, Refusals

log = logging.getLogger("nids.kafka")
# An outage repeats the same error many times a second: the counter has them all, the log one line
# per error code this often.
LOG_EVERY_S = 10.0


class ClientHealth:
    def __init__(self, librdkafka: Mapping[str, Any], resources: Mapping[str, str], metrics: ClientMetrics) -> None:
        """`librdkafka`: the clients' settings (who they authenticate as); `resources`: what a
        refusal names (its topic, group, transactional id)."""
        self.metrics = metrics
        self.refusals = Refusals(librdkafka, resources)
        self.fatal: KafkaError | None = None
        # exactly_once with a checkpoint that renews its producer: a fatal producer error (fenced)
        # is the checkpoint's to handle at its next transaction call, not the end of the service.
        self.producer_renewable = False
        self._logged: dict[int, float] = {}

    def ok(self) -> bool:
        """No fatal error ended the clients and the broker refused nothing: retrying can help."""
        return self.fatal is None and self.refusals.first is None

    def raise_if_broken(self) -> None:
        """Stop the service on a refusal (one line naming who was refused what) or a fatal error.
        Nothing is committed after either; a supervisor's restart resumes from the last commit."""
        self.refusals.raise_first()
        if self.fatal is not None:
            raise FatalKafkaError(f"fatal Kafka error: {self.fatal.str()}")

    def on_error(self, err: KafkaError) -> None:
        """librdkafka's error_cb, for the consumer and the producer alike."""
        self.metrics.kafka_errors.labels(code=err.name()).inc()
        self.refusals.note(err, "use")
        if err.fatal():
            self.fatal = err
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.metrics.broker_up.set(0)
        # librdkafka reconnects by itself; the loop keeps polling and resumes when brokers return.
        now = time.monotonic()
        if err.fatal() or now - self._logged.get(err.code(), -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[err.code()] = now
            log.warning("kafka: %s", err.str())

    def on_producer_error(self, err: KafkaError) -> None:
        """The producer's error_cb."""
        if err.fatal() and self.producer_renewable:
            self.metrics.kafka_errors.labels(code=err.name()).inc()
            log.warning("kafka producer: %s", err.str())
            return
        self.on_error(err)

    def on_consume_error(self, error: KafkaError, topic: str | None) -> None:
        """consume() raised `error`, or returned a message carrying it."""
        self.metrics.kafka_errors.labels(code=error.name()).inc()
        if error.fatal():
            self.fatal = error
        if not self.refusals.note(error, "READ", topic):
            log.warning("consume error: %s", error.str())

    def on_commit(self, err: KafkaError | None, _partitions: list[TopicPartition]) -> None:
        """An asynchronous offset commit's result: a failed one is covered by the next batch's commit."""
        if err is not None:
            self.metrics.kafka_errors.labels(code=err.name()).inc()
            log.warning("offset commit failed: %s", err.str())

    def consume(self, consumer: Consumer, max_records: int, timeout_s: float, topic: str) -> list[Message]:
        """A batch from `consumer` (error messages included); stops the service on a refusal or a
        fatal error, whether consume() raised it or a callback reported it."""
        try:
            consumed = consumer.consume(num_messages=max_records, timeout=timeout_s)
        except KafkaException as exc:
            self.on_consume_error(exc.args[0], topic)
            self.raise_if_broken()
            raise
        self.raise_if_broken()
        return consumed

    def without_errors(self, consumed: list[Message]) -> list[Message]:
        """The messages of `consumed` that carry no error; the errors are noted."""
        # Errors (partition EOF, broker trouble) are rare: one C-level pass tells whether to look.
        if not any(map(Message.error, consumed)):
            return consumed
        return [message for message in consumed if not self.is_error(message)]

    def is_error(self, message: Message) -> bool:
        """True for a consumed message that carries an error (partition EOF, broker trouble), noted."""
        error = message.error()
        if error is None:
            return False
        self.on_consume_error(error, message.topic())
        return True

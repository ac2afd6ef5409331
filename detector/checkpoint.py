"""Offsets, rewind and commit of the detector's batches, in one object (after Quix Streams' Checkpoint).

The rule a commit keeps: a batch's offsets are committed only after every output it produced
(alerts, verdicts, dead letters) is acknowledged by the broker. A failed delivery rewinds the
consumer to the batch's first offsets, so its flows are processed again and none goes unscored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from detector.batch import origin, position
from detector.metrics import DetectorMetrics

log = logging.getLogger("nids.detect")

FLUSH_TIMEOUT_S = 30.0


class Checkpoint:
    def __init__(
        self, consumer: Consumer, producer: Producer, metrics: DetectorMetrics, flush_timeout: float = FLUSH_TIMEOUT_S
    ) -> None:
        self.consumer, self.producer, self.metrics = consumer, producer, metrics
        self.flush_timeout = flush_timeout
        self._failed_deliveries = 0

    def begin(self) -> None:
        """A batch's outputs are about to be produced: failures count from here."""
        self._failed_deliveries = 0

    def commit(self, messages: Sequence[Message], *, wait: bool = False) -> bool:
        """Flush the batch's outputs, then commit its offsets. False, committing nothing, if any output
        was not acknowledged: the caller rewinds.

        The offsets are the batch's own, never the consumer's position(): with a batch in flight the
        consumer has already read past this one. Asynchronous unless `wait`: the outputs are already
        acknowledged, and waiting for the coordinator would only idle the loop; a failed commit is
        logged and counted, and the next batch's commit covers the same partitions again.
        """
        remaining = self.producer.flush(self.flush_timeout)
        failed = remaining + self._failed_deliveries
        if failed:
            self.metrics.delivery_failures.inc(failed)
            log.error("%d output message(s) not delivered; rewinding the batch to process it again", failed)
            return False
        if wait:
            self.consumer.commit(offsets=next_offsets(messages), asynchronous=False)
        else:
            self.consumer.commit(offsets=next_offsets(messages), asynchronous=True)
        return True

    def rewind(self, messages: Sequence[Message]) -> None:
        """Seek each partition back to the first of `messages`: they are consumed again."""
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            topic, partition, offset = position(message)
            first.setdefault((topic, partition), offset)
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))

    def on_delivery(self, err: KafkaError | None, _message: Message) -> None:
        if err is not None:
            self._failed_deliveries += 1
            log.warning("delivery failed: %s", err.str())

    def on_commit(self, err: KafkaError | None, _partitions: list[TopicPartition]) -> None:
        if err is not None:
            self.metrics.kafka_errors.labels(code=err.name()).inc()
            log.warning("offset commit failed: %s", err.str())

    def close(self) -> None:
        """Deliver what is still queued; a batch whose outputs are lost here was never committed."""
        remaining = self.producer.flush(self.flush_timeout)
        if remaining:
            log.error("%d message(s) undelivered at shutdown; their batch was not committed", remaining)


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """Per partition, the offset after its last message: what a commit of these messages stores."""
    # Offsets only grow within a partition, so each (topic, partition)'s last message is its latest:
    # later positions overwrite earlier ones.
    topics, partitions, offsets = origin(messages)
    last = {key: index for index, key in enumerate(zip(topics, partitions, strict=True))}
    return [TopicPartition(topic, partition, offsets[index] + 1) for (topic, partition), index in last.items()]

"""Reading a partition's state back from its compacted changelog, before the partition is processed."""

from __future__ import annotations

import time
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from nids_common.errors import NidsError

ChangelogRecords = list[tuple[bytes, bytes | None]]
RESTORE_TIMEOUT_S = 120.0
_BATCH = 10_000
# What a partition of a topic just created answers until its leader is known.
_NOT_READY_YET = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


class ChangelogReader:
    """Reads one changelog partition from its start to its last stable offset with a consumer of its
    own (no group, read_committed: an aborted transaction's state is never restored)."""

    def __init__(self, consumer: Consumer, topic: str, timeout: float = RESTORE_TIMEOUT_S) -> None:
        self.consumer, self.topic, self.timeout = consumer, topic, timeout

    def read(self, partition: int) -> ChangelogRecords:
        """Every record of `partition`, in order. Raises NidsError past `timeout`."""
        place = TopicPartition(self.topic, partition)
        deadline = time.monotonic() + self.timeout
        low, end = self._bounds(place, deadline)
        if end <= low:
            return []
        self.consumer.assign([TopicPartition(self.topic, partition, low)])
        records: ChangelogRecords = []
        read_to = low
        try:
            while True:
                for message in self.consumer.consume(_BATCH, timeout=0.2):
                    if message.error() is None:
                        records.append((cast(bytes, message.key()), message.value()))
                        read_to = cast(int, message.offset()) + 1
                # Transaction markers and aborted records are never returned: the position passes them.
                position = max(read_to, self.consumer.position([place])[0].offset)
                if position >= end:
                    return records
                if time.monotonic() > deadline:
                    raise NidsError(
                        f"{self.topic}[{partition}]: state not restored within {self.timeout:.0f} s "
                        f"(at offset {position} of {end})"
                    )
        finally:
            self.consumer.unassign()

    def _bounds(self, place: TopicPartition, deadline: float) -> tuple[int, int]:
        """The partition's first offset and last stable offset (read_committed's "high" watermark).
        A topic just created may have no leader yet: asked again until `deadline`."""
        while True:
            try:
                low, high = self.consumer.get_watermark_offsets(place, timeout=5, cached=False)
                return int(low), int(high)
            except KafkaException as exc:
                error = exc.args[0]
                if not (error.retriable() or error.code() in _NOT_READY_YET) or time.monotonic() > deadline:
                    raise NidsError(
                        f"{place.topic}[{place.partition}]: cannot read the changelog: {error.str()}"
                    ) from None
                time.sleep(0.5)

    def close(self) -> None:
        self.consumer.close()

"""Reading a partition's state back from its compacted changelog, before the partition is processed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from nids_common.errors import NidsError

ChangelogRecords = list[tuple[bytes, bytes | None]]
RESTORE_TIMEOUT_S = 120.0
_BATCH = 10_000
# How long one consume() waits before the positions are checked again: a partition read to its end
# is done at once, not after a batch that never fills.
_WAIT_S = 0.01
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
    """Reads changelog partitions from their start to their last stable offset with a consumer of its
    own (no group, read_committed: an aborted transaction's state is never restored)."""

    def __init__(self, consumer: Consumer, topic: str, timeout: float = RESTORE_TIMEOUT_S) -> None:
        self.consumer, self.topic, self.timeout = consumer, topic, timeout

    def read(self, partitions: Sequence[int]) -> dict[int, ChangelogRecords]:
        """Every record of each of `partitions`, in order, read side by side. Raises NidsError past
        `timeout`."""
        deadline = time.monotonic() + self.timeout
        records: dict[int, ChangelogRecords] = {partition: [] for partition in partitions}
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for partition in partitions:
            low, end = self._bounds(TopicPartition(self.topic, partition), deadline)
            if end > low:
                starts[partition], ends[partition] = low, end
        if not ends:
            return records
        self.consumer.assign([TopicPartition(self.topic, partition, low) for partition, low in starts.items()])
        read_to = dict(starts)
        try:
            while ends:
                for message in self.consumer.consume(_BATCH, timeout=_WAIT_S):
                    if message.error() is None:
                        partition = cast(int, message.partition())
                        records[partition].append((cast(bytes, message.key()), message.value()))
                        read_to[partition] = cast(int, message.offset()) + 1
                # Transaction markers and aborted records are never returned: the position passes them.
                for place in self.consumer.position([TopicPartition(self.topic, p) for p in ends]):
                    if max(read_to[place.partition], place.offset) >= ends[place.partition]:
                        del ends[place.partition]
                if ends and time.monotonic() > deadline:
                    behind = ", ".join(f"[{p}] at {read_to[p]} of {end}" for p, end in sorted(ends.items()))
                    raise NidsError(f"{self.topic}: state not restored within {self.timeout:.0f} s ({behind})")
        finally:
            self.consumer.unassign()
        return records

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

"""Reading a partition's state back from its compacted changelog, before the partition is processed."""

from __future__ import annotations

import time
from typing import cast

from confluent_kafka import Consumer, TopicPartition

from nids_common.errors import NidsError

ChangelogRecords = list[tuple[bytes, bytes | None]]
RESTORE_TIMEOUT_S = 120.0
_BATCH = 10_000


class ChangelogReader:
    """Reads one changelog partition from its start to its last stable offset with a consumer of its
    own (no group, read_committed: an aborted transaction's state is never restored)."""

    def __init__(self, consumer: Consumer, topic: str, timeout: float = RESTORE_TIMEOUT_S) -> None:
        self.consumer, self.topic, self.timeout = consumer, topic, timeout

    def read(self, partition: int) -> ChangelogRecords:
        """Every record of `partition`, in order. Raises NidsError past `timeout`."""
        place = TopicPartition(self.topic, partition)
        # With isolation.level=read_committed the "high" offset is the last stable offset.
        low, end = self.consumer.get_watermark_offsets(place, timeout=10, cached=False)
        if end <= low:
            return []
        self.consumer.assign([TopicPartition(self.topic, partition, low)])
        records: ChangelogRecords = []
        deadline = time.monotonic() + self.timeout
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

    def close(self) -> None:
        self.consumer.close()

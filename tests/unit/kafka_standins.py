"""An in-memory stand-in for Kafka, for unit tests of the stream loops without a broker.

It keeps to the behaviour the loops rely on: a consumer reads the partitions of its topics from a
position that seek() moves and commit() stores for its group; a producer appends what it produces
when flush() reports delivery, or, in a transaction, only once the transaction commits (with the
offsets it was given), as a read_committed reader sees it. Keys go to partitions as the default
partitioner puts them (librdkafka's, CRC-32). Faults are scheduled by the test.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

TIMESTAMP_MS = 1_700_000_000_000


@dataclasses.dataclass
class Record:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


def as_bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class StandInBroker:
    """Topics as lists of records per partition, and each group's committed offsets."""

    def __init__(self, partitions: dict[str, int]) -> None:
        self.logs: dict[str, dict[int, list[Record]]] = {
            topic: {partition: [] for partition in range(count)} for topic, count in partitions.items()
        }
        self.committed: dict[tuple[str, int], int] = {}

    def append(self, topic: str, partition: int, record: Record) -> None:
        if partition < 0:
            partition = zlib.crc32(record.key or b"") % len(self.logs[topic])  # librdkafka's default
        self.logs[topic][partition].append(record)

    def fill(self, topic: str, partition: int, values: list[bytes]) -> None:
        for offset, value in enumerate(values, start=len(self.logs[topic][partition])):
            self.append(topic, partition, Record(f"k{partition}-{offset}".encode(), value))

    def records(self, topic: str) -> list[Record]:
        return [record for partition in self.logs[topic].values() for record in partition]

    def ends(self, topic: str) -> dict[int, int]:
        return {partition: len(log) for partition, log in self.logs[topic].items()}

    def committed_of(self, topic: str) -> dict[int, int]:
        return {p: offset for (t, p), offset in self.committed.items() if t == topic}


class StandInConsumer:
    """A group member that owns every partition of its topics. `on_consume[n]` runs before the n-th
    consume() call (1-based): a test revokes, loses partitions or raises from there."""

    def __init__(self, broker: StandInBroker, batch: int) -> None:
        self.broker, self.batch = broker, batch
        self.topics: list[str] = []
        self.position: dict[tuple[str, int], int] = {}
        self.commits: list[tuple[dict[tuple[str, int], int], bool]] = []  # (offsets, asynchronous)
        self.seeks: list[tuple[str, int, int]] = []
        self.on_consume: dict[int, Callable[[StandInConsumer], None]] = {}
        self.consume_calls = 0
        self.callbacks: dict[str, Callable[..., None]] = {}
        self.closed = False

    # -- what the loop calls ----------------------------------------------------------------------
    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        self.topics, self.callbacks = topics, callbacks
        self._assign()

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.consume_calls += 1
        event = self.on_consume.get(self.consume_calls)
        if event is not None:
            event(self)
        out: list[Message] = []
        limit = min(num_messages, self.batch)
        # Round robin over the partitions, a record at a time: as a fetch from several partitions
        # interleaves them (never one partition drained before the next is read).
        places = sorted(self.position)
        while len(out) < limit:
            progressed = False
            for topic, partition in places:
                offset = self.position[(topic, partition)]
                log = self.broker.logs[topic][partition]
                if len(out) < limit and offset < len(log):
                    record = log[offset]
                    out.append(
                        Message(
                            topic=topic,
                            partition=partition,
                            offset=offset,
                            key=record.key,
                            value=record.value,
                            headers=record.headers,
                            timestamp=(1, TIMESTAMP_MS),
                        )
                    )
                    self.position[(topic, partition)] = offset + 1
                    progressed = True
            if not progressed:
                break
        return out

    def seek(self, place: TopicPartition) -> None:
        self.seeks.append((place.topic, place.partition, place.offset))
        self.position[(place.topic, place.partition)] = place.offset

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool = True) -> None:
        stored = {(tp.topic, tp.partition): tp.offset for tp in offsets}
        self.commits.append((stored, asynchronous))
        self.broker.committed.update(stored)

    def consumer_group_metadata(self) -> object:
        return "group-metadata"

    def close(self) -> None:
        self.closed = True

    # -- what a test calls --------------------------------------------------------------------------
    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for topic in self.topics for p in self.broker.logs[topic]]

    def revoke(self) -> None:
        """The group takes the partitions away and gives them back, as librdkafka does in consume()."""
        self.callbacks["on_revoke"](self, self.partitions())
        self._assign()

    def lose(self) -> None:
        self.callbacks["on_lost"](self, self.partitions())
        self._assign()

    def _assign(self) -> None:
        self.position = {
            (tp.topic, tp.partition): self.broker.committed.get((tp.topic, tp.partition), 0) for tp in self.partitions()
        }
        self.callbacks["on_assign"](self, self.partitions())


class StandInProducer:
    """Delivers on flush(). `failing_deliveries` reports that many deliveries as failed; `errors[call]`
    is a list of KafkaErrors that call raises, one per attempt, before it succeeds."""

    def __init__(self, broker: StandInBroker, transactional: bool = False) -> None:
        self.broker, self.transactional = broker, transactional
        self.pending: list[tuple[str, int, Record, Callable[..., None]]] = []
        self.in_transaction: list[tuple[str, int, Record]] = []
        self.failing_deliveries = 0
        self.errors: dict[str, list[KafkaError]] = {}
        self.calls: list[str] = []
        self.offsets_sent: list[dict[tuple[str, int], int]] = []
        self._offsets: dict[tuple[str, int], int] = {}
        self._failed_in_transaction = False

    def produce(
        self,
        topic: str,
        value: bytes | str | None = None,
        key: bytes | str | None = None,
        partition: int = -1,
        on_delivery: Callable[..., None] | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        assert on_delivery is not None
        self.pending.append((topic, partition, Record(as_bytes(key), as_bytes(value), headers), on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return self.flush(timeout)

    def flush(self, timeout: float = 0) -> int:
        pending, self.pending = self.pending, []
        for topic, partition, record, on_delivery in pending:
            message = Message(topic=topic, key=record.key, value=record.value)
            if self.failing_deliveries > 0:
                self.failing_deliveries -= 1
                self._failed_in_transaction = self.transactional
                on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), message)
                continue
            if self.transactional:
                self.in_transaction.append((topic, partition, record))
            else:
                self.broker.append(topic, partition, record)
            on_delivery(None, message)
        return 0

    def init_transactions(self, timeout: float) -> None:
        self._call("init_transactions")

    def begin_transaction(self) -> None:
        self._call("begin_transaction")
        self.in_transaction, self._failed_in_transaction, self._offsets = [], False, {}

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: object, timeout: float) -> None:
        self._call("send_offsets_to_transaction")
        self._offsets = {(tp.topic, tp.partition): tp.offset for tp in offsets}
        self.offsets_sent.append(self._offsets)

    def commit_transaction(self, timeout: float) -> None:
        """As librdkafka's: flush first; a failed delivery makes the transaction abortable."""
        self.flush()
        if self._failed_in_transaction:
            raise KafkaException(kafka_error(KafkaError._INCONSISTENT, txn_requires_abort=True))
        self._call("commit_transaction")
        for topic, partition, record in self.in_transaction:
            self.broker.append(topic, partition, record)
        self.broker.committed.update(self._offsets)
        self.in_transaction, self._offsets = [], {}

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort_transaction")
        self.pending, self.in_transaction, self._offsets = [], [], {}

    def _call(self, name: str) -> None:
        self.calls.append(name)
        queued = self.errors.get(name)
        if queued:
            raise KafkaException(queued.pop(0))


def kafka_error(
    code: int, *, fatal: bool = False, retriable: bool = False, txn_requires_abort: bool = False
) -> KafkaError:
    return KafkaError(code, "stand-in", fatal=fatal, retriable=retriable, txn_requires_abort=txn_requires_abort)

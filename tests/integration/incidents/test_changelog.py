"""The changelog restore against the real broker: several partitions read side by side, only what
committed transactions wrote, and an empty partition done at once."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer

from incidents.changelog import ChangelogReader
from incidents.clients import COMPACTED
from nids_common.kafka import ensure_topics

PARTITIONS = 3


def write(bootstrap: str, topic: str, transactional_id: str) -> None:
    """Partitions 0 and 1 get committed records and one aborted transaction each; partition 2 none."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(30)
    for batch, commit in ((0, True), (1, False), (2, True)):
        producer.begin_transaction()
        for partition in (0, 1):
            for index in range(500):
                producer.produce(topic, value=f"{batch}".encode(), key=f"k{index}".encode(), partition=partition)
        if commit:
            producer.commit_transaction(30)
        else:  # in the log, then aborted
            assert producer.flush(30) == 0
            producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=None, key=b"k0", partition=0)  # a tombstone
    producer.commit_transaction(30)


def test_partitions_restore_side_by_side_with_committed_records_only(kafka_bootstrap: str, unique_name: str) -> None:
    topic = f"{unique_name}-changelog"
    ensure_topics({"bootstrap.servers": kafka_bootstrap}, {topic: PARTITIONS}, configs={topic: COMPACTED})
    write(kafka_bootstrap, topic, unique_name)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique_name,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    reader = ChangelogReader(consumer, topic, timeout=60)
    try:
        restored = reader.read([0, 1, 2])
        assert sorted(restored) == [0, 1, 2]
        assert restored[2] == []
        for partition in (0, 1):
            values = [value for _, value in restored[partition]]
            assert values[:1000] == [b"0"] * 500 + [b"2"] * 500  # never the aborted batch's b"1"
        assert restored[0][-1] == (b"k0", None)
        assert len(restored[0]) == 1001 and len(restored[1]) == 1000
        # Read again (a rewind) from the start, with nothing left assigned by the first read.
        assert reader.read([1]) == {1: restored[1]}
        assert consumer.assignment() == []
    finally:
        reader.close()

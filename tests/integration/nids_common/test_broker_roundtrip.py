"""The local broker is a real Kafka: keyed messages round-trip, in order within each partition."""

from __future__ import annotations

from collections import defaultdict

from confluent_kafka import Consumer, Producer

from nids_common.kafka import ensure_topics

MESSAGES = 10_000
PARTITIONS = 6


def test_keyed_messages_round_trip_in_partition_order(kafka_bootstrap: str, unique_name: str) -> None:
    ensure_topics({"bootstrap.servers": kafka_bootstrap}, {unique_name: PARTITIONS})
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "linger.ms": 5})
    failures: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    for seq in range(MESSAGES):
        key = f"flow-{seq % 97}"
        producer.produce(unique_name, key=key, value=f"{key}:{seq}".encode(), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique_name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([unique_name])
    seen: dict[int, list[tuple[str, int]]] = defaultdict(list)
    received = 0
    try:
        idle_polls = 0
        while received < MESSAGES and idle_polls < 30:
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            idle_polls = 0 if batch else idle_polls + 1
            for msg in batch:
                assert msg.error() is None, msg.error()
                key, seq = msg.value().decode().split(":")
                assert msg.key().decode() == key
                seen[msg.partition()].append((key, int(seq)))
                received += 1
    finally:
        consumer.close()

    assert received == MESSAGES
    assert len(seen) == PARTITIONS, "keys should spread over every partition"
    partition_of_key: dict[str, int] = {}
    for partition, records in seen.items():
        for key, _ in records:
            assert partition_of_key.setdefault(key, partition) == partition, f"{key} landed in two partitions"
        seqs = [seq for _, seq in records]
        assert seqs == sorted(seqs), f"partition {partition} out of order"
    assert sorted(seq for records in seen.values() for _, seq in records) == list(range(MESSAGES))

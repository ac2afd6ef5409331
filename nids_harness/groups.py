"""How far a consumer group has committed through a topic."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, TopicPartition


def committed_so_far(bootstrap: str, group: str, topic: str, timeout_s: float = 2.0) -> int:
    """The group's committed offsets through `topic`, summed (a partition without a commit counts 0);
    -1 while the cluster cannot say. Only the group coordinator is asked: a stall measured with this
    must not wait on a partition whose leader is down (a watermark query there blocks for its whole
    timeout and would add it to the stall)."""
    reader = _reader(bootstrap, group)
    try:
        return sum(max(offset, 0) for offset in _committed(reader, topic, timeout_s).values())
    except KafkaException:
        return -1
    finally:
        reader.close()


def group_progress(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(committed, end): the group's committed offsets and the end offsets of `topic`, summed over its
    partitions (a partition without a commit counts from its start)."""
    reader = _reader(bootstrap, group)
    try:
        done = end = 0
        for partition, offset in _committed(reader, topic, 10).items():
            low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            done += offset if offset >= 0 else low
            end += high
        return done, end
    finally:
        reader.close()


def _reader(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})


def _committed(reader: Consumer, topic: str, timeout_s: float) -> dict[int, int]:
    """Partition → the group's committed offset (negative where it has none), from its coordinator."""
    partitions = reader.list_topics(topic, timeout=timeout_s).topics[topic].partitions
    wanted = [TopicPartition(topic, p) for p in partitions]
    return {tp.partition: tp.offset for tp in reader.committed(wanted, timeout=timeout_s)}


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages of `topic` the group has not committed yet."""
    done, end = group_progress(bootstrap, group, topic)
    return end - done

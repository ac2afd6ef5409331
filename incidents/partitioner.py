"""Kafka's default partitioner for keyed records: the Java client's `Utils.murmur2`, `toPositive(hash) % n`.

librdkafka calls it `murmur2_random` (its own default is `consistent_random`, CRC32): a producer of
the repartition topic must set `partitioner: murmur2_random` for the offline run's partitions to be
the stream's.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The signed 32-bit hash Java's `Utils.murmur2` returns."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed `key` (UTF-8)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions

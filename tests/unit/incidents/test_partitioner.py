"""Kafka's murmur2 partitioner, checked against the vectors of Kafka's own UtilsTest.testMurmur2."""

from __future__ import annotations

import pytest

from incidents.partitioner import murmur2, partition_for


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_is_the_java_clients(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_partition_is_to_positive_hash_modulo_partitions() -> None:
    # toPositive(-790332482) = 1357151166
    assert partition_for("foobar", 10) == 1357151166 % 10 == 6
    assert partition_for("foobar", 1) == 0
    assert {partition_for(f"src=10.0.0.{i}", 6) for i in range(200)} == set(range(6))

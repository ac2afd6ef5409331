"""The detector's Kafka clients: every librdkafka setting of its consumer and producer, in one place.

`kafka.librdkafka` from the config comes last, so an operator can override any of these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from detector.config import DetectorConfig

STATISTICS_INTERVAL_MS = 5000


def make_consumer(
    config: DetectorConfig,
    on_error: Callable[[KafkaError], None],
    on_statistics: Callable[[str], None],
    on_commit: Callable[[KafkaError | None, list[TopicPartition]], None],
) -> Consumer:
    settings: dict[str, Any] = {
        **config.kafka.client_config(error_cb=on_error),
        "group.id": config.detector.group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # Larger fetches keep a 2-core consumer fed at tens of thousands of flows per second.
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "statistics.interval.ms": STATISTICS_INTERVAL_MS,
        "stats_cb": on_statistics,
        "on_commit": on_commit,
        **config.kafka.librdkafka,
    }
    return Consumer(settings)


def make_producer(config: DetectorConfig, on_error: Callable[[KafkaError], None]) -> Producer:
    settings: dict[str, Any] = {
        **config.kafka.client_config(error_cb=on_error),
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        **config.kafka.librdkafka,
    }
    return Producer(settings)

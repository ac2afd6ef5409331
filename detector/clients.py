"""The detector's Kafka clients: every librdkafka setting of its consumer and producer, in one place.

`kafka.librdkafka` from the config comes last, so an operator can override any of these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from detector.config import DetectorConfig
from nids_common.checkpoint import EXACTLY_ONCE, ClientMetrics
from nids_common.client_health import ClientHealth
from nids_common.contract import RECORD_OVERHEAD_BYTES
from nids_common.stream_clients import STATISTICS_INTERVAL_MS, consumer_settings, producer_settings


def make_consumer(
    config: DetectorConfig,
    on_error: Callable[[KafkaError], None],
    on_statistics: Callable[[str], None],
    on_commit: Callable[[KafkaError | None, list[TopicPartition]], None],
) -> Consumer:
    return Consumer(
        consumer_settings(
            config.kafka,
            config.detector.group_id,
            on_error,
            on_commit,
            **membership(config),
            **{"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": on_statistics},
        )
    )


def membership(config: DetectorConfig) -> dict[str, Any]:
    """How the detector takes part in its consumer group (see DetectorSettings)."""
    settings = config.detector
    chosen: dict[str, Any] = {"group.instance.id": config.instance_id} if settings.static_membership else {}
    if settings.group_protocol == "consumer":
        # KIP-848: session and heartbeat are the broker's settings, not the client's.
        return {**chosen, "group.protocol": "consumer"}
    return {
        **chosen,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(settings.session_timeout_ms // 3, 500),
    }


def make_producer(config: DetectorConfig, on_error: Callable[[KafkaError], None]) -> Producer:
    exactly_once = config.detector.delivery == EXACTLY_ONCE
    # Room for the largest dead letter (contract.Topics.configs gives the topic the same limit).
    room = config.detector.dead_letter_max_bytes + RECORD_OVERHEAD_BYTES
    settings = producer_settings(
        config.kafka, on_error, config.transactional_id if exactly_once else None, **{"message.max.bytes": room}
    )
    return Producer(settings)


def client_health(config: DetectorConfig, metrics: ClientMetrics) -> ClientHealth:
    """Where the detector's clients report errors; a refusal names the detector's own resources."""
    resources = {
        "topic": config.topics.flows,
        "group": config.detector.group_id,
        "transactional id": config.transactional_id,
    }
    return ClientHealth(config.kafka.librdkafka, resources, metrics)

"""nids-incidents' Kafka clients and topics: every setting in one place.

`kafka.librdkafka` from the config comes last, so an operator can override any of these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from incidents.config import IncidentsConfig
from incidents.repartition import MAX_RUN_BYTES
from nids_common.checkpoint import EXACTLY_ONCE, ClientMetrics
from nids_common.client_health import ClientHealth
from nids_common.contract import DEAD_LETTER_PARTITIONS, RECORD_OVERHEAD_BYTES
from nids_common.errors import NidsError
from nids_common.kafka import ensure_topics
from nids_common.stream_clients import consumer_settings, producer_settings

# Incidents and state are read for their latest value per key.
COMPACTED = {"cleanup.policy": "compact"}
METADATA_TIMEOUT_S = 30.0


def make_consumer(config: IncidentsConfig, health: ClientHealth) -> Consumer:
    settings = config.incidents
    return Consumer(
        consumer_settings(
            config.kafka,
            settings.group_id,
            health.on_error,
            health.on_commit,
            **{
                "session.timeout.ms": settings.session_timeout_ms,
                "heartbeat.interval.ms": settings.session_timeout_ms // 3,
            },
        )
    )


def make_producer(config: IncidentsConfig, health: ClientHealth) -> Producer:
    exactly_once = config.incidents.delivery == EXACTLY_ONCE
    service: dict[str, Any] = {
        "message.max.bytes": largest_message(config),
    }
    return Producer(
        producer_settings(
            config.kafka,
            health.on_producer_error,
            config.transactional_id if exactly_once else None,
            config.incidents.transaction_timeout_ms,
            **service,
        )
    )


def largest_message(config: IncidentsConfig) -> int:
    """The largest message this service writes: a run of alerts, or a dead letter."""
    return MAX_RUN_BYTES + config.incidents.max_alert_bytes + RECORD_OVERHEAD_BYTES


def partition_count(producer: Producer, topic: str, timeout: float = METADATA_TIMEOUT_S) -> int:
    """How many partitions `topic` has (it exists: ensure_incident_topics ran)."""
    try:
        found = producer.list_topics(topic, timeout=timeout).topics[topic]
    except KafkaException as exc:
        raise NidsError(f"{topic}: no metadata within {timeout:.0f} s: {exc.args[0].str()}") from None
    if found.error is not None or not found.partitions:
        raise NidsError(f"{topic}: {found.error.str() if found.error else 'no partitions'}")
    return len(found.partitions)


def make_changelog_consumer(config: IncidentsConfig, on_error: Callable[[KafkaError], None]) -> Consumer:
    """A group-less reader of the changelog (assigned the partitions being restored)."""
    return Consumer(
        {
            **config.kafka.client_config(error_cb=on_error),
            "group.id": config.names.restore_group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            # The restore reads to a known end: a fetch held for more data (500 ms by default) is
            # only delay, at every assignment.
            "fetch.wait.max.ms": 10,
            **config.kafka.librdkafka,
        }
    )


def client_health(config: IncidentsConfig, metrics: ClientMetrics) -> ClientHealth:
    resources = {
        "topic": config.topics.alerts,
        "group": config.incidents.group_id,
        "transactional id": config.transactional_id,
    }
    return ClientHealth(config.kafka.librdkafka, resources, metrics)


def topic_layout(config: IncidentsConfig) -> tuple[dict[str, int], dict[str, dict[str, str]]]:
    """The topics nids-incidents writes: partition counts and settings. The changelog is partitioned
    like the repartition topic it mirrors; incidents and state are compacted."""
    partitions = config.topics.partitions
    counts = {
        config.repartition_topic: partitions,
        config.changelog_topic: partitions,
        config.topics.incidents: partitions,
        config.topics.dead_letter: DEAD_LETTER_PARTITIONS,
    }
    settings = {
        config.repartition_topic: {"max.message.bytes": str(largest_message(config))},
        config.changelog_topic: COMPACTED,
        config.topics.incidents: COMPACTED,
        config.topics.dead_letter: {"max.message.bytes": str(config.incidents.max_alert_bytes + RECORD_OVERHEAD_BYTES)},
    }
    return counts, settings


def ensure_incident_topics(config: IncidentsConfig) -> None:
    counts, settings = topic_layout(config)
    ensure_topics(config.kafka.client_config(), counts, configs=settings)

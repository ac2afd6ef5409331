"""The librdkafka settings every stream service's clients share (the detector, nids-incidents), and
their checkpoint over a producer it can renew.

A service adds its own on top; `kafka.librdkafka` from its config always comes last, so an operator
can override any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from nids_common.checkpoint import EXACTLY_ONCE, Checkpoint, ClientMetrics, Delivery, make_checkpoint
from nids_common.client_health import ClientHealth
from nids_common.config import KafkaSettings

STATISTICS_INTERVAL_MS = 5000
# How long the broker lets a transaction stay open before aborting it (librdkafka's default is 60 s).
# A member killed mid-transaction, and not restarted under the same transactional id to fence it,
# blocks read_committed readers of the partitions it wrote (the next owner of its partitions among
# them) until then. A transaction here spans one batch, well under a second; Kafka Streams uses
# 10 s for the same reason. One that outlives it (a broker's failover) is aborted, and its producer
# fenced: the checkpoint renews it (nids_common.checkpoint.TransactionalCheckpoint).
TRANSACTION_TIMEOUT_MS = 10_000
# A crashed coordinator is looked up again each time librdkafka retries its connection, and those
# retries back off exponentially to reconnect.backoff.max.ms (10 s by default): the new coordinator,
# elected after the controller's broker session timeout, went unnoticed until the open transaction
# had timed out. 1 s is the Java clients' default.
FAILOVER = {"reconnect.backoff.max.ms": 1000}


def consumer_settings(
    kafka: KafkaSettings,
    group_id: str,
    on_error: Callable[[KafkaError], None],
    on_commit: Callable[[KafkaError | None, list[TopicPartition]], None],
    **service: Any,
) -> dict[str, Any]:
    """A group member that commits only what its checkpoint says, from the start of new partitions."""
    return {
        **kafka.client_config(error_cb=on_error),
        **FAILOVER,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # Outputs of the stage before come from transactions: only committed ones are read.
        "isolation.level": "read_committed",
        # Larger fetches keep a 2-core consumer fed at tens of thousands of records per second.
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "on_commit": on_commit,
        **service,
        **kafka.librdkafka,
    }


def producer_settings(
    kafka: KafkaSettings,
    on_error: Callable[[KafkaError], None],
    transactional_id: str | None,
    transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
    **service: Any,
) -> dict[str, Any]:
    """An idempotent producer (no duplicates or reordering from its own retries); transactional
    when `transactional_id` is given (exactly_once)."""
    return {
        **kafka.client_config(error_cb=on_error),
        **FAILOVER,
        # Acknowledged once every in-sync replica has it (min.insync.replicas, the contract's 2 of 3):
        # a record acknowledged before a broker dies is still there after its leader moves.
        # Idempotence implies it; it is written out because the durability above rests on it.
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        # The checkpoint only needs to hear of failures: a Python callback per delivered message costs
        # about a microsecond each at tens of thousands of messages per second.
        "delivery.report.only.error": True,
        **(
            {"transactional.id": transactional_id, "transaction.timeout.ms": transaction_timeout_ms}
            if transactional_id
            else {}
        ),
        **service,
        **kafka.librdkafka,
    }


def renewing_checkpoint(
    delivery: Delivery,
    consumer: Consumer,
    new_producer: Callable[[], Producer],
    metrics: ClientMetrics,
    health: ClientHealth,
) -> Checkpoint:
    """The checkpoint of `delivery` over a producer from `new_producer`, whose errors report to
    `health`. In exactly_once a fenced producer is replaced by another `new_producer()`, so its fatal
    errors are the checkpoint's to handle, not the end of the service."""
    health.producer_renewable = delivery == EXACTLY_ONCE
    return make_checkpoint(delivery, consumer, new_producer(), metrics, health.refusals, renew=new_producer)

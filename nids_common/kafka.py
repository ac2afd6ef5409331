"""Kafka helpers shared by the services, the demo and the tests."""
from __future__ import annotations

from typing import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from nids_common.errors import NidsError


def ensure_topics(client_config: Mapping[str, object], partitions_by_topic: Mapping[str, int], timeout: float = 30.0) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AdminClient(dict(client_config))
    existing = admin.list_topics(timeout=timeout).topics
    wanted = [
        NewTopic(name, num_partitions=partitions, replication_factor=-1)
        for name, partitions in partitions_by_topic.items()
        if name not in existing
    ]
    if not wanted:
        return
    for name, future in admin.create_topics(wanted, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise NidsError(f"cannot create topic {name}: {exc.args[0].str()}") from None

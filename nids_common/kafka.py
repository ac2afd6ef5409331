"""Kafka helpers shared by the services, the demo, the benchmarks and the tests."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AclBinding, AdminClient, NewTopic  # type: ignore[attr-defined]

from nids_common.contract import MIN_INSYNC_REPLICAS, REPLICATION_FACTOR
from nids_common.errors import AccessDenied, NidsError

Key = str | bytes | None
Value = bytes | None  # None: a tombstone, which the detector dead-letters as it came
Headers = Sequence[tuple[str, str | bytes | None]]
DeliveryCallback = Callable[[KafkaError | None, Any], None]
RefusedCallback = Callable[[int, KafkaError], None]

# How long a full local queue may hold up one produce before the caller is told: long enough to
# ride out a broker leader change, short enough that a stuck broker surfaces as an error.
QUEUE_FULL_TIMEOUT_S = 30.0
_POLL_S = 0.05


class ProduceStalled(NidsError):
    """The producer's local queue stayed full until the deadline, or shutdown was asked meanwhile, or
    the producer takes no message at all (a fatal or aborting state). `sent` messages of the call
    were handed over before it."""

    def __init__(self, message: str, *, shutdown: bool, sent: int = 0) -> None:
        super().__init__(message)
        self.shutdown, self.sent = shutdown, sent


class FatalKafkaError(NidsError):
    """librdkafka reported a fatal error (for example a static consumer or a transactional producer
    fenced by a newer instance): the client cannot go on, the service stops without committing."""


# Broker refusals that no retry can cure, and the kind of resource each is about.
_AUTHORIZATION_FAILURES = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
}
_AUTHENTICATION_FAILURES = (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED)


def principal(client_config: Mapping[str, Any]) -> str:
    """The principal a client's settings authenticate as (as Kafka's ACLs name it)."""
    username = client_config.get("sasl.username")
    return f"User:{username}" if username else "User:ANONYMOUS"


def access_denied(err: KafkaError, who: str, operation: str, resources: Mapping[str, str]) -> AccessDenied | None:
    """An AccessDenied naming `who` was refused `operation` on which resource, when `err` is an
    authorization or authentication failure; else None. `resources`: kind ("topic", "group",
    "transactional id") → the name the client used."""
    if err.code() in _AUTHENTICATION_FAILURES:
        return AccessDenied(f"{who}: the broker refused the credentials ({err.str()})")
    kind = _AUTHORIZATION_FAILURES.get(err.code())
    if kind is None:
        return None
    name = resources.get(kind, "")
    return AccessDenied(
        f"{who} may not {operation} {kind} {name!r} ({err.name()}): grant the ACL or run with the role's "
        "credentials (docs/security.md)"
    )


class Refusals:
    """The first refusal a client met (a missing ACL, refused credentials). Services stop on it with
    its line instead of retrying: no retry can cure it."""

    def __init__(self, client_config: Mapping[str, Any], resources: Mapping[str, str]) -> None:
        self.who = principal(client_config)
        self.resources = dict(resources)  # kind ("topic", "group", "transactional id") → name
        self.first: AccessDenied | None = None

    def note(self, err: KafkaError | None, operation: str, topic: str | None = None) -> bool:
        """True when `err` is a refusal (the first one is kept); `topic`: the one the operation was on."""
        if err is None:
            return False
        resources = self.resources if topic is None else {**self.resources, "topic": topic}
        denied = access_denied(err, self.who, operation, resources)
        if denied is not None and self.first is None:
            self.first = denied
        return denied is not None

    def raise_first(self) -> None:
        if self.first is not None:
            raise self.first


# librdkafka's "unassigned": the partitioner picks the partition from the key.
PARTITION_UA = -1


def produce_all(
    producer: Producer,
    topic: str,
    messages: Iterable[tuple[Key, Value]],
    on_delivery: DeliveryCallback,
    *,
    headers: Iterable[Headers] | None = None,
    on_refused: RefusedCallback | None = None,
    running: Callable[[], bool] = lambda: True,
    timeout: float = QUEUE_FULL_TIMEOUT_S,
    partition: int = PARTITION_UA,
) -> int:
    """Produce each (key, value) of `messages` (with the matching `headers`, when given) to `topic`,
    to `partition` when given (else the partitioner chooses by key).

    While librdkafka's local queue is full it serves delivery reports and tries again, for at most
    `timeout` seconds per message and only while `running()` holds; then raises ProduceStalled.
    A message produce() refuses outright (larger than message.max.bytes, an invalid argument) goes
    to `on_refused(index, error)` and the others go on; without `on_refused` the KafkaException
    propagates. A producer that takes no message (fatal, fenced, a transaction to abort) raises
    ProduceStalled: the batch fails whole. Returns how many messages were handed to the producer.
    """
    produce = producer.produce
    header_lists = None if headers is None else list(map(list, headers))
    index, refused = -1, 0
    try:
        for index, (key, value) in enumerate(messages):
            try:
                if header_lists is None:
                    # Positional: parsing keyword arguments cost about half of produce() itself.
                    produce(topic, value, key, partition, on_delivery)
                else:
                    produce(topic, value, key, partition, on_delivery, headers=header_lists[index])
            except BufferError:
                listed = None if header_lists is None else header_lists[index]
                _produce_when_room(producer, topic, partition, key, value, listed, on_delivery, running, timeout)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if _producer_failed(error):
                    raise ProduceStalled(
                        f"{topic}: the producer takes no message ({error.str()})", shutdown=False
                    ) from None
                if on_refused is None:
                    raise
                on_refused(index, error)
                refused += 1
    except ProduceStalled as stalled:
        stalled.sent = index - refused  # the message at `index` was not handed over
        raise
    if header_lists is not None and len(header_lists) != index + 1:
        raise ValueError(f"{topic}: {len(header_lists)} header lists for {index + 1} messages")
    return index + 1 - refused


def _producer_failed(error: KafkaError) -> bool:
    """An error of the producer's state (fatal, fenced, a transaction to abort), not of the message:
    no message would go, so the batch fails as a whole; skipping would lose them all."""
    return error.fatal() or error.txn_requires_abort() or error.code() in (KafkaError._STATE, KafkaError._FENCED)


def _produce_when_room(
    producer: Producer,
    topic: str,
    partition: int,
    key: Key,
    value: Value,
    headers: list[tuple[str, str | bytes | None]] | None,
    on_delivery: DeliveryCallback,
    running: Callable[[], bool],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        producer.poll(_POLL_S)
        try:
            producer.produce(topic, value, key, partition, on_delivery=on_delivery, headers=headers)
            return
        except BufferError:
            if not running():
                raise ProduceStalled(
                    f"{topic}: shutdown asked while the producer's local queue was full", shutdown=True
                ) from None
            if time.monotonic() >= deadline:
                raise ProduceStalled(
                    f"{topic}: the producer's local queue stayed full for {timeout:.0f} s", shutdown=False
                ) from None


@dataclasses.dataclass(frozen=True)
class Replication:
    factor: int
    min_insync: int


def replication_for(brokers: int) -> Replication:
    """The contract's replication on a cluster of `brokers`: 3 copies, 2 in sync, or as many as fit
    (one broker: 1 and 1; two: 2 and 1, so that either may fail)."""
    factor = max(1, min(REPLICATION_FACTOR, brokers))
    return Replication(factor, max(1, min(MIN_INSYNC_REPLICAS, factor - 1)))


def ensure_topics(
    client_config: Mapping[str, Any],
    partitions_by_topic: Mapping[str, int],
    timeout: float = 30.0,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    factor: int | None = None,
    min_insync: int | None = None,
) -> Replication:
    """Create the topics that do not exist yet, with their `configs` and replication (by default the
    contract's for the brokers the cluster lists now); existing ones are left as they are. Returns
    the replication new topics got."""
    admin = AdminClient(dict(client_config))
    metadata = admin.list_topics(timeout=timeout)
    default = replication_for(len(metadata.brokers) if factor is None else factor)
    replication = Replication(factor or default.factor, min_insync or default.min_insync)
    wanted = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replication.factor,
            config={"min.insync.replicas": str(replication.min_insync), **(configs or {}).get(name, {})},
        )
        for name, partitions in partitions_by_topic.items()
        if name not in metadata.topics
    ]
    if not wanted:
        return replication
    for name, future in admin.create_topics(wanted, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                denied = access_denied(
                    error, principal(client_config), "CREATE", {"topic": name, "cluster": "kafka-cluster"}
                )
                raise denied or NidsError(f"cannot create topic {name}: {error.str()}") from None
    wait_for_leaders(admin, {topic.topic: topic.num_partitions for topic in wanted}, timeout)
    return replication


def wait_for_leaders(admin: Any, partitions_by_topic: Mapping[str, int], timeout: float, poll: float = 0.1) -> None:
    """Until every partition of the topics has a leader in the metadata a client is served. A created
    topic is not there at once (a broker that just started or is busy propagates it later), and a
    service that looks a topic up right after creating it would otherwise stop with "Unknown topic or
    partition". `admin` is an AdminClient."""
    deadline = time.monotonic() + timeout
    missing = dict(partitions_by_topic)
    while True:
        metadata = admin.list_topics(timeout=max(0.1, deadline - time.monotonic()))
        for name in list(missing):
            found = metadata.topics.get(name)
            if (
                found is not None
                and found.error is None
                and len(found.partitions) == missing[name]
                and all(partition.leader >= 0 for partition in found.partitions.values())
            ):
                del missing[name]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise NidsError(f"topics created but without a leader after {timeout:.0f} s: {', '.join(sorted(missing))}")
        time.sleep(poll)


def create_acls(client_config: Mapping[str, Any], bindings: Sequence[AclBinding], timeout: float = 30.0) -> None:
    """Create ACL bindings (existing ones are kept: creating one twice is a no-op in Kafka)."""
    admin = AdminClient(dict(client_config))
    for binding, future in admin.create_acls(list(bindings), request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            raise NidsError(f"cannot create ACL {binding}: {exc.args[0].str()}") from None

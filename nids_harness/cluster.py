"""The three-broker cluster `scripts/kafka-local --brokers 3` runs: starting it, finding which node
leads a partition or coordinates a transactional id or group, and crashing one node (the chaos
run's broker faults)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from nids_common.kafka import ensure_topics
from nids_harness.chaos import BrokerFault, FaultTarget
from nids_harness.checkout import KAFKA_LOCAL
from nids_harness.errors import HarnessError
from nids_harness.waiting import wait_until

NODES = 3
_CLUSTER = [KAFKA_LOCAL, "--brokers", str(NODES)]
TRANSACTION_STATE = "__transaction_state"
CONSUMER_OFFSETS = "__consumer_offsets"


def start_cluster() -> str:
    """Start every node that is not running (all of them the first time); the bootstrap servers."""
    result = subprocess.run([*_CLUSTER, "start"], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise HarnessError(f"kafka-local --brokers {NODES} start failed: {result.stderr.strip()[-2000:]}")
    return cluster_bootstrap()


def warm_up(bootstrap: str, timeout_s: float = 120.0) -> None:
    """One transaction that stores a group's offsets, then wait until every partition is fully
    replicated: a freshly formatted cluster creates __transaction_state and __consumer_offsets (50
    partitions each, three replicas) on first use, and a fault injected while they are still
    settling measures that instead of the failover."""
    topic = "nids-warm-up"
    ensure_topics({"bootstrap.servers": bootstrap}, {topic: 1})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic})
    try:
        producer.init_transactions(timeout_s)
        producer.begin_transaction()
        producer.produce(topic, b"warm-up")
        producer.send_offsets_to_transaction(
            [TopicPartition(topic, 0, 0)], consumer.consumer_group_metadata(), timeout_s
        )
        producer.commit_transaction(timeout_s)
    finally:
        consumer.close()
    if not wait_until(lambda: fully_replicated(bootstrap), timeout_s, poll=1.0):
        raise HarnessError(f"partitions still under-replicated {timeout_s:.0f} s after the cluster started")


def cluster_running() -> bool:
    """Whether every node of the local cluster is up and answering."""
    return subprocess.run([*_CLUSTER, "status"], check=False, capture_output=True).returncode == 0


def restart_cluster() -> None:
    """Start the nodes that are down again."""
    start_cluster()


def cluster_bootstrap() -> str:
    return subprocess.run([*_CLUSTER, "bootstrap"], capture_output=True, text=True, check=True).stdout.strip()


def stop_cluster() -> None:
    subprocess.run([*_CLUSTER, "stop"], check=False, capture_output=True)


def kill_node(node: int) -> None:
    """SIGKILL one node, as a crash would; `start_cluster` brings it back."""
    result = subprocess.run([*_CLUSTER, "kill", str(node)], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise HarnessError(f"kafka-local kill {node}: {result.stderr.strip()}")


def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    """The node id that leads `topic`[`partition`] now (-1 while none does)."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=15)
    return int(metadata.topics[topic].partitions[partition].leader)


def java_string_hash(text: str) -> int:
    """Java's String.hashCode, which Kafka uses to place a transactional id or group on a partition of
    its internal topics (UTF-16 code units, 32-bit overflow)."""
    value = 0
    encoded = text.encode("utf-16-be")
    for index in range(0, len(encoded), 2):
        value = (31 * value + int.from_bytes(encoded[index : index + 2], "big")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _coordinator(bootstrap: str, internal_topic: str, name: str) -> int:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(internal_topic, timeout=15)
    partitions = metadata.topics[internal_topic].partitions
    if not partitions:
        raise HarnessError(f"{internal_topic} does not exist yet")
    # Kafka's Utils.abs: the sign bit cleared (Integer.MIN_VALUE maps to 0).
    return int(partitions[(java_string_hash(name) & 0x7FFFFFFF) % len(partitions)].leader)


def transaction_coordinator(bootstrap: str, transactional_id: str) -> int:
    """The node that coordinates `transactional_id`'s transactions: the leader of its partition of
    __transaction_state."""
    return _coordinator(bootstrap, TRANSACTION_STATE, transactional_id)


def group_coordinator(bootstrap: str, group: str) -> int:
    """The node that coordinates `group`: the leader of its partition of __consumer_offsets."""
    return _coordinator(bootstrap, CONSUMER_OFFSETS, group)


def stop_node(node: int) -> None:
    """Stop one node cleanly (its leaderships handed over first), as a rolling restart does."""
    result = subprocess.run([*_CLUSTER, "stop", str(node)], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise HarnessError(f"kafka-local stop {node}: {result.stderr.strip()}")


def fully_replicated(bootstrap: str) -> bool:
    """Whether every partition of the cluster has all its replicas in sync (none under-replicated)."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=15)
    return all(
        len(partition.isrs) == len(partition.replicas)
        for topic in metadata.topics.values()
        for partition in topic.partitions.values()
    )


def crash(nodes_of: Callable[[FaultTarget], list[int]]) -> BrokerFault:
    """SIGKILL the nodes `nodes_of` names for the run; the run's recovery starts them again."""

    def fault(target: FaultTarget) -> Callable[[], None]:
        nodes = nodes_of(target)
        if any(node < 1 for node in nodes):
            raise HarnessError("no node to kill: the partition has no leader")
        for node in nodes:
            kill_node(node)
        return restart_cluster

    return fault


def outage(nodes_of: Callable[[FaultTarget], list[int]], seconds: float) -> BrokerFault:
    """SIGKILL the nodes `nodes_of` names, keep them down `seconds`, start them again: the run's
    stall counts the whole outage."""
    kill = crash(nodes_of)

    def fault(target: FaultTarget) -> Callable[[], None]:
        kill(target)
        time.sleep(seconds)
        restart_cluster()
        return lambda: None

    return fault


def rolling_restart(target: FaultTarget) -> Callable[[], None]:
    """Each node in turn stopped cleanly and started again, the next one only once every partition
    is fully replicated again, as an operator upgrades a cluster."""
    for node in range(1, NODES + 1):
        stop_node(node)
        start_cluster()
        if not wait_until(lambda: fully_replicated(target.bootstrap), 120, poll=1.0):
            raise HarnessError(f"partitions still under-replicated 120 s after node {node} came back")
    return lambda: None


def _leader_only(target: FaultTarget) -> list[int]:
    """A node that leads flow partitions the detector reads but coordinates neither its transactions
    nor its group: a leader's failover alone, which a coordinator's move would otherwise slow."""
    coordinators = {
        transaction_coordinator(target.bootstrap, target.transactional_id),
        group_coordinator(target.bootstrap, target.group),
    }
    metadata = AdminClient({"bootstrap.servers": target.bootstrap}).list_topics(target.flows, timeout=15)
    leaders = sorted({int(p.leader) for p in metadata.topics[target.flows].partitions.values()} - coordinators)
    if not leaders:
        raise HarnessError(f"every node leading a partition of {target.flows} also coordinates the detector")
    return leaders[:1]


def _leader_and_another(target: FaultTarget) -> list[int]:
    leader = leader_of(target.bootstrap, target.flows, 0)
    return [leader, leader % NODES + 1]


TWO_DOWN_S = 20.0
FAULTS: dict[str, BrokerFault] = {
    "leader": crash(_leader_only),
    "transaction-coordinator": crash(
        lambda target: [transaction_coordinator(target.bootstrap, target.transactional_id)]
    ),
    "group-coordinator": crash(lambda target: [group_coordinator(target.bootstrap, target.group)]),
    "two-down": outage(_leader_and_another, TWO_DOWN_S),
    "rolling-restart": rolling_restart,
}

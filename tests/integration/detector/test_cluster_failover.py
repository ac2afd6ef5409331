"""On a three-broker cluster (replication 3, min.insync.replicas 2, acks=all): exactly_once holds
while the node leading the detector's flow partition, or coordinating its transactions, is
SIGKILLed mid-stream and started again, and detection resumes while that node is still down."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from nids_dataset.synthetic import synthetic_frame
from nids_harness.chaos import run_chaos
from nids_harness.cluster import FAULTS, leader_of
from nids_harness.topics import make_topics

# A leader's loss is noticed after the controller's broker session timeout (9 s by default), and a
# coordinator's once its partitions have a new leader and it has loaded their state.
STALL_BOUND_S = {"leader": 10.0, "transaction-coordinator": 20.0}


def test_new_topics_are_replicated_three_times(kafka_cluster: str, unique_name: str) -> None:
    topics = make_topics(kafka_cluster, unique_name)
    admin = AdminClient({"bootstrap.servers": kafka_cluster})
    metadata = admin.list_topics(topics.flows, timeout=15)
    assert {len(p.replicas) for p in metadata.topics[topics.flows].partitions.values()} == {3}
    resource = ConfigResource(ResourceType.TOPIC, topics.alerts)
    described = admin.describe_configs([resource])[resource].result()
    assert described["min.insync.replicas"].value == "2"
    assert leader_of(kafka_cluster, topics.flows, 0) in {1, 2, 3}


@pytest.mark.parametrize("fault", sorted(STALL_BOUND_S))
def test_exactly_once_through_a_node_crash(kafka_cluster: str, trained_model: Path, tmp_path: Path, fault: str) -> None:
    report = run_chaos(
        kafka_cluster,
        synthetic_frame(40_000, seed=23),
        trained_model,
        "exactly_once",
        kills=0,
        malformed=100,
        broker_fault=FAULTS[fault],
        workdir=tmp_path,
    )
    print(f"{fault}: {report.line()}")
    assert report.missing_alerts == 0 and report.duplicated_alerts == 0, report.line()
    assert report.missing_dead == 0 and report.duplicated_dead == 0, report.line()
    assert report.got_dead == report.expected_dead == 100 + 10 + 1, report.line()
    assert report.broker_stall is not None and report.broker_stall <= STALL_BOUND_S[fault], report.line()

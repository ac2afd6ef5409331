"""docker-compose.yml is valid for Docker Compose, checked by the real tool (no daemon needed)."""

from __future__ import annotations

import os
import shutil
import subprocess

import yaml

from nids_common.contract import MIN_INSYNC_REPLICAS, REPLICATION_FACTOR
from nids_harness.checkout import REPO
from tests.integration.helpers import unavailable


def docker_compose() -> str:
    """Debian's docker-compose, which validates a compose file without a daemon."""
    tool = shutil.which("docker-compose")
    if tool is None:
        unavailable("docker-compose not installed (scripts/ensure-system-deps installs it)")
    return tool


def test_docker_compose_config_validates() -> None:
    tool = docker_compose()
    result = subprocess.run(
        [tool, "-f", str(REPO / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    services = subprocess.run(
        [tool, "-f", str(REPO / "docker-compose.yml"), "config", "--services"], capture_output=True, text=True, cwd=REPO
    ).stdout.split()
    assert set(services) == {
        "kafka",
        "controller",
        "kafka-2",
        "kafka-3",
        "init-topics",
        "trainer",
        "detector",
        "incidents",
        "replay",
        "prometheus",
        "grafana",
    }
    # Alone, the one node is broker and controller both.
    alone = yaml.safe_load(
        subprocess.run(
            [tool, "-f", str(REPO / "docker-compose.yml"), "config"], capture_output=True, text=True, cwd=REPO
        ).stdout
    )["services"]["kafka"]["environment"]
    assert alone["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert alone["KAFKA_LISTENERS"] == "PLAINTEXT://:9092,HOST://:29092,CONTROLLER://:9093"
    assert alone["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"


def test_the_detector_scales_and_the_partition_count_is_one_setting() -> None:
    tool = docker_compose()
    result = subprocess.run(
        [tool, "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "NIDS_TOPICS_PARTITIONS": "12"},
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    detector = services["detector"]
    # `--scale detector=N` needs no fixed host port and no fixed container name.
    assert "ports" not in detector and "container_name" not in detector
    assert detector["expose"] == ["9108"]
    for name in ("init-topics", "detector", "replay", "trainer"):
        assert services[name]["environment"]["NIDS_TOPICS_PARTITIONS"] == "12", name
    assert services["init-topics"]["command"][0] == "nids-topics"
    scrape = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["dns_sd_configs"] == [{"names": ["detector"], "type": "A", "port": 9108, "refresh_interval": "10s"}]


def test_the_cluster_profile_runs_three_brokers_and_a_controller_and_points_every_service_at_them() -> None:
    tool = docker_compose()
    command = [tool, "--env-file", str(REPO / "deploy/cluster.env"), "-f", str(REPO / "docker-compose.yml"), "config"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    nodes = [services[name]["environment"] for name in ("kafka", "kafka-2", "kafka-3")]
    assert [str(node["KAFKA_NODE_ID"]) for node in nodes] == ["1", "2", "3"]
    # Without the env file, `up` starts the one broker: the other two belong to the cluster profile.
    assert "profiles" not in services["kafka"]
    assert services["kafka-2"]["profiles"] == services["kafka-3"]["profiles"] == ["cluster"]
    controller = services["controller"]["environment"]
    assert services["controller"]["profiles"] == ["cluster"]
    assert (str(controller["KAFKA_NODE_ID"]), controller["KAFKA_PROCESS_ROLES"]) == ("0", "controller")
    assert {node["KAFKA_CONTROLLER_QUORUM_VOTERS"] for node in [*nodes, controller]} == {"0@controller:9093"}
    # Brokers only: two of them down leaves the quorum, and writes are refused (NOT_ENOUGH_REPLICAS).
    assert {node["KAFKA_PROCESS_ROLES"] for node in nodes} == {"broker"}
    assert not any("CONTROLLER" in node["KAFKA_LISTENERS"] for node in nodes)
    assert {str(node["KAFKA_MIN_INSYNC_REPLICAS"]) for node in nodes} == {str(MIN_INSYNC_REPLICAS)}
    assert {str(node["KAFKA_DEFAULT_REPLICATION_FACTOR"]) for node in nodes} == {str(REPLICATION_FACTOR)}
    for name in ("init-topics", "detector", "incidents", "replay", "trainer"):
        assert services[name]["environment"]["NIDS_KAFKA_BOOTSTRAP"] == "kafka:9092,kafka-2:9092,kafka-3:9092", name

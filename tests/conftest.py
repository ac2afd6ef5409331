"""Shared fixtures: the Kafka broker for integration tests, unique names per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException

from nids_harness.checkout import KAFKA_LOCAL
from nids_harness.cluster import cluster_running, fully_replicated, start_cluster, stop_cluster, warm_up
from nids_harness.errors import HarnessError
from nids_harness.secure import SecureBroker
from nids_harness.waiting import wait_until
from tests.integration.helpers import unavailable


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


def _broker_answers(bootstrap: str, timeout: float = 10.0, config: dict[str, Any] | None = None) -> str | None:
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient(config or {"bootstrap.servers": bootstrap}).list_topics(timeout=timeout)
    except Exception as exc:  # KafkaException carries the librdkafka reason
        return str(exc)
    return None


_BROKER = {"started_here": False}


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real broker: KAFKA_BOOTSTRAP if set, else the local KRaft broker started for this session.

    Under CI=true an unreachable broker fails the test; elsewhere it skips with the reason.
    """
    given = os.environ.get("KAFKA_BOOTSTRAP")
    started_here = False
    if given:
        bootstrap = given
    else:
        port = os.environ.get("KAFKA_LOCAL_PORT", "9092")
        bootstrap = f"127.0.0.1:{port}"
        result = subprocess.run([KAFKA_LOCAL, "start"], capture_output=True, text=True)
        if result.returncode != 0:
            unavailable(f"scripts/kafka-local start failed: {result.stderr.strip()[-2000:]}")
        # Only stop what this session started; a broker the developer already ran stays up.
        started_here = "already running" not in result.stdout
        _BROKER["started_here"] = started_here
    problem = _broker_answers(bootstrap)
    if problem:
        unavailable(f"Kafka broker at {bootstrap} does not answer: {problem}")
    yield bootstrap
    if started_here:
        subprocess.run([KAFKA_LOCAL, "stop"], capture_output=True)


@pytest.fixture(scope="session")
def secure_broker() -> Iterator[SecureBroker]:
    """The secure local broker (SASL_SSL, ACLs, a role per service), started for this session.
    Under CI=true a broker that does not start fails the test; elsewhere it skips with the reason."""
    port = os.environ.get("KAFKA_LOCAL_SECURE_PORT", "9094")
    result = subprocess.run([KAFKA_LOCAL, "start", "--secure"], capture_output=True, text=True)
    if result.returncode != 0:
        unavailable(f"scripts/kafka-local start --secure failed: {result.stderr.strip()[-2000:]}")
    started_here = "already running" not in result.stdout
    broker = SecureBroker(f"127.0.0.1:{port}")
    problem = _broker_answers(broker.bootstrap, config=broker.client_config("admin"))
    if problem:
        unavailable(f"secure Kafka broker at {broker.bootstrap} does not answer: {problem}")
    yield broker
    if started_here:
        subprocess.run([KAFKA_LOCAL, "stop", "--secure"], capture_output=True)


@pytest.fixture(scope="session")
def _cluster_session() -> Iterator[str]:
    started_here = not cluster_running()
    try:
        bootstrap = start_cluster()
    except HarnessError as exc:
        unavailable(str(exc))
    problem = _broker_answers(bootstrap)
    if problem:
        unavailable(f"the three-broker cluster at {bootstrap} does not answer: {problem}")
    try:
        warm_up(bootstrap)
    except (HarnessError, KafkaException) as exc:
        unavailable(f"the three-broker cluster at {bootstrap} did not settle: {exc}")
    yield bootstrap
    if started_here:
        stop_cluster()


@pytest.fixture
def kafka_cluster(_cluster_session: str) -> str:
    """The local three-broker cluster (`scripts/kafka-local --brokers 3`), started for this session,
    for tests that kill its nodes (and start them again); each test gets it with every partition
    fully replicated, so a node an earlier test restarted has caught up. Under CI=true a cluster that
    does not start fails the test; one the developer already ran is left running."""
    if not wait_until(lambda: fully_replicated(_cluster_session), 120, poll=1.0):
        unavailable("partitions of the three-broker cluster still under-replicated after 120 s")
    return _cluster_session


@pytest.fixture
def own_broker(kafka_bootstrap: str) -> str:
    """The suite's local broker, for a test that kills it: only a broker this session started."""
    if not _BROKER["started_here"]:
        unavailable("needs the suite's own local broker to kill and restart; unset KAFKA_BOOTSTRAP and stop yours")
    return kafka_bootstrap


@pytest.fixture
def prometheus_binary() -> str:
    """Debian's real Prometheus (scripts/ensure-system-deps installs it)."""
    binary = shutil.which("prometheus")
    if binary is None:
        unavailable("prometheus not installed (scripts/ensure-system-deps installs it)")
    return binary


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A topic/group name no other test (or earlier run) uses."""
    base = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real model trained on synthetic flows; returns its version folder. Gradient boosting, the
    family deployed on real data, so tests run the compiled scorer the detector runs."""
    from tests.fixtures import FAST_TRAINING, flows_with_identity, write_partitioned
    from training.train import run_training

    folder = tmp_path_factory.mktemp("model")
    data = write_partitioned(flows_with_identity(4000, seed=5), folder / "train.csv")
    return run_training([data], folder / "models", FAST_TRAINING).path


@pytest.fixture(scope="session")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another small model, trained on other flows with another seed: it scores differently. Its
    attack_cat model is the averaged forest and boosting (rf+hgb), so the compiled scorer, the artifact
    and the reload check each meet that too. Training deploys it as the preferred attack_cat family;
    test_compiled asserts the deployed family, so if that ever changed the tests would say so rather
    than lose the averaged model quietly."""
    import dataclasses

    from tests.fixtures import FAST_TRAINING, flows_with_identity, write_partitioned
    from training.train import run_training

    folder = tmp_path_factory.mktemp("model2")
    data = write_partitioned(flows_with_identity(3000, seed=8), folder / "train.csv")
    config = dataclasses.replace(FAST_TRAINING, seed=9, deploy_candidates=("rf+hgb", "hgb"))
    return run_training([data], folder / "models", config).path


@pytest.fixture
def model_store(tmp_path: Path, trained_model: Path, second_model: Path) -> tuple[Path, str, str]:
    """A models folder of the test's own with both versions; latest → the first. (folder, first, second)"""
    import shutil

    from nids_model.artifact import point_latest

    models = tmp_path / "models"
    models.mkdir()
    for version in (trained_model, second_model):
        shutil.copytree(version, models / version.name)
    point_latest(models, trained_model.name)
    return models, trained_model.name, second_model.name

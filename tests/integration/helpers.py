"""Every helper the integration tests share: the repository, a broker that is not there, free ports,
topics, replaying flows, a detector running in a thread, reading topics back as a downstream reader."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Message, Producer
from prometheus_client import CollectorRegistry

from bench.common import SECURE_CREDENTIALS, downstream_consumer, secure_role_env, topics_env
from detector.config import DetectorConfig, DetectorSettings, MetricsSettings
from detector.metrics import DetectorMetrics
from detector.reload import load_live
from detector.service import Detector
from nids_common.acls import role_acls
from nids_common.config import KafkaSettings
from nids_common.contract import DEFAULT_PARTITIONS, Topics
from nids_common.kafka import create_acls, ensure_topics
from nids_dataset.synthetic import synthetic_frame
from producer.replay import replay

REPO = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = str(REPO / "scripts" / "kafka-local")


def unavailable(reason: str) -> None:
    """A component the test needs is missing: under CI=true that fails the test, elsewhere it skips."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def make_topics(bootstrap: str, name: str, partitions: int = DEFAULT_PARTITIONS) -> Topics:
    """The contract's topics under a name of the test's own, with `partitions` partitions each."""
    topics = Topics.named(name, partitions)
    ensure_topics({"bootstrap.servers": bootstrap}, topics.partition_counts(), configs=topics.configs())
    return topics


def replay_synthetic(bootstrap: str, topic: str, rows: int, seed: int, run_id: str) -> pd.DataFrame:
    """`rows` synthetic flows replayed to `topic` as nids-replay sends them; the frame with their flow ids."""
    frame = synthetic_frame(rows, seed=seed)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    summary = replay([frame], producer, topic, run_id=run_id)
    assert summary.failed == 0 and summary.delivered == rows
    return frame.assign(flow_id=[f"{run_id}-{i}" for i in range(rows)])


def detector_config(bootstrap: str, topics: Topics, group: str, model: Path, **settings: Any) -> DetectorConfig:
    """A detector on the test's topics and group; each gets an instance id of its own unless given."""
    settings.setdefault("instance_id", f"{group}-{uuid.uuid4().hex[:6]}")
    return DetectorConfig(
        kafka=KafkaSettings(bootstrap=bootstrap),
        topics=topics,
        detector=DetectorSettings(group_id=group, model=model, **settings),
        metrics=MetricsSettings(port=0),
    )


class RunningDetector:
    """A real Detector on its own thread, with its own metrics registry."""

    def __init__(self, config: DetectorConfig, before_start: Callable[[Detector], None] | None = None) -> None:
        self.metrics = DetectorMetrics(CollectorRegistry())
        live = load_live(config.detector.model, config.detector.model_threads)
        self.detector = Detector(config, live, self.metrics)
        if before_start is not None:
            before_start(self.detector)
        self.thread = threading.Thread(target=self.detector.run, daemon=True)
        self.thread.start()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if not self.thread.is_alive():
                return False
            time.sleep(0.2)
        return condition()

    def stop(self) -> None:
        self.detector.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "detector did not stop within 30 s"

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found


def read_topic(bootstrap: str, topic: str, expected: int | None = None, idle_seconds: float = 5.0) -> list[Message]:
    """Every message of `topic` from the start; stops after `expected` messages or `idle_seconds` of silence."""
    consumer = downstream_consumer(bootstrap, f"reader-{topic}")
    consumer.subscribe([topic])
    out: list[Message] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_seconds:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is None:
                    out.append(message)
                    last = time.monotonic()
            if expected is not None and len(out) >= expected:
                # Linger briefly so duplicates beyond `expected` would still be seen.
                expected, idle_seconds = None, 1.0
    finally:
        consumer.close()
    return out


# -- Prometheus ----------------------------------------------------------------------------------
def start_prometheus(binary: str, config: Path, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """A real Prometheus with `config`, its data under `workdir`, its API on 127.0.0.1:`port`."""
    return subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def prometheus_ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def scraped_total(base: str, expr: str = "sum(nids_flows_consumed_total)") -> float:
    try:
        result = query(base, expr)
    except OSError:
        return 0.0
    return float(result[0]["value"][1]) if result else 0.0


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


# -- the secure broker (scripts/kafka-local start --secure) ----------------------------------------
@dataclasses.dataclass(frozen=True)
class SecureBroker:
    """The secure local broker: SASL_SSL on `bootstrap`, its CA and certificates under `tls`, and
    per role (admin, replay, detector, alerts) the environment file the script wrote."""

    bootstrap: str

    @property
    def tls(self) -> Path:
        return SECURE_CREDENTIALS.parent / "tls"

    def env(self, role: str) -> dict[str, str]:
        """The role's NIDS_KAFKA_* variables, as `set -a; . credentials/<role>.env` exports them."""
        return secure_role_env(role)

    def client_config(self, role: str, **overrides: Any) -> dict[str, Any]:
        env = self.env(role)
        return {
            "bootstrap.servers": env["NIDS_KAFKA_BOOTSTRAP"],
            **json.loads(env["NIDS_KAFKA_LIBRDKAFKA"]),
            **overrides,
        }

    def grant(self, name: str, partitions: int = 2) -> tuple[Topics, str]:
        """Topics and a detector group of the test's own, created as admin, with every role's ACLs on
        them: the test then runs each service with only its role's rights."""
        topics = Topics.named(name, partitions)
        admin = self.client_config("admin")
        ensure_topics(admin, topics.partition_counts(), configs=topics.configs())
        group = f"{name}-detector"
        prefix = DetectorConfig(topics=topics, detector=DetectorSettings(group_id=group)).transactional_id_prefix
        create_acls(admin, role_acls(topics, group, prefix))
        return topics, group


def service_env(broker: SecureBroker, role: str, topics: Topics, **settings: str) -> dict[str, str]:
    """The environment a service runs in as `role`: the role's credentials, the test's topics and
    `settings` (NIDS_* names without the prefix, e.g. DETECTOR_GROUP_ID)."""
    return {
        **os.environ,
        **broker.env(role),
        **topics_env(topics),
        **{f"NIDS_{name}": value for name, value in settings.items()},
    }


def tool(name: str) -> str:
    """A console script of this project's environment (nids-replay, nids-detect, …)."""
    return str(Path(sys.executable).parent / name)

"""The stream against the secure local broker (SASL_SSL, SCRAM-SHA-512, ACLs): every service runs as
its own principal with only its role's rights, configured by environment alone; refusals stop a
service with one line naming who was refused what; the metrics endpoint serves Prometheus over TLS
to a client certificate only."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from prometheus_client import CollectorRegistry

from detector.cli import serve_metrics
from detector.metrics import DetectorMetrics
from nids_common.contract import Topics, alert_decoder, incident_decoder
from nids_common.errors import AccessDenied
from nids_common.kafka import create_acls, ensure_topics
from nids_common.metrics_server import MetricsSettings
from nids_common.replicas import partitions_below_min_insync
from nids_harness.incident_stream import produce_alerts, run_incidents_config, start_incidents, synthetic_alerts
from nids_harness.metrics import scrape_total
from nids_harness.ports import free_port
from nids_harness.secure import SecureBroker, service_env
from nids_harness.waiting import wait_until
from nids_model.artifact import load_model
from tests.fixtures import flows_with_identity, write_partitioned
from tests.integration.helpers import prometheus_ready, query, start_prometheus, tool


def read_all(broker: SecureBroker, topic: str, expected: int, timeout: float = 60.0) -> list[bytes]:
    """Every value of `topic` (as admin, read_committed) until `expected` arrived or `timeout`."""
    consumer = Consumer(
        broker.client_config(
            "admin",
            **{
                "group.id": f"reader-{topic}-{time.monotonic_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            },
        )
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            values += [m.value() or b"" for m in consumer.consume(1000, timeout=0.5) if m.error() is None]
        extra_until = time.monotonic() + 1.0  # a moment more: repeats beyond `expected` would show
        while time.monotonic() < extra_until:
            values += [m.value() or b"" for m in consumer.consume(1000, timeout=0.2) if m.error() is None]
    finally:
        consumer.close()
    return values


def refused(argv: list[str], env: dict[str, str]) -> str:
    """Run one of the CLIs, which must stop with exit code 2, printing nothing on stdout and exactly one
    error line of its own (librdkafka's log lines around it aside); that line, without its prefix."""
    result = run_tool([tool(argv[0]), *argv[1:]], env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout == ""  # nothing done, nothing reported as done
    prefix = f"{argv[0]}: error: "
    (error,) = [line.removeprefix(prefix) for line in result.stderr.splitlines() if line.startswith(prefix)]
    return error


def run_tool(argv: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """One of the project's CLIs to its end, its output captured."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def start_detector(
    broker: SecureBroker, topics: Topics, group: str, model: Path, tmp_path: Path, **settings: str
) -> subprocess.Popen[str]:
    """nids-detect as the detector principal on the test's topics; its output in tmp_path/detector.log."""
    env = service_env(
        broker, "detector", topics, DETECTOR_GROUP_ID=group, DETECTOR_MODEL=str(model), METRICS_PORT="0", **settings
    )
    log = (tmp_path / "detector.log").open("w")
    return subprocess.Popen([tool("nids-detect")], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


def test_replay_detector_and_alerts_end_to_end_each_with_only_its_rights(
    secure_broker: SecureBroker, unique_name: str, trained_model: Path, tmp_path: Path
) -> None:
    topics, group = secure_broker.grant(unique_name)
    flows = flows_with_identity(1500, seed=31)
    data = write_partitioned(flows, tmp_path / "flows.csv")
    model, _ = load_model(trained_model)
    attacks = int(model.score(flows).is_attack.sum())
    assert attacks > 0

    replay = run_tool(
        [tool("nids-replay"), "--data", str(data)], service_env(secure_broker, "replay", topics), timeout=120
    )
    assert replay.returncode == 0, replay.stderr
    assert "delivered 1,500, failed 0" in replay.stdout

    detector = start_detector(secure_broker, topics, group, trained_model, tmp_path, DETECTOR_DELIVERY="exactly_once")
    try:
        alerts = read_all(secure_broker, topics.alerts, attacks, timeout=90)
    finally:
        code = stop(detector)
    assert code == 0, (tmp_path / "detector.log").read_text()[-3000:]
    assert len(alerts) == attacks
    assert {alert_decoder.decode(value).attack_cat for value in alerts} - {"Normal"}

    tail = run_tool(
        [tool("nids-alerts"), "--json", "--from-beginning", "--limit", "20"],
        service_env(secure_broker, "alerts", topics),
        timeout=90,
    )
    assert tail.returncode == 0, tail.stderr
    printed = [alert_decoder.decode(line) for line in tail.stdout.splitlines()]
    assert len(printed) == 20


def test_a_client_without_credentials_is_refused(secure_broker: SecureBroker, unique_name: str) -> None:
    topics, _ = secure_broker.grant(unique_name)
    tls_only = {
        "bootstrap.servers": secure_broker.bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": str(secure_broker.tls / "ca.pem"),
        "message.timeout.ms": 5000,
    }
    errors: list[object] = []
    producer = Producer(tls_only)
    producer.produce(topics.flows, b"{}", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(15)
    assert len(errors) == 1 and errors[0] is not None  # never delivered

    env = service_env(secure_broker, "replay", topics)
    settings = json.loads(env["NIDS_KAFKA_LIBRDKAFKA"])
    env["NIDS_KAFKA_LIBRDKAFKA"] = json.dumps({**settings, "sasl.password": "not-the-password"})
    error = refused(["nids-replay", "--synthetic", "--limit", "100"], env)
    assert error.startswith("User:replay: the broker refused the credentials"), error
    assert read_all(secure_broker, topics.flows, 1, timeout=3) == []


def test_the_detectors_principal_cannot_write_the_flow_topic(secure_broker: SecureBroker, unique_name: str) -> None:
    topics, _ = secure_broker.grant(unique_name)
    started = time.monotonic()
    error = refused(["nids-replay", "--synthetic", "--limit", "100"], service_env(secure_broker, "detector", topics))
    assert error.startswith(f"User:detector may not WRITE topic '{topics.flows}' (TOPIC_AUTHORIZATION_FAILED)"), error
    assert time.monotonic() - started < 30  # refused, not retried
    assert read_all(secure_broker, topics.flows, 1, timeout=3) == []


def test_a_detector_missing_an_acl_stops_with_one_line(
    secure_broker: SecureBroker, unique_name: str, trained_model: Path
) -> None:
    """Given the replay's credentials, the detector may not read its group: it stops at once, exit 2."""
    topics, group = secure_broker.grant(unique_name)
    env = service_env(
        secure_broker, "replay", topics, DETECTOR_GROUP_ID=group, DETECTOR_MODEL=str(trained_model), METRICS_PORT="0"
    )
    error = refused(["nids-detect"], env)
    assert error.startswith(f"User:replay may not READ group '{group}' (GROUP_AUTHORIZATION_FAILED)"), error


def test_the_replays_principal_cannot_read_alerts(secure_broker: SecureBroker, unique_name: str) -> None:
    topics, _ = secure_broker.grant(unique_name)
    producer = Producer(secure_broker.client_config("detector", **{"enable.idempotence": True}))
    producer.produce(topics.alerts, b"{}")
    assert producer.flush(15) == 0

    # Even given a group of its own (a right no role has), the replay may not read the alert topic.
    probe_group = f"{unique_name}-probe"
    create_acls(
        secure_broker.client_config("admin"),
        [
            AclBinding(
                ResourceType.GROUP,
                probe_group,
                ResourcePatternType.LITERAL,
                "User:replay",
                "*",
                AclOperation.READ,
                AclPermissionType.ALLOW,
            )
        ],
    )
    reader = Consumer(secure_broker.client_config("replay", **{"group.id": probe_group, "enable.auto.commit": False}))
    reader.subscribe([topics.alerts])
    seen = [m for m in (reader.poll(1.0) for _ in range(15)) if m is not None]
    reader.close()
    assert seen and all(m.error() is not None for m in seen)
    assert {m.error().name() for m in seen} == {"TOPIC_AUTHORIZATION_FAILED"}

    error = refused(["nids-alerts", "--from-beginning", "--limit", "1"], service_env(secure_broker, "replay", topics))
    assert error.startswith("User:replay may not READ"), error


def test_incidents_run_as_their_own_principal_with_only_its_rights(
    secure_broker: SecureBroker, unique_name: str, tmp_path: Path
) -> None:
    """nids-incidents as User:incidents, exactly_once: it creates its own topics, reads the alerts in its
    group, writes incidents in transactions, and after a restart restores its state from its changelog;
    the alerts role reads the incidents; no role writes the other's topic."""
    topics, _ = secure_broker.grant(unique_name)
    config = run_incidents_config(
        secure_broker.bootstrap, unique_name, topics.alerts, partitions=2, delivery="exactly_once"
    )
    sources = 20
    produce_alerts(secure_broker.client_config("detector"), topics.alerts, synthetic_alerts(2000, sources))
    log = tmp_path / "incidents.log"
    role = secure_broker.env("incidents")
    first = start_incidents(config, log, role_env=role)
    try:
        records = read_all(secure_broker, config.topics.incidents, sources, timeout=90)
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0, log.read_text()[-3000:]
    incidents = [incident_decoder.decode(value) for value in records]
    assert len({incident.key.text for incident in incidents if incident.key.by == "src"}) == sources

    port = free_port()
    second = start_incidents(config, log, metrics_port=port, role_env=role)
    try:
        restored = wait_until(lambda: scrape_total(port, "nids_incident_restored_keys_total") >= sources, 90)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()[-3000:]
    assert restored, log.read_text()[-3000:]

    tail = run_tool(
        [tool("nids-alerts"), "--incidents", "--incidents-topic", config.topics.incidents, "--json", "--limit", "5"],
        service_env(secure_broker, "alerts", topics),
        timeout=90,
    )
    assert tail.returncode == 0, tail.stderr
    assert len([incident_decoder.decode(line) for line in tail.stdout.splitlines()]) == 5

    # Its topics' settings are readable to it: refused writes can say which partitions are short.
    admin = AdminClient(secure_broker.client_config("incidents"))
    visible = admin.list_topics(timeout=30).topics
    assert set(config.output_topics()) <= set(visible)
    assert partitions_below_min_insync(admin, config.output_topics()) == {}

    assert _refused_write(secure_broker, "incidents", topics.alerts) == "TOPIC_AUTHORIZATION_FAILED"
    assert _refused_write(secure_broker, "detector", config.topics.incidents) == "TOPIC_AUTHORIZATION_FAILED"


def _refused_write(broker: SecureBroker, role: str, topic: str) -> str | None:
    """The error one record written to `topic` as `role` gets (None: it was written)."""
    errors: list[KafkaError | None] = []
    producer = Producer(broker.client_config(role, **{"message.timeout.ms": 5000}))
    producer.produce(topic, b"{}", on_delivery=lambda error, _message: errors.append(error))
    producer.flush(15)
    (error,) = errors
    return None if error is None else error.name()


def test_a_role_may_create_only_its_own_topics(secure_broker: SecureBroker, unique_name: str) -> None:
    secure_broker.grant(unique_name)
    other = f"{unique_name}.not-its-own"
    with pytest.raises(AccessDenied) as refusal:
        ensure_topics(secure_broker.client_config("incidents"), {other: 1})
    assert str(refusal.value).startswith(f"User:incidents may not CREATE topic '{other}' (TOPIC_AUTHORIZATION_FAILED)")


def test_prometheus_scrapes_the_metrics_endpoint_over_tls_with_a_client_certificate(
    secure_broker: SecureBroker, prometheus_binary: str, tmp_path: Path
) -> None:
    tls = secure_broker.tls
    metrics = DetectorMetrics(CollectorRegistry())
    metrics.scored.inc(7)
    port, prometheus_port = free_port(), free_port()
    serve_metrics(
        MetricsSettings(
            address="127.0.0.1",
            port=port,
            tls_cert=str(tls / "metrics.pem"),
            tls_key=str(tls / "metrics.key"),
            tls_client_ca=str(tls / "ca.pem"),
        ),
        metrics.registry,
    )
    anonymous = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=anonymous, timeout=5).read()
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # nor is plain HTTP
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()

    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: nids-detector\n    scheme: https\n"
        "    tls_config:\n"
        f"      ca_file: {tls / 'ca.pem'}\n      cert_file: {tls / 'prometheus.pem'}\n"
        f"      key_file: {tls / 'prometheus.key'}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    prometheus = start_prometheus(prometheus_binary, config, tmp_path, prometheus_port)
    base = f"http://127.0.0.1:{prometheus_port}"
    try:
        assert wait_until(lambda: prometheus_ready(base), 30), "prometheus did not become ready"
        assert wait_until(lambda: _value(base, "up{job='nids-detector'}") == 1, 30), "no scrape over TLS"
        assert _value(base, "nids_flows_scored_total") == 7
    finally:
        prometheus.terminate()
        prometheus.wait(20)


def _value(base: str, expr: str) -> float:
    try:
        result = query(base, expr)
    except OSError:
        return float("nan")
    return float(result[0]["value"][1]) if result else float("nan")


def test_a_flood_of_malformed_records_goes_to_the_dead_letter_topic_in_flat_memory(
    secure_broker: SecureBroker, unique_name: str, trained_model: Path, tmp_path: Path
) -> None:
    """100,000 malformed records in a row, then valid flows: every bad one is dead-lettered, the
    detector's resident memory stays flat through the flood, and the valid flows that follow are scored."""
    topics, group = secure_broker.grant(unique_name)
    producer = Producer(
        secure_broker.client_config("replay", **{"linger.ms": 20, "queue.buffering.max.messages": 200_000})
    )
    malformed = 100_000
    for i in range(malformed):
        producer.produce(
            topics.flows, key=f"bad-{i}", value=b'{"flow_id": "x", "dur": "not a number"' if i % 2 else b"\x00"
        )
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    flows = flows_with_identity(1000, seed=44)
    data = write_partitioned(flows, tmp_path / "valid.csv")

    detector = start_detector(secure_broker, topics, group, trained_model, tmp_path)
    rss: list[tuple[int, int]] = []  # (dead letters so far, detector RSS in KiB)
    try:
        deadline = time.monotonic() + 180
        dead_letters = 0
        reader = _counting_reader(secure_broker, topics.dead_letter)
        while dead_letters < malformed and time.monotonic() < deadline and detector.poll() is None:
            dead_letters += sum(1 for m in reader.consume(5000, timeout=0.5) if m.error() is None)
            rss.append((dead_letters, _rss_kib(detector.pid)))
        reader.close()
        replay = run_tool(
            [tool("nids-replay"), "--data", str(data)], service_env(secure_broker, "replay", topics), timeout=120
        )
        assert replay.returncode == 0, replay.stderr
        model, _ = load_model(trained_model)
        attacks = int(model.score(flows).is_attack.sum())
        alerts = read_all(secure_broker, topics.alerts, attacks, timeout=90)
    finally:
        code = stop(detector)
    assert code == 0, (tmp_path / "detector.log").read_text()[-3000:]
    assert dead_letters == malformed
    assert len(alerts) == attacks
    # Once a quarter of the flood is through (the model loaded, batches and buffers at full size),
    # resident memory stays flat: the last third of the samples no higher than the first third
    # (medians, so one allocator swing is not a trend). A leak of 1 KiB per record would add ~70 MiB.
    settled = [kib for done, kib in rss if done >= malformed // 4]
    assert len(settled) >= 6, rss
    third = len(settled) // 3
    growth_mib = (np.median(settled[-third:]) - np.median(settled[:third])) / 1024
    trace = [(done, kib // 1024) for done, kib in rss]
    assert growth_mib < 30, f"RSS grew {growth_mib:.0f} MiB during the flood: (dead letters, MiB) {trace}"
    print(f"detector RSS during the flood, (dead letters, MiB): {trace}")


def _counting_reader(broker: SecureBroker, topic: str) -> Consumer:
    consumer = Consumer(
        broker.client_config(
            "admin",
            **{"group.id": f"count-{topic}", "auto.offset.reset": "earliest", "enable.auto.commit": False},
        )
    )
    consumer.subscribe([topic])
    return consumer


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

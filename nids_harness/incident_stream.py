"""nids-incidents under test and benchmark: alerts to feed it, its config on a run's own topics, the
service as a process, and its outputs read back as a downstream reader sees them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from incidents.cli import build_service
from incidents.clients import ensure_incident_topics
from incidents.config import IncidentsConfig, IncidentSettings, IncidentTopics
from incidents.metrics import IncidentMetrics
from incidents.repartition import decode_run
from nids_common.community_id import community_id
from nids_common.config import KafkaSettings
from nids_common.contract import Alert, AlertSummary, Incident, IncidentStageNames, Source, incident_decoder
from nids_common.kafka import ensure_topics
from nids_common.metrics_server import MetricsSettings
from nids_common.schema import ATTACK_CLASSES
from nids_harness.errors import HarnessError
from nids_harness.reading import downstream_consumer, read_topic
from nids_harness.waiting import wait_until

CATEGORIES = ("Exploits", "DoS", "Reconnaissance", "Generic", "Fuzzers")


def incident_names(name: str, alerts: str) -> IncidentStageNames:
    """The names of nids-incidents on a run's own topics and group, reading `alerts`."""
    return IncidentStageNames(
        alerts=alerts, incidents=f"{name}.incidents", dead_letter=f"{name}.alerts.dlq", group_id=f"{name}-incidents"
    )


def run_incidents_config(
    bootstrap: str, name: str, alerts: str, partitions: int = 6, **settings: Any
) -> IncidentsConfig:
    """nids-incidents' config on the run's own names (`incident_names`); nothing is created."""
    names = incident_names(name, alerts)
    settings.setdefault("instance_id", name)
    return IncidentsConfig(
        kafka=KafkaSettings(bootstrap=bootstrap),
        topics=IncidentTopics(
            alerts=names.alerts, incidents=names.incidents, dead_letter=names.dead_letter, partitions=partitions
        ),
        incidents=IncidentSettings(group_id=names.group_id, **settings),
        metrics=MetricsSettings(port=0),
    )


def incidents_config(
    bootstrap: str, name: str, partitions: int = 6, alerts: str | None = None, **settings: Any
) -> IncidentsConfig:
    """nids-incidents on topics and a group of the run's own, reading `alerts` (default: a new alert
    topic of the run's own, created here), its own topics created."""
    config = run_incidents_config(bootstrap, name, alerts or f"{name}.alerts", partitions, **settings)
    if alerts is None:
        ensure_topics({"bootstrap.servers": bootstrap}, {config.topics.alerts: partitions})
    ensure_incident_topics(config)
    return config


class RunningIncidents:
    """nids-incidents, built as the CLI builds it, on a thread of the calling process."""

    def __init__(self, config: IncidentsConfig) -> None:
        self.metrics = IncidentMetrics(CollectorRegistry(), rules=[rule.name for rule in config.incidents.suppress])
        self.service = build_service(config, self.metrics)
        self.thread = threading.Thread(target=self.service.run, daemon=True)
        self.thread.start()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> bool:
        wait_until(lambda: condition() or not self.thread.is_alive(), timeout)
        return condition()

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found

    def stop(self) -> None:
        self.service.stop()
        self.thread.join(30)
        if self.thread.is_alive():
            raise HarnessError("nids-incidents did not stop within 30 s")


def config_env(config: IncidentsConfig, metrics_port: int = 0) -> dict[str, str]:
    """The NIDS_* variables that give a `nids-incidents` process `config`."""
    settings = config.incidents
    return {
        **os.environ,
        "NIDS_KAFKA_BOOTSTRAP": config.kafka.bootstrap,
        "NIDS_TOPICS_ALERTS": config.topics.alerts,
        "NIDS_TOPICS_INCIDENTS": config.topics.incidents,
        "NIDS_TOPICS_DEAD_LETTER": config.topics.dead_letter,
        "NIDS_TOPICS_PARTITIONS": str(config.topics.partitions),
        "NIDS_INCIDENTS_GROUP_ID": settings.group_id,
        "NIDS_INCIDENTS_INSTANCE_ID": settings.instance_id or "harness",
        "NIDS_INCIDENTS_KEY": settings.key,
        "NIDS_INCIDENTS_IDLE_CLOSE_S": str(settings.idle_close_s),
        "NIDS_INCIDENTS_MAX_DURATION_S": str(settings.max_duration_s),
        "NIDS_INCIDENTS_UPDATE_INTERVAL_S": str(settings.update_interval_s),
        "NIDS_INCIDENTS_DELIVERY": settings.delivery,
        "NIDS_INCIDENTS_MAX_RECORDS": str(settings.max_records),
        "NIDS_METRICS_PORT": str(metrics_port),
    }


def start_incidents(
    config: IncidentsConfig, log: Path, metrics_port: int = 0, role_env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`nids-incidents` as an operator runs it, on `config` (and a role's credentials, `role_env`, on
    the secure broker), its log appended to `log`."""
    env = {**config_env(config, metrics_port), **(role_env or {})}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "incidents.cli"], env=env, stdout=out, stderr=out)


def synthetic_alerts(
    count: int, sources: int, start: float = 1_700_000_000.0, per_second: float = 1000.0
) -> Iterator[Alert]:
    """`count` alerts from `sources` attacking addresses in turn, event times `per_second` apart (as
    live traffic: time only moves forward); every tenth source is silent through the middle third of
    the stream and then attacks again (a second episode), and every 97th alert carries no addresses
    (it groups by attack_cat alone)."""
    silent_from, silent_to = count // 3, 2 * count // 3
    emitted = 0
    index = 0
    while emitted < count:
        source = index % sources
        ts = start + index / per_second
        index += 1
        if source % 10 == 0 and silent_from <= index < silent_to:
            continue
        addressed = emitted % 97 != 0
        category = CATEGORIES[source % len(CATEGORIES)]
        srcip = f"175.45.{176 + source // 256}.{source % 256}" if addressed else msgspec.UNSET
        dstip = f"149.171.126.{10 + emitted % 10}" if addressed else msgspec.UNSET
        sport, dsport = 1024 + emitted % 60000, (80, 443, 21, 53)[emitted % 4]
        yield Alert(
            flow_id=f"alert-{emitted}",
            is_attack=True,
            attack_cat=category,
            attack_probability=0.5 + (emitted % 50) / 100,
            model_version="harness",
            detected_at=ts + 0.05,
            ts=ts,
            source=Source("harness.flows", emitted % 6, emitted),
            # As the detector writes them: a probability for every class.
            class_probabilities={name: 0.9 if name == category else 0.1 / 9 for name in ATTACK_CLASSES},
            srcip=srcip,
            sport=sport,
            dstip=dstip,
            dsport=dsport,
            community_id=community_id(srcip, sport, dstip, dsport, "tcp") if addressed else msgspec.UNSET,
        )
        emitted += 1


def produce_alerts(client: str | Mapping[str, Any], topic: str, alerts: Iterator[Alert]) -> int:
    """Alerts to `topic` keyed by flow_id, as the detector writes them; returns how many. `client`:
    a bootstrap address, or a client's librdkafka settings (a role's on the secure broker)."""
    settings = {"bootstrap.servers": client} if isinstance(client, str) else dict(client)
    producer = Producer({**settings, "enable.idempotence": True, "linger.ms": 20})
    encoder = msgspec.json.Encoder()
    sent = 0
    for alert in alerts:
        while True:
            try:
                producer.produce(topic, encoder.encode(alert), alert.flow_id)
                break
            except BufferError:
                producer.poll(0.1)
        sent += 1
    if producer.flush(60):
        raise RuntimeError(f"{topic}: alerts not all delivered")
    return sent


def latest_incidents(
    bootstrap: str, topic: str, idle_seconds: float = 3.0
) -> tuple[dict[str, Incident], list[Incident]]:
    """Every incident record of `topic` (read_committed) and the latest per incident_id."""
    records = [
        incident_decoder.decode(message.value() or b"")
        for message in read_topic(bootstrap, topic, idle_seconds=idle_seconds)
    ]
    return {incident.incident_id: incident for incident in records}, records


def repartitioned(bootstrap: str, config: IncidentsConfig) -> list[AlertSummary]:
    """The repartition topic's committed alerts, partition by partition in offset order: the sequence
    the stream's incidents came from (the offline reference reads the same)."""
    consumer: Consumer = downstream_consumer(bootstrap, f"{config.incidents.group_id}-reference")
    out: list[AlertSummary] = []
    try:
        for partition in range(config.topics.partitions):
            place = TopicPartition(config.repartition_topic, partition)
            low, high = consumer.get_watermark_offsets(place, timeout=10, cached=False)
            consumer.assign([TopicPartition(config.repartition_topic, partition, low)])
            read_to = low
            while read_to < high:
                batch = consumer.consume(5000, timeout=1.0)
                if not batch:
                    position = consumer.position([place])[0].offset
                    if position >= high:
                        break
                    continue
                for message in batch:
                    if message.error() is None:
                        out.extend(decode_run(message.value() or b""))
                        read_to = (message.offset() or 0) + 1
            consumer.unassign()
    finally:
        consumer.close()
    return out

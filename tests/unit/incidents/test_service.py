"""The incidents loop on the in-memory Kafka stand-in: re-keying, tracking, state in the changelog,
restore on assignment, rewinds, and exactly-once through a failed delivery, without a broker."""

from __future__ import annotations

import collections
import dataclasses
import gc
import weakref
from collections.abc import Sequence
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry

from incidents.clients import client_health
from incidents.config import IncidentsConfig, IncidentSettings, IncidentTopics
from incidents.keys import key_function
from incidents.metrics import IncidentMetrics
from incidents.offline import run_offline
from incidents.repartition import decode_run
from incidents.service import IncidentService
from nids_common.checkpoint import EXACTLY_ONCE, make_checkpoint
from nids_common.config import KafkaSettings
from nids_common.contract import Alert, Incident, incident_decoder
from nids_common.metrics_server import MetricsSettings
from tests.unit.incidents.factory import alert
from tests.unit.kafka_standins import Record, StandInBroker, StandInConsumer, StandInProducer

PARTITIONS = 3


class Clock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class StandInChangelog:
    """Reads the stand-in broker's changelog partition (only committed records are there)."""

    def __init__(self, broker: StandInBroker, topic: str) -> None:
        self.broker, self.topic, self.reads = broker, topic, 0

    def read(self, partitions: Sequence[int]) -> dict[int, list[tuple[bytes, bytes | None]]]:
        self.reads += len(partitions)
        return {
            partition: [(record.key or b"", record.value) for record in self.broker.logs[self.topic][partition]]
            for partition in partitions
        }

    def close(self) -> None:
        pass


@dataclasses.dataclass
class Rig:
    service: IncidentService
    broker: StandInBroker
    consumer: StandInConsumer
    producer: StandInProducer
    changelog: StandInChangelog
    clock: Clock
    config: IncidentsConfig

    def run(self, consume_calls: int = 30, quiet_from: int | None = 20) -> None:
        """Run the loop for `consume_calls` consume() calls; from call `quiet_from` on, processing time
        is two idle periods later (the stream has gone quiet)."""
        if quiet_from is not None:
            self.consumer.on_consume[quiet_from] = lambda _consumer: setattr(self.clock, "now", self.clock.now + 120)
        self.service.run(lambda: self.consumer.consume_calls < consume_calls)

    def incidents(self) -> list[Incident]:
        return [
            incident_decoder.decode(record.value or b"") for record in self.broker.records(self.config.topics.incidents)
        ]

    def latest(self) -> dict[str, Incident]:
        """What a reader of the compacted topic ends up with: the last record per incident."""
        return {incident.incident_id: incident for incident in self.incidents()}


def rig(alerts: list[Alert], *, batch: int = 7, **settings: Any) -> Rig:
    config = IncidentsConfig(
        kafka=KafkaSettings(bootstrap="stand-in:9092"),
        topics=IncidentTopics(
            alerts="unit.alerts", incidents="unit.incidents", dead_letter="unit.dlq", partitions=PARTITIONS
        ),
        incidents=IncidentSettings(group_id="unit-incidents", instance_id="unit", max_records=batch, **settings),
        metrics=MetricsSettings(port=0),
    )
    broker = StandInBroker(
        {
            config.topics.alerts: 2,
            config.repartition_topic: PARTITIONS,
            config.changelog_topic: PARTITIONS,
            config.topics.incidents: PARTITIONS,
            config.topics.dead_letter: 1,
        }
    )
    for index, item in enumerate(alerts):
        broker.append(config.topics.alerts, index % 2, Record(item.flow_id.encode(), msgspec.json.encode(item)))
    metrics = IncidentMetrics(CollectorRegistry(), rules=[rule.name for rule in config.incidents.suppress])
    consumer = StandInConsumer(broker, batch)
    exactly_once = config.incidents.delivery == EXACTLY_ONCE
    producer = StandInProducer(broker, transactional=exactly_once)
    health = client_health(config, metrics)
    checkpoint = make_checkpoint(config.incidents.delivery, consumer, producer, metrics, health.refusals)  # type: ignore[arg-type]
    changelog = StandInChangelog(broker, config.changelog_topic)
    clock = Clock()
    service = IncidentService(config, metrics, consumer, checkpoint, health, changelog, PARTITIONS, clock)  # type: ignore[arg-type]
    return Rig(service, broker, consumer, producer, changelog, clock, config)


def episode(source: str, count: int, start: float = 1000.0, attack_cat: str = "Exploits") -> list[Alert]:
    return [alert(ts=start + i, srcip=source, attack_cat=attack_cat) for i in range(count)]


def mixed_alerts() -> list[Alert]:
    """Three sources, interleaved; the second source pauses past idle_close_s and comes back."""
    first = episode("175.45.176.1", 25)
    second = episode("175.45.176.2", 12) + episode("175.45.176.2", 5, start=1200.0)
    third = episode("175.45.176.3", 3, attack_cat="DoS")
    merged = sorted([*first, *second, *third], key=lambda a: (a.ts or 0.0, a.flow_id))
    return merged


def offline_reference(run: Rig) -> list[Incident]:
    """The offline run over the repartition topic as the stream read it, partition by partition."""
    config = run.config
    alerts = [
        alert
        for partition in sorted(run.broker.logs[config.repartition_topic])
        for record in run.broker.logs[config.repartition_topic][partition]
        for alert in decode_run(record.value or b"")
    ]
    return [
        incident
        for incident in run_offline(alerts, config.incidents, partitions=PARTITIONS)
        if incident.state == "closed"
    ]


def comparable(incident: Incident) -> tuple[Any, ...]:
    """An incident's content, without how it came to close (quiet in a stream, end_of_input offline)."""
    return msgspec.structs.astuple(msgspec.structs.replace(incident, close_reason=None, revision=0))


def test_alerts_of_one_key_become_one_incident_per_episode() -> None:
    run = rig(mixed_alerts(), idle_close_s=60.0)
    run.run()
    latest = run.latest()
    assert all(incident.state == "closed" for incident in latest.values())
    # Alerts of one source arrive through two alert partitions: one of source 1 comes after source
    # 2's second episode moved the stream time past source 1's window, so it is late and opens an
    # incident of its own, marked late (never dropped).
    on_time = collections.Counter(incident.key.text for incident in latest.values() if not incident.late_alerts)
    assert on_time == {"src=175.45.176.1": 1, "src=175.45.176.2": 2, "src=175.45.176.3": 1}
    assert sum(incident.alerts for incident in latest.values()) == 25 + 17 + 3
    opened = [incident for incident in run.incidents() if incident.state == "open"]
    assert len(opened) == len(latest)  # opened once per key and episode
    assert sorted(map(comparable, latest.values())) == sorted(map(comparable, offline_reference(run)))


def test_a_late_alert_joins_the_open_incident_and_is_counted_late() -> None:
    source = "175.45.176.1"
    alerts = [*episode(source, 3), alert(ts=1500.0, srcip=source), alert(ts=1003.0, srcip=source)]
    run = rig([])
    for item in alerts:  # one alert partition: they arrive in this order
        run.broker.append(run.config.topics.alerts, 0, Record(item.flow_id.encode(), msgspec.json.encode(item)))
    run.run()
    incidents = sorted(run.latest().values(), key=lambda i: i.first_ts)
    assert [(i.first_ts, i.alerts, i.late_alerts) for i in incidents] == [(1000.0, 3, 0), (1500.0, 2, 1)]


def test_every_partition_of_the_repartition_topic_holds_whole_keys() -> None:
    run = rig(mixed_alerts())
    run.run()
    owners: dict[str, set[int]] = collections.defaultdict(set)
    key = key_function(run.config.incidents.key)
    for partition, log in run.broker.logs[run.config.repartition_topic].items():
        for record in log:
            for tracked in decode_run(record.value or b""):
                owners[key(tracked)].add(partition)
    assert len(owners) == 3 and all(len(partitions) == 1 for partitions in owners.values())
    assert sum(len(log) for log in run.broker.logs[run.config.topics.alerts].values()) == sum(
        len(decode_run(record.value or b"")) for record in run.broker.records(run.config.repartition_topic)
    )


def test_state_in_the_changelog_survives_a_new_owner() -> None:
    run = rig(episode("175.45.176.1", 30), batch=10)
    run.consumer.on_consume[3] = StandInConsumer.revoke  # the partitions move mid-stream
    run.run()
    assert run.changelog.reads >= 2 * PARTITIONS  # restored on each assignment
    opened = [incident for incident in run.incidents() if incident.state == "open"]
    assert len(opened) == 1
    (closed,) = [incident for incident in run.incidents() if incident.state == "closed"]
    assert closed.alerts == 30


def test_a_failed_delivery_rewinds_and_restores_so_counts_stay_exact_in_exactly_once() -> None:
    run = rig(episode("175.45.176.1", 30), batch=10, delivery="exactly_once")
    run.producer.failing_deliveries = 1
    run.run()
    assert "abort_transaction" in run.producer.calls
    (closed,) = [incident for incident in run.incidents() if incident.state == "closed"]
    assert closed.alerts == 30
    assert [incident.state for incident in run.incidents()].count("open") == 1


def test_what_is_not_an_alert_is_dead_lettered_and_the_rest_tracked() -> None:
    run = rig(episode("175.45.176.1", 4))
    run.broker.append(run.config.topics.alerts, 0, Record(b"bad", b"{not json"))
    run.run()
    (letter,) = run.broker.records(run.config.topics.dead_letter)
    assert letter.value == b"{not json"
    assert dict(letter.headers or [])["nids.reason"] == b"not_json"
    assert run.latest() and sum(i.alerts for i in run.latest().values()) == 4


def test_a_repartition_message_that_is_not_a_run_of_alerts_is_dead_lettered_not_fatal() -> None:
    run = rig(episode("175.45.176.1", 4))
    run.broker.append(run.config.repartition_topic, 1, Record(None, b"written by someone else"))
    run.run()
    (letter,) = run.broker.records(run.config.topics.dead_letter)
    assert letter.value == b"written by someone else"
    assert dict(letter.headers or [])["nids.reason"] == b"bad_type"  # MessagePack reads "w" as the number 119
    assert sum(i.alerts for i in run.latest().values()) == 4


def test_suppressed_alerts_are_counted_per_rule_and_in_their_incident() -> None:
    from incidents.config import SuppressRule

    alerts = episode("175.45.176.1", 10) + episode("175.45.176.1", 5, start=1010.0, attack_cat="Reconnaissance")
    run = rig(alerts, suppress=(SuppressRule(name="recon", attack_cat="Reconnaissance"),))
    run.run()
    (incident,) = run.latest().values()
    assert incident.alerts == 10 and incident.suppressed == 5
    registry = run.service.metrics.registry
    assert registry.get_sample_value("nids_alerts_suppressed_total", {"rule": "recon"}) == 5


def test_a_stopped_exactly_once_service_lets_go_of_its_producer() -> None:
    run = rig(mixed_alerts(), delivery="exactly_once")
    run.run(consume_calls=5, quiet_from=None)
    producer = weakref.ref(run.producer)
    del run
    gc.collect()
    # The transaction watchdog's thread, a root for the collector, held the checkpoint and so the
    # producer until the process ended.
    assert producer() is None

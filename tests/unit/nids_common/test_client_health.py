"""What a client's error does to the service: a fatal producer error stops it, unless its exactly_once
checkpoint renews fenced producers."""

from __future__ import annotations

from confluent_kafka import KafkaError
from prometheus_client import CollectorRegistry

from detector.metrics import DetectorMetrics
from nids_common.client_health import ClientHealth
from tests.unit.kafka_standins import kafka_error

FENCED = kafka_error(KafkaError._FENCED, fatal=True)


METRICS = DetectorMetrics(CollectorRegistry())


def health() -> ClientHealth:
    return ClientHealth({}, {"topic": "flows"}, METRICS)


def test_a_fatal_producer_error_stops_the_service_without_renewal() -> None:
    reported = health()
    reported.on_producer_error(FENCED)
    assert not reported.ok() and reported.fatal is FENCED


def test_a_fatal_producer_error_is_left_to_a_renewing_checkpoint() -> None:
    reported = health()
    reported.producer_renewable = True
    before = METRICS.registry.get_sample_value("nids_kafka_errors_total", {"code": FENCED.name()}) or 0
    reported.on_producer_error(FENCED)
    assert reported.ok() and reported.fatal is None
    assert METRICS.registry.get_sample_value("nids_kafka_errors_total", {"code": FENCED.name()}) == before + 1


def test_a_fatal_consumer_error_stops_the_service_whatever_the_producer_does() -> None:
    reported = health()
    reported.producer_renewable = True
    reported.on_error(FENCED)
    assert not reported.ok()

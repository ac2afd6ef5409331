"""The librdkafka settings the stream services share."""

from __future__ import annotations

import pytest

from nids_common.config import KafkaSettings
from nids_common.stream_clients import consumer_settings, producer_settings


def _ignore(*_args: object) -> None:
    return None


def _both(kafka: KafkaSettings) -> list[dict[str, object]]:
    return [
        consumer_settings(kafka, "group", _ignore, _ignore),
        producer_settings(kafka, _ignore, "transactional-id"),
    ]


@pytest.mark.parametrize("which", [0, 1])
def test_a_crashed_coordinator_is_retried_at_least_every_second(which: int) -> None:
    settings = _both(KafkaSettings())[which]
    assert settings["reconnect.backoff.max.ms"] == 1000


@pytest.mark.parametrize("which", [0, 1])
def test_the_operators_librdkafka_keys_come_last(which: int) -> None:
    kafka = KafkaSettings(librdkafka={"reconnect.backoff.max.ms": 5000, "acks": "1"})
    settings = _both(kafka)[which]
    assert settings["reconnect.backoff.max.ms"] == 5000
    assert settings["acks"] == "1"


def test_exactly_once_producers_are_idempotent_acks_all_and_time_transactions_out() -> None:
    settings = producer_settings(KafkaSettings(), _ignore, "transactional-id")
    assert (settings["acks"], settings["enable.idempotence"]) == ("all", True)
    assert settings["transactional.id"] == "transactional-id"
    assert settings["transaction.timeout.ms"] == 10_000
    assert "transactional.id" not in producer_settings(KafkaSettings(), _ignore, None)

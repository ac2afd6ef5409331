"""Metrics exposition: every label value at start, bulk histogram observation, lag from statistics."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from detector.metrics import DetectorMetrics, observe_many
from nids_common.contract import DEAD_LETTER_REASONS
from nids_common.schema import ATTACK_CLASSES


def _without_created(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_bulk_observe_equals_one_by_one() -> None:
    values = np.array([0.0005, 0.001, 0.0011, 0.2, 0.25, 0.7, 9.0, 42.0])
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("h", "h", buckets=(0.001, 0.25, 1.0, 10.0), registry=one)
    h2 = Histogram("h", "h", buckets=(0.001, 0.25, 1.0, 10.0), registry=bulk)
    for value in values:
        h1.observe(value)
    observe_many(h2, values)
    assert _without_created(one) == _without_created(bulk)


def test_every_label_value_initialised_at_start() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    metrics.set_model("v1")
    text = generate_latest(metrics.registry).decode()
    for reason in DEAD_LETTER_REASONS:
        assert f'nids_invalid_records_total{{reason="{reason}"}} 0.0' in text
    for cat in ATTACK_CLASSES:
        if cat != "Normal":
            assert f'nids_alerts_total{{attack_cat="{cat}"}} 0.0' in text
    assert text.count("nids_classifications_total{") == len(ATTACK_CLASSES) ** 2
    assert 'nids_model_info{version="v1"} 1.0' in text
    assert "process_resident_memory_bytes" in text


def test_classification_counts() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    metrics.count_classifications(
        np.array(["DoS", "DoS", "Normal"], dtype=object), np.array(["DoS", "Exploits", "Normal"], dtype=object)
    )
    sample = metrics.registry.get_sample_value
    assert sample("nids_classifications_total", {"actual": "DoS", "predicted": "DoS"}) == 1
    assert sample("nids_classifications_total", {"actual": "DoS", "predicted": "Exploits"}) == 1
    assert sample("nids_classifications_total", {"actual": "Normal", "predicted": "Normal"}) == 1


def test_consumer_lag_from_librdkafka_statistics() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    metrics.assign_partitions([0])
    metrics.assign_partitions([1, 2])  # incremental: added to partition 0
    metrics.revoke_partitions([2])
    metrics.record_statistics(
        '{"topics": {"flows": {"partitions": {"0": {"consumer_lag": 12}, "1": {"consumer_lag": -1},'
        ' "-1": {"consumer_lag": 5}}}}}',
        "flows",
    )
    assert metrics.registry.get_sample_value("nids_consumer_lag", {"partition": "0"}) == 12
    assert metrics.registry.get_sample_value("nids_consumer_lag", {"partition": "1"}) == 0
    assert metrics.registry.get_sample_value("nids_consumer_lag", {"partition": "2"}) is None

"""Metrics exposition, bulk histogram observation, the replay pacer, the JSON wire encoding."""
from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from detector.decode import REASONS
from detector.metrics import DetectorMetrics, observe_many
from nids_common.schema import ATTACK_CLASSES
from producer.replay import Pacer


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
    for reason in REASONS:
        assert f'nids_invalid_records_total{{reason="{reason}"}} 0.0' in text
    for cat in ATTACK_CLASSES:
        if cat != "Normal":
            assert f'nids_alerts_total{{attack_cat="{cat}"}} 0.0' in text
    assert text.count("nids_classifications_total{") == len(ATTACK_CLASSES) ** 2
    assert 'nids_model_info{version="v1"} 1.0' in text
    assert "process_resident_memory_bytes" in text


def test_classification_counts() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    metrics.count_classifications(np.array(["DoS", "DoS", "Normal"], dtype=object), np.array(["DoS", "Exploits", "Normal"], dtype=object))
    sample = metrics.registry.get_sample_value
    assert sample("nids_classifications_total", {"actual": "DoS", "predicted": "DoS"}) == 1
    assert sample("nids_classifications_total", {"actual": "DoS", "predicted": "Exploits"}) == 1
    assert sample("nids_classifications_total", {"actual": "Normal", "predicted": "Normal"}) == 1


def test_consumer_lag_from_librdkafka_statistics() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    metrics.set_partitions([0, 1])
    metrics.record_statistics('{"topics": {"flows": {"partitions": {"0": {"consumer_lag": 12}, "1": {"consumer_lag": -1},'
                              ' "-1": {"consumer_lag": 5}}}}}', "flows")
    assert metrics.registry.get_sample_value("nids_consumer_lag", {"partition": "0"}) == 12
    assert metrics.registry.get_sample_value("nids_consumer_lag", {"partition": "1"}) == 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_pacer_holds_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=1000, speedup=0, clock=clock, sleep=clock.sleep)
    for sent in range(0, 10_001, 200):
        pacer.wait(sent, None)
    assert abs(clock.now - 100.0 - 10.0) < 1e-9


def test_pacer_follows_event_time_with_speedup() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=0, speedup=10, clock=clock, sleep=clock.sleep)
    for event_time in (1000.0, 1000.0, 1005.0, 1020.0):
        pacer.wait(0, event_time)
    assert abs(clock.now - 102.0) < 1e-9


def test_unthrottled_pacer_never_sleeps() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=0, speedup=0, clock=clock, sleep=clock.sleep)
    for sent in range(0, 100_000, 200):
        pacer.wait(sent, 5.0)
    assert clock.slept == 0


def test_looped_files_are_cached_and_read_ahead_preserves_order(tmp_path) -> None:
    from producer.replay import file_chunks, read_ahead
    from tests.fixtures import flows_with_identity, write_partitioned

    path = write_partitioned(flows_with_identity(120, seed=3), tmp_path / "f.csv")
    chunks = read_ahead(file_chunks([path], chunk_rows=50, loop=True, shuffle=False, seed=0))
    ids = [chunk["id"].tolist() for _, chunk in zip(range(7), chunks)]
    assert [len(c) for c in ids] == [50, 50, 20, 50, 50, 20, 50]
    assert ids[0] == ids[3] == ids[6] and ids[0][0] == 1


def test_read_ahead_raises_the_readers_error() -> None:
    import pytest

    from producer.replay import read_ahead

    def broken():
        yield 1
        raise ValueError("bad chunk")

    reader = read_ahead(broken())
    assert next(reader) == 1
    with pytest.raises(ValueError, match="bad chunk"):
        next(reader)

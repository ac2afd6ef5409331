from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nids_harness.metrics import parse_samples, total


def exposition() -> str:
    registry = CollectorRegistry()
    Counter("flows", "Flows.", registry=registry).inc(7)
    alerts = Counter("alerts", "Alerts.", ["attack_cat"], registry=registry)
    alerts.labels(attack_cat="DoS").inc(3)
    alerts.labels(attack_cat="Exploits").inc(4)
    Gauge("info", "Info.", ["version"], registry=registry).labels(version='a "quoted" \\ one,{x}').set(1)
    Histogram("latency", "Latency.", buckets=(0.1, 1.0), registry=registry).observe(0.5)
    return generate_latest(registry).decode()


def test_parse_samples_agrees_with_prometheus_clients_parser() -> None:
    text = exposition()
    expected = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert parse_samples(text.splitlines()) == expected


def test_total_sums_the_samples_whose_labels_match() -> None:
    samples = parse_samples(exposition().splitlines())
    assert total(samples, "flows_total") == 7
    assert total(samples, "alerts_total") == 7
    assert total(samples, "alerts_total", attack_cat="DoS") == 3
    assert total(samples, "alerts_total", attack_cat="Worms") == 0
    assert total(samples, "latency_bucket", le="+Inf") == 1
    assert total(samples, "info", version='a "quoted" \\ one,{x}') == 1

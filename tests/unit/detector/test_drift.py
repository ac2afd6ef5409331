"""Drift metrics: stable traffic reads as stable, shifted traffic as drift; out-of-range values and
unseen categories are counted per feature; predicted-class shares follow a sliding window."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from detector.drift import WINDOW_ROWS, DriftMonitor
from detector.metrics import DetectorMetrics
from nids_model.profile import make_profile

FEATURES = ("proto", "dur", "sbytes")
VOCABULARIES = {"proto": ("tcp", "udp")}


def training_matrix(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = np.empty((rows, 3), dtype=np.float32)
    matrix[:, 0] = rng.integers(0, 2, rows)  # proto codes within the vocabulary
    matrix[:, 1] = rng.exponential(1.0, rows)
    matrix[:, 2] = rng.normal(500.0, 50.0, rows)
    return matrix


def monitor(metrics: DetectorMetrics) -> DriftMonitor:
    predicted = np.array(["Normal"] * 700 + ["DoS"] * 300, dtype=object)
    profile = make_profile(training_matrix(20_000, seed=1), FEATURES, VOCABULARIES, predicted, ("DoS", "Normal"))
    return DriftMonitor(profile, metrics, publish_every_s=0.0)


def value(metrics: DetectorMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_traffic_like_training_reads_as_stable() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    drift = monitor(metrics)
    drift.observe(training_matrix(20_000, seed=2), np.array(["Normal"] * 20_000, dtype=object))
    assert value(metrics, "nids_feature_drift_psi", feature="dur") < 0.02
    assert value(metrics, "nids_feature_drift_psi", feature="sbytes") < 0.02
    assert value(metrics, "nids_reference_class_share", attack_cat="DoS") == 0.3


def test_shifted_traffic_reads_as_drift_and_out_of_range() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    drift = monitor(metrics)
    shifted = training_matrix(20_000, seed=3)
    shifted[:, 2] += 400.0  # every sbytes far above the training distribution
    shifted[:100, 0] = len(VOCABULARIES["proto"])  # the unseen-category code
    drift.observe(shifted, np.array(["DoS"] * 20_000, dtype=object))
    assert value(metrics, "nids_feature_drift_psi", feature="sbytes") > 1.0
    assert value(metrics, "nids_feature_drift_psi", feature="dur") < 0.02
    assert value(metrics, "nids_feature_out_of_range_total", feature="sbytes") > 10_000
    assert value(metrics, "nids_unseen_category_total", feature="proto") == 100
    assert value(metrics, "nids_predicted_class_share", attack_cat="DoS") == 1.0


def test_the_window_forgets_old_batches() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    drift = monitor(metrics)
    shifted = training_matrix(4_000, seed=4)
    shifted[:, 2] += 400.0
    drift.observe(shifted, np.array(["DoS"] * 4_000, dtype=object))
    assert value(metrics, "nids_feature_drift_psi", feature="sbytes") > 1.0
    for seed in range(5, 5 + WINDOW_ROWS // 4_000 + 2):
        drift.observe(training_matrix(4_000, seed=seed), np.array(["Normal"] * 4_000, dtype=object))
    assert value(metrics, "nids_feature_drift_psi", feature="sbytes") < 0.05
    assert value(metrics, "nids_predicted_class_share", attack_cat="DoS") == 0.0


def test_bins_match_searchsorted_and_the_gauges_are_set_at_most_every_interval() -> None:
    metrics = DetectorMetrics(CollectorRegistry())
    predicted = np.array(["Normal"] * 1_000, dtype=object)
    profile = make_profile(training_matrix(20_000, seed=1), FEATURES, VOCABULARIES, predicted, ("DoS", "Normal"))
    clock = iter([0.0, 0.0, 0.5, 1.5, 1.5])
    drift = DriftMonitor(profile, metrics, publish_every_s=1.0, now=lambda: next(clock))
    batch = training_matrix(2_000, seed=9)
    drift.observe(batch, np.array(["Normal"] * 2_000, dtype=object))
    for index, (column, edges) in enumerate(zip(drift.columns, drift.edges, strict=True)):
        expected = np.bincount(np.searchsorted(edges, batch[:, column], side="right"), minlength=len(edges) + 1)
        assert drift._counts[index].tolist() == expected.tolist()
    first = value(metrics, "nids_feature_drift_psi", feature="sbytes")
    shifted = training_matrix(2_000, seed=10)
    shifted[:, 2] += 400.0
    drift.observe(shifted, np.array(["DoS"] * 2_000, dtype=object))  # 0.5 s later: counted, not yet published
    assert value(metrics, "nids_feature_drift_psi", feature="sbytes") == first
    drift.observe(shifted, np.array(["DoS"] * 2_000, dtype=object))  # 1.5 s: published
    assert value(metrics, "nids_feature_drift_psi", feature="sbytes") > first + 0.5

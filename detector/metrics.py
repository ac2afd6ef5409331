"""Every Prometheus metric of the detector, declared once; label values initialised at start."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector

from detector.values import RELOAD_RESULTS, BatchOutcome, Stage
from nids_common.contract import DEAD_LETTER_REASONS
from nids_common.metrics_server import KafkaClientMetrics
from nids_common.schema import ATTACK_CLASSES, CATEGORICAL_FEATURES, NORMAL, NUMERIC_FEATURES

BATCH_RECORD_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Output:
    """The detector's outputs, as the `output` label of nids_outputs_refused_total."""

    ALERTS = "alerts"
    VERDICTS = "verdicts"
    DEAD_LETTERS = "dead_letters"
    ALL = (ALERTS, VERDICTS, DEAD_LETTERS)


@dataclasses.dataclass
class Totals:
    """Running totals of the counters the status line and the shutdown log show (the counters
    themselves only export)."""

    consumed: int = 0
    scored: int = 0
    alerts: int = 0
    invalid: int = 0


class DetectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, classes: Sequence[str] = ATTACK_CLASSES) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.consumed = Counter("nids_flows_consumed", "Flow messages consumed from the input topic.", registry=r)
        self.scored = Counter("nids_flows_scored", "Valid flows scored by the model.", registry=r)
        self.alerts = Counter("nids_alerts", "Alerts produced, by attack category.", ["attack_cat"], registry=r)
        self.invalid = Counter(
            "nids_invalid_records", "Messages sent to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        self.classifications = Counter(
            "nids_classifications",
            "Scored flows with ground truth, by actual and predicted attack_cat.",
            ["actual", "predicted"],
            registry=r,
        )
        self.batch_records = Histogram(
            "nids_batch_records", "Messages per micro-batch.", buckets=BATCH_RECORD_BUCKETS, registry=r
        )
        self.batch_duration = Histogram(
            "nids_batch_duration_seconds",
            "Wall time to decode, score, produce and commit one batch.",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "nids_end_to_end_latency_seconds",
            "Kafka message timestamp of a flow to the delivery of its alert.",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "nids_consumer_lag", "Messages behind the end of each assigned partition.", ["partition"], registry=r
        )
        self.model_info = Gauge("nids_model_info", "The model in use (value 1).", ["version"], registry=r)
        self.stage_seconds = Counter(
            "nids_stage_seconds",
            "Seconds spent per stage: the loop's (consume … metrics) and the scorer thread's (models, drift).",
            ["stage"],
            registry=r,
        )
        for stage in (*Stage.LOOP, *Stage.SCORER):
            self.stage_seconds.labels(stage=stage)
        client = KafkaClientMetrics.declare(r, "Alert, verdict or dead-letter messages")
        self.delivery_failures, self.kafka_errors = client.delivery_failures, client.kafka_errors
        self.broker_up, self.producer_renewals = client.broker_up, client.producer_renewals
        self.below_min_insync = client.below_min_insync
        self.model_reloads = Counter(
            "nids_model_reloads",
            "New model versions seen while running: loaded (live) or refused (checks failed).",
            ["result"],
            registry=r,
        )
        self.out_of_range = Counter(
            "nids_feature_out_of_range",
            "Feature values outside the range of the live model's training data.",
            ["feature"],
            registry=r,
        )
        self.unseen_category = Counter(
            "nids_unseen_category", "Category values the live model's training data never had.", ["feature"], registry=r
        )
        self.drift_psi = Gauge(
            "nids_feature_drift_psi",
            "Population stability index of the last 100,000 rows against the training data's bins.",
            ["feature"],
            registry=r,
        )
        self.predicted_share = Gauge(
            "nids_predicted_class_share",
            "Share of each predicted attack_cat over the last 100,000 rows.",
            ["attack_cat"],
            registry=r,
        )
        self.reference_share = Gauge(
            "nids_reference_class_share",
            "Share of each attack_cat the live model predicted on its validation rows.",
            ["attack_cat"],
            registry=r,
        )
        self.refused = Counter(
            "nids_outputs_refused",
            "Outputs the producer refused outright (e.g. larger than message.max.bytes): logged and skipped.",
            ["output"],
            registry=r,
        )
        self.classes = tuple(classes)
        for cat in self.classes:
            if cat != NORMAL:
                self.alerts.labels(attack_cat=cat)
            for predicted in self.classes:
                self.classifications.labels(actual=cat, predicted=predicted)
        for feature in NUMERIC_FEATURES:
            self.out_of_range.labels(feature=feature)
            self.drift_psi.labels(feature=feature)
        for feature in CATEGORICAL_FEATURES:
            self.unseen_category.labels(feature=feature)
        for cat in self.classes:
            self.predicted_share.labels(attack_cat=cat)
            self.reference_share.labels(attack_cat=cat)
        for result in RELOAD_RESULTS:
            self.model_reloads.labels(result=result)
        for output in Output.ALL:
            self.refused.labels(output=output)
        for reason in DEAD_LETTER_REASONS:
            self.invalid.labels(reason=reason)
        self.broker_up.set(1)
        self.totals = Totals()

    def set_model(self, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)

    def assign_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions this member now owns as well (an incremental assignment adds to the others)."""
        for partition in partitions:
            self.lag.labels(partition=str(partition)).set(0)

    def revoke_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions this member no longer owns (revoked or lost)."""
        for partition in partitions:
            with contextlib.suppress(KeyError):
                self.lag.remove(str(partition))

    def record_statistics(self, stats_json: str, topic: str) -> None:
        """librdkafka's statistics callback carries the consumer lag of every assigned partition."""
        stats = json.loads(stats_json)
        partitions = stats.get("topics", {}).get(topic, {}).get("partitions", {})
        for name, partition in partitions.items():
            lag = partition.get("consumer_lag", -1)
            if name != "-1" and lag >= 0:
                self.lag.labels(partition=name).set(lag)

    def set_reference_classes(self, shares: Mapping[str, float]) -> None:
        for cat, share in shares.items():
            self.reference_share.labels(attack_cat=cat).set(share)

    def total_lag(self) -> float:
        return float(sum(sample.value for metric in self.lag.collect() for sample in metric.samples))

    def record_batch(self, outcome: BatchOutcome, seconds: float) -> None:
        """Everything one completed batch adds: counts, dead-letter reasons, alerts by class, the
        confusion counts of flows with ground truth, end-to-end latency of the alerts, batch size and time."""
        self.consumed.inc(outcome.messages)
        self.scored.inc(outcome.scored)
        for reason, n in outcome.invalid_by_reason.items():
            self.invalid.labels(reason=reason).inc(n)
        self.count_alerts(outcome.alert_classes)
        self.count_classifications(outcome.actual, outcome.predicted)
        if len(outcome.alert_created_ms):
            observe_many(self.latency, np.maximum(time.time() - outcome.alert_created_ms / 1000.0, 0.0))
        self.batch_records.observe(outcome.consumed_records)
        self.batch_duration.observe(seconds)
        self.broker_up.set(1)
        totals = self.totals
        totals.consumed += outcome.messages
        totals.scored += outcome.scored
        totals.invalid += outcome.invalid
        totals.alerts += outcome.alerts

    def record_stages(self, seconds: Mapping[str, float]) -> None:
        for stage, spent in seconds.items():
            self.stage_seconds.labels(stage=stage).inc(spent)

    def record_reload(self, result: str) -> None:
        """A new model version went live (`loaded`) or failed its checks (`refused`)."""
        self.model_reloads.labels(result=result).inc()

    def count_classifications(self, actual: np.ndarray, predicted: np.ndarray) -> None:
        # Counter hashes the (actual, predicted) pairs in C; np.unique would sort object arrays.
        for (a, p), n in collections.Counter(zip(actual.tolist(), predicted.tolist())).items():
            self.classifications.labels(actual=a, predicted=p).inc(n)

    def count_alerts(self, attack_cats: np.ndarray) -> None:
        for name, n in collections.Counter(attack_cats.tolist()).items():
            self.alerts.labels(attack_cat=name).inc(n)


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """Observe a whole batch at once: one np.searchsorted instead of one Python call per value.

    Uses the client's bucket counters directly (their layout has been stable across releases); the
    exposition is identical to calling observe() per value.
    """
    if not len(values):
        return
    bounds = np.asarray(histogram._upper_bounds, dtype=float)
    indices = np.searchsorted(bounds, values, side="left")
    counts = np.bincount(indices, minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts):
        if count:
            bucket.inc(float(count))
    histogram._sum.inc(float(np.sum(values)))

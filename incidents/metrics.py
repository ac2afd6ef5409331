"""Every Prometheus metric of nids-incidents, declared once; label values initialised at start."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector

from nids_common.contract import DEAD_LETTER_REASONS, Incident
from nids_common.metrics_server import KafkaClientMetrics
from nids_common.schema import ATTACK_CLASSES, NORMAL

INCIDENT_STATES = ("open", "update", "closed")
SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class IncidentMetrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        rules: Sequence[str] = (),
        classes: Sequence[str] = ATTACK_CLASSES,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.alerts_read = Counter("nids_incident_alerts_read", "Alert messages read from the alert topic.", registry=r)
        self.alerts_tracked = Counter(
            "nids_incident_alerts_tracked", "Alerts counted into incidents (suppressed ones included).", registry=r
        )
        self.records = Counter("nids_incident_records", "Incident records written, by state.", ["state"], registry=r)
        self.opened = Counter(
            "nids_incidents_opened",
            "Incidents opened, by the attack_cat of their first alert.",
            ["attack_cat"],
            registry=r,
        )
        self.open = Gauge("nids_incidents_open", "Incidents open in this member's partitions.", registry=r)
        self.suppressed = Counter(
            "nids_alerts_suppressed", "Alerts a suppression rule kept out of incidents, by rule.", ["rule"], registry=r
        )
        self.late = Counter(
            "nids_incident_late_alerts", "Alerts older than their incident's window (counted in it).", registry=r
        )
        self.invalid = Counter(
            "nids_incident_invalid_records",
            "Alert messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.restore_seconds = Histogram(
            "nids_incident_restore_seconds",
            "Time to restore, side by side from the changelog, the open incidents of the partitions one "
            "assignment (or rewind) takes over.",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.restored_keys = Counter(
            "nids_incident_restored_keys", "Keys restored from the changelog on taking a partition.", registry=r
        )
        self.batch_duration = Histogram(
            "nids_incident_batch_duration_seconds",
            "Wall time of one batch, read to commit.",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        client = KafkaClientMetrics.declare(r, "Repartitioned alerts, incidents, state records or dead letters")
        self.delivery_failures, self.kafka_errors = client.delivery_failures, client.kafka_errors
        self.broker_up, self.producer_renewals = client.broker_up, client.producer_renewals
        self.below_min_insync = client.below_min_insync
        for state in INCIDENT_STATES:
            self.records.labels(state=state)
        for cat in classes:
            if cat != NORMAL:
                self.opened.labels(attack_cat=cat)
        for rule in rules:
            self.suppressed.labels(rule=rule)
        for reason in DEAD_LETTER_REASONS:
            self.invalid.labels(reason=reason)

    def record_incidents(self, incidents: Iterable[Incident]) -> None:
        # Counted per batch first: one labels() lookup per state and class, not per record.
        states: collections.Counter[str] = collections.Counter()
        opened: collections.Counter[str] = collections.Counter()
        for incident in incidents:
            states[incident.state] += 1
            if incident.state == "open":
                opened[next(iter(incident.alerts_by_attack_cat), "")] += 1
        for state, n in states.items():
            self.records.labels(state=state).inc(n)
        for cat, n in opened.items():
            self.opened.labels(attack_cat=cat).inc(n)

    def record_suppressed(self, counts: dict[str, int], already: dict[str, int]) -> None:
        """Advance each rule's counter to the suppressor's running count (`already`: what was exported)."""
        for rule, total in counts.items():
            if total > already.get(rule, 0):
                self.suppressed.labels(rule=rule).inc(total - already.get(rule, 0))
                already[rule] = total

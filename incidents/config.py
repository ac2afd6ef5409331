"""nids-incidents' configuration (config/incidents.yaml)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ipaddress
import socket
from collections.abc import Mapping
from pathlib import Path

import msgspec

from nids_common.checkpoint import AT_LEAST_ONCE, Delivery
from nids_common.config import KafkaSettings, load_config
from nids_common.contract import (
    DEFAULT_PARTITIONS,
    INCIDENTS_DEAD_LETTER_TOPIC,
    INCIDENTS_GROUP,
    INCIDENTS_TOPIC,
    IncidentStageNames,
    KeyChoice,
    Priority,
    Topics,
)
from nids_common.metrics_server import MetricsSettings

DEFAULT_PATH = Path("config/incidents.yaml")
# Beside the detector's 9108, so both can run on one host.
INCIDENTS_METRICS_PORT = 9109

DEFAULT_SEVERITY: Mapping[str, Priority] = {
    "Reconnaissance": "low",
    "Fuzzers": "low",
    "Analysis": "medium",
    "Generic": "medium",
    "DoS": "high",
    "Exploits": "high",
    "Backdoor": "critical",
    "Shellcode": "critical",
    "Worms": "critical",
}


@dataclasses.dataclass(frozen=True)
class IncidentTopics:
    alerts: str = Topics.alerts
    incidents: str = INCIDENTS_TOPIC
    # Alert messages that do not decode as alerts, with the reason in headers.
    dead_letter: str = INCIDENTS_DEAD_LETTER_TOPIC
    # Of the incidents, repartition and changelog topics when they are created: the most incident
    # workers one group keeps busy.
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError("partitions: must be >= 1")


class SuppressRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Alerts matching every criterion given (source CIDR, destination CIDR, class) are suppressed
    while their detection time is before `expires`. A struct, not a dataclass, so a misspelt key in
    a rule is refused like one anywhere else."""

    name: str
    src_cidr: str = ""
    dst_cidr: str = ""
    attack_cat: str = ""
    expires: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("name: must not be empty")
        if not (self.src_cidr or self.dst_cidr or self.attack_cat):
            raise ValueError("src_cidr: a rule needs src_cidr, dst_cidr or attack_cat (it would suppress everything)")
        for field in ("src_cidr", "dst_cidr"):
            value = getattr(self, field)
            if value:
                try:
                    ipaddress.ip_network(value)
                except ValueError as exc:
                    raise ValueError(f"{field}: {exc}") from None
        if self.expires is not None and self.expires.tzinfo is None:
            raise ValueError("expires: give a time zone, e.g. 2026-12-31T00:00:00Z")

    @property
    def expires_at(self) -> float:
        """Epoch seconds; infinity for a rule that never expires."""
        return float("inf") if self.expires is None else self.expires.timestamp()


@dataclasses.dataclass(frozen=True)
class PriorityRule:
    """An incident's priority is the highest severity of its classes, moved by these thresholds."""

    # One level up (at most critical) when its most probable alert reaches this …
    raise_at_probability: float = 0.99
    # … one level down (at least low) when none reaches this.
    lower_below_probability: float = 0.6
    # One level up when it holds this many alerts; 0: never.
    raise_at_alerts: int = 1000

    def __post_init__(self) -> None:
        if not 0.0 <= self.lower_below_probability <= self.raise_at_probability <= 1.0:
            raise ValueError("lower_below_probability: must be within 0..raise_at_probability..1")
        if self.raise_at_alerts < 0:
            raise ValueError("raise_at_alerts: must be >= 0")


@dataclasses.dataclass(frozen=True)
class IncidentSettings:
    group_id: str = INCIDENTS_GROUP
    # This member's transactional.id suffix (exactly_once); empty: "<hostname>-<metrics port>".
    # Stable across restarts, distinct per replica: a restarted member fences its previous incarnation.
    instance_id: str = ""
    # A batch closes at this many records or after max_wait_ms, whichever comes first.
    max_records: int = 20_000
    max_wait_ms: int = 50
    # Larger alert messages are dead-lettered (as a prefix, headers say so).
    max_alert_bytes: int = 65_536
    # How long the group waits for a silent member before its partitions (and state) move.
    session_timeout_ms: int = 6000
    # exactly_once: how long the broker keeps one of this member's transactions open. No longer than
    # session_timeout_ms, so a killed member's open transaction is aborted by the time its partitions
    # move, and their next owner reads on at once. A transaction stalled longer (a broker's failover)
    # is aborted: the member renews its producer and reads the batch again.
    transaction_timeout_ms: int = 6000
    key: KeyChoice = "src"
    # An incident closes when no alert of its key came for this long (event time) …
    idle_close_s: float = 60.0
    # … or when it has lasted this long; the key's next alert opens a new one.
    max_duration_s: float = 3600.0
    # The least detection time between two records of one incident (updates come at 10, 100, … alerts).
    update_interval_s: float = 10.0
    delivery: Delivery = AT_LEAST_ONCE
    severity: Mapping[str, Priority] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    # The severity of a class `severity` does not name.
    default_severity: Priority = "medium"
    priority: PriorityRule = dataclasses.field(default_factory=PriorityRule)
    suppress: tuple[SuppressRule, ...] = ()

    def __post_init__(self) -> None:
        if not self.group_id:
            raise ValueError("group_id: must not be empty")
        if self.transaction_timeout_ms < 1000:
            raise ValueError("transaction_timeout_ms: must be >= 1000")
        if self.idle_close_s <= 0:
            raise ValueError("idle_close_s: must be > 0")
        if self.max_duration_s < self.idle_close_s:
            raise ValueError("max_duration_s: must be >= idle_close_s")
        if self.update_interval_s < 0:
            raise ValueError("update_interval_s: must be >= 0")
        names = [rule.name for rule in self.suppress]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"suppress: rule names must be unique, repeated: {', '.join(repeated)}")


@dataclasses.dataclass(frozen=True)
class IncidentsConfig:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    topics: IncidentTopics = dataclasses.field(default_factory=IncidentTopics)
    incidents: IncidentSettings = dataclasses.field(default_factory=IncidentSettings)
    metrics: MetricsSettings = dataclasses.field(default_factory=lambda: MetricsSettings(port=INCIDENTS_METRICS_PORT))
    log_level: str = "INFO"

    @property
    def instance_id(self) -> str:
        if self.incidents.instance_id:
            return self.incidents.instance_id
        host = socket.gethostname()
        return f"{host}-{self.metrics.port}" if self.metrics.port else host

    @functools.cached_property
    def names(self) -> IncidentStageNames:
        """What this service reads and writes, by name (its role's ACLs are granted on the same); made
        once, as the loop asks for its topics every batch."""
        return IncidentStageNames(
            alerts=self.topics.alerts,
            incidents=self.topics.incidents,
            dead_letter=self.topics.dead_letter,
            group_id=self.incidents.group_id,
        )

    @property
    def transactional_id(self) -> str:
        """Stable per group and instance: a restarted member fences its previous incarnation."""
        return f"{self.names.transactional_id_prefix}{self.instance_id}"

    @property
    def repartition_topic(self) -> str:
        return self.names.repartition_topic

    @property
    def changelog_topic(self) -> str:
        return self.names.changelog_topic

    def output_topics(self) -> list[str]:
        """Every topic this service writes."""
        return self.names.written_topics()


def load(path: str | Path = DEFAULT_PATH) -> IncidentsConfig:
    return load_config(IncidentsConfig, path)

"""The stream contract, defined once: topic names, partition counts, message structs, dead-letter headers.

docs/stream-contract.md describes it for people; the detector, the replay, nids-alerts, the demo,
the benchmarks and the tests import it from here instead of re-typing it.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Final, Literal

import msgspec

from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES, IDENTITY_FIELDS, LABEL, NUMERIC_FEATURES

# Partitions of the flow, alert and verdict topics: how many detectors one group can keep busy.
DEFAULT_PARTITIONS: Final = 6
# Dead letters are rare and read in order by a person: one partition.
DEAD_LETTER_PARTITIONS: Final = 1
# The largest dead-letter value: a larger original is cut to this prefix (headers say so). Under
# Kafka's default topic limit (1,048,588 bytes) with room for the key and headers.
DEAD_LETTER_MAX_BYTES: Final = 1_000_000
# Copies of every partition, and how many must have a write before it is acknowledged (producers use
# acks=all): one broker can fail without losing an acknowledged record or stopping writes. A
# cluster with fewer brokers gets what it can hold (nids_common.kafka.replication_for).
REPLICATION_FACTOR: Final = 3
MIN_INSYNC_REPLICAS: Final = 2
# nids-alerts reads in throwaway groups under this prefix: tailing never moves a real consumer's offsets.
ALERTS_GROUP_PREFIX: Final = "nids-alerts-"
# Key, headers and record overhead on top of the value, for the producer's and the topic's limit.
RECORD_OVERHEAD_BYTES: Final = 65_536


@dataclasses.dataclass(frozen=True)
class Topics:
    flows: str = "nids.flows"
    alerts: str = "nids.alerts"
    dead_letter: str = "nids.flows.dlq"
    verdicts: str = "nids.verdicts"
    # Partitions of the flow, alert and verdict topics when they are created: the most detectors one
    # group can keep busy. More can be added later (kafka-topics --alter), never fewer.
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError("partitions: must be >= 1")

    @classmethod
    def named(cls, prefix: str, partitions: int = DEFAULT_PARTITIONS) -> Topics:
        """The four topics under `prefix` (a test's or benchmark's own)."""
        return cls(f"{prefix}.flows", f"{prefix}.alerts", f"{prefix}.dlq", f"{prefix}.verdicts", partitions)

    def configs(self, dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES) -> dict[str, dict[str, str]]:
        """Topic settings to create them with: the dead-letter topic takes what the detector may write."""
        return {self.dead_letter: {"max.message.bytes": str(dead_letter_max_bytes + RECORD_OVERHEAD_BYTES)}}

    def partition_counts(self) -> dict[str, int]:
        """Each topic with the partition count it is created with."""
        return {
            self.flows: self.partitions,
            self.alerts: self.partitions,
            self.dead_letter: DEAD_LETTER_PARTITIONS,
            self.verdicts: self.partitions,
        }


# -- input: one JSON object per flow ---------------------------------------------------------------
FLOW_ID: Final = "flow_id"
EVENT_TIME: Final = "ts"
UNSET = msgspec.UNSET

# Identity fields pass through to alerts untouched (any JSON); ground truth is read leniently
# (metrics only): neither can make a record invalid, and neither is a model feature.
Flow = msgspec.defstruct(
    "Flow",
    [
        (FLOW_ID, str),
        *[(f, str) for f in CATEGORICAL_FEATURES],
        *[(f, float) for f in NUMERIC_FEATURES],
        (EVENT_TIME, float | None, None),
        (LABEL, Any, None),
        (ATTACK_CAT, Any, None),
        *[(f, Any, UNSET) for f in IDENTITY_FIELDS],
    ],
    kw_only=True,
    gc=False,
)


# -- outputs: alerts and verdicts ------------------------------------------------------------------
class Source(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the scored flow was read."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        """`topic[partition]@offset`: how logs, dead letters and readers name a message."""
        return f"{self.topic}[{self.partition}]@{self.offset}"


class AlertSummary(msgspec.Struct, kw_only=True, gc=False):
    """What a scored flow says about who attacked whom, what and when: the fields of a verdict or an
    alert that nids-incidents reads. Decoding skips the others (an alert's probabilities and source)
    unread, in half the time of a whole alert."""

    flow_id: str
    attack_cat: str
    attack_probability: float
    model_version: str
    detected_at: float
    ts: float | None
    srcip: Any = UNSET
    dstip: Any = UNSET
    dsport: Any = UNSET
    # nids_common.community_id of the flow's addresses, ports and proto; absent when it has none.
    community_id: str | msgspec.UnsetType | None = UNSET


class Verdict(AlertSummary, kw_only=True, forbid_unknown_fields=True):
    """One scored flow (topics.verdicts, when enabled). `class_probabilities` is null for flows the
    label model called normal: the attack_cat model does not run on them."""

    is_attack: bool
    source: Source
    class_probabilities: dict[str, float] | None
    sport: Any = UNSET


class Alert(Verdict, kw_only=True, forbid_unknown_fields=True):
    """A verdict whose flow the model calls an attack (topics.alerts): probabilities always present."""

    class_probabilities: dict[str, float]


alert_decoder = msgspec.json.Decoder(Alert)
verdict_decoder = msgspec.json.Decoder(Verdict)
alert_summary_decoder = msgspec.json.Decoder(AlertSummary)


# -- incidents: the alerts of one key while they keep coming (nids-incidents) ------------------------
INCIDENTS_TOPIC: Final = "nids.incidents"
# Alert messages nids-incidents cannot read as alerts: original bytes, the reason in headers.
INCIDENTS_DEAD_LETTER_TOPIC: Final = "nids.alerts.dlq"
INCIDENTS_GROUP: Final = "nids-incidents"


@dataclasses.dataclass(frozen=True)
class IncidentStageNames:
    """Every name nids-incidents reads or writes under: the alerts it reads, the topics it writes, and
    what follows from its group (its own topics, its changelog reader's group, its transactional ids).
    The service and the ACLs of its role both take them from here."""

    alerts: str = Topics.alerts
    incidents: str = INCIDENTS_TOPIC
    dead_letter: str = INCIDENTS_DEAD_LETTER_TOPIC
    group_id: str = INCIDENTS_GROUP

    @property
    def repartition_topic(self) -> str:
        """Alerts re-keyed by incident key: one key's alerts meet in one partition."""
        return f"{self.group_id}-repartition"

    @property
    def changelog_topic(self) -> str:
        """Compacted: each key's latest state, to rebuild a partition's incidents after a restart."""
        return f"{self.group_id}-changelog"

    @property
    def restore_group(self) -> str:
        """The group id of the changelog reader (assigned its partitions; it commits nothing)."""
        return f"{self.group_id}-restore"

    @property
    def transactional_id_prefix(self) -> str:
        """Of every member's transactional.id (exactly_once): the prefix, then the member's instance id."""
        return f"nids-incidents.{self.group_id}."

    def written_topics(self) -> list[str]:
        """Every topic nids-incidents writes (and creates, when it is missing)."""
        return [self.incidents, self.dead_letter, self.repartition_topic, self.changelog_topic]


# What an incident groups by: one address, the two addresses of either direction, each optionally
# with the attack class. Alerts without the addresses a choice needs are grouped by `attack_cat`.
KeyChoice = Literal["src", "dst", "pair", "src+attack_cat", "dst+attack_cat", "pair+attack_cat"]
KEY_CHOICES: Final[tuple[KeyChoice, ...]] = typing.get_args(KeyChoice)
FALLBACK_KEY: Final = "attack_cat"
IncidentState = Literal["open", "update", "closed"]
CloseReason = Literal["idle", "max_duration", "quiet", "end_of_input"]
Priority = Literal["low", "medium", "high", "critical"]
PRIORITIES: Final[tuple[Priority, ...]] = typing.get_args(Priority)


class IncidentKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """`text` is the key itself (state, partitioning, the incidents topic's record key); the rest is
    what it is made of."""

    text: str
    by: str  # a KeyChoice, or FALLBACK_KEY when the alert lacked the addresses the choice needs
    addresses: tuple[str, ...]  # src/dst: that address; pair: both, sorted; the fallback: none
    attack_cat: str | None
    source_unknown: bool


class Counted(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    value: str
    count: int


class SampleFlow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    flow_id: str
    community_id: str | None
    ts: float


class Incident(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """One record of an incident (topics.incidents): `open`, `update`s, then `closed` with its reason.
    Every record carries the whole incident so far; (incident_id, revision) names one record."""

    # gc=False and tuples: a batch makes thousands, in no reference cycle, and the garbage collector
    # walking them cost a third of nids-incidents' time when most alerts opened an incident.
    incident_id: str
    revision: int
    state: IncidentState
    key: IncidentKey
    priority: Priority
    first_ts: float
    last_ts: float
    first_detected_at: float
    last_detected_at: float
    alerts: int
    alerts_by_attack_cat: dict[str, int]
    suppressed: int
    late_alerts: int
    max_attack_probability: float
    top_destinations: tuple[Counted, ...]
    top_ports: tuple[Counted, ...]
    samples: tuple[SampleFlow, ...]
    model_versions: tuple[str, ...]
    close_reason: CloseReason | None = None


incident_decoder = msgspec.json.Decoder(Incident)


# -- dead letters: original bytes, the reason in headers -------------------------------------------
class Reason:
    """Why a message went to the dead-letter topic (header `nids.reason`)."""

    EMPTY: Final = "empty"
    TOO_LARGE: Final = "too_large"
    NOT_JSON: Final = "not_json"
    NOT_OBJECT: Final = "not_object"
    MISSING_FIELD: Final = "missing_field"
    BAD_TYPE: Final = "bad_type"
    NON_FINITE: Final = "non_finite"


DEAD_LETTER_REASONS: Final = (
    Reason.EMPTY,
    Reason.TOO_LARGE,
    Reason.NOT_JSON,
    Reason.NOT_OBJECT,
    Reason.MISSING_FIELD,
    Reason.BAD_TYPE,
    Reason.NON_FINITE,
)


class Header:
    """Dead-letter header names."""

    REASON: Final = "nids.reason"
    FIELD: Final = "nids.field"
    DETAIL: Final = "nids.detail"
    SOURCE: Final = "nids.source"
    # Only on a dead letter whose value is a prefix of the original (the original was too large):
    TRUNCATED: Final = "nids.truncated"  # "true"
    ORIGINAL_SIZE: Final = "nids.original_size"  # bytes, decimal
    ORIGINAL_SHA256: Final = "nids.original_sha256"  # hex digest of the whole original value

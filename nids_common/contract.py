"""The stream contract, defined once: topic names, partition counts, message structs, dead-letter headers.

docs/stream-contract.md describes it for people; the detector, the replay, nids-alerts, the demo,
the benchmarks and the tests import it from here instead of re-typing it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import msgspec

from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES, IDENTITY_FIELDS, LABEL, NUMERIC_FEATURES

# Partitions of the flow, alert and verdict topics: how many detectors one group can keep busy.
DEFAULT_PARTITIONS: Final = 6
# Dead letters are rare and read in order by a person: one partition.
DEAD_LETTER_PARTITIONS: Final = 1


@dataclasses.dataclass(frozen=True)
class Topics:
    flows: str = "nids.flows"
    alerts: str = "nids.alerts"
    dead_letter: str = "nids.flows.dlq"
    verdicts: str = "nids.verdicts"

    def partitions(self, partitions: int = DEFAULT_PARTITIONS) -> dict[str, int]:
        """Each topic with the partition count it is created with."""
        return {
            self.flows: partitions,
            self.alerts: partitions,
            self.dead_letter: DEAD_LETTER_PARTITIONS,
            self.verdicts: partitions,
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


class Verdict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One scored flow (topics.verdicts, when enabled). `class_probabilities` is null for flows the
    label model called normal: the attack_cat model does not run on them."""

    flow_id: str
    is_attack: bool
    attack_cat: str
    attack_probability: float
    model_version: str
    detected_at: float
    ts: float | None
    source: Source
    class_probabilities: dict[str, float] | None
    srcip: Any = UNSET
    sport: Any = UNSET
    dstip: Any = UNSET
    dsport: Any = UNSET


class Alert(Verdict, kw_only=True, forbid_unknown_fields=True):
    """A verdict whose flow the model calls an attack (topics.alerts): probabilities always present."""

    class_probabilities: dict[str, float]


alert_decoder = msgspec.json.Decoder(Alert)
verdict_decoder = msgspec.json.Decoder(Verdict)


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

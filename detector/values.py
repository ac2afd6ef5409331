"""The detector's value types: the live model, a batch on its way to commit, what a completed batch
adds to the metrics, and where a message came from. No threads, clients or metrics live here."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from operator import itemgetter
from pathlib import Path
from typing import Final, cast, overload

import numpy as np
from confluent_kafka import Message

from detector.decode import DecodedBatch, ground_truth
from nids_common.contract import Source
from nids_common.stages import StageTimes
from nids_model.detection import SCORING_STAGES, DetectionModel, Scores
from nids_model.manifest import ReferenceProfile

# Where each row's flow was read: topics, partitions and offsets, one entry per row.
Origin = tuple[Sequence[str], Sequence[int], Sequence[int]]
# What became of a new model version: it went live, or it failed its checks.
LOADED: Final = "loaded"
REFUSED: Final = "refused"
RELOAD_RESULTS: Final = (LOADED, REFUSED)


class Stage:
    """Where the detector's time goes (`nids_stage_seconds_total{stage}`): the loop's stages, then
    the scorer thread's (the model's own, and drift statistics)."""

    CONSUME: Final = "consume"
    DECODE: Final = "decode"
    FEATURES: Final = "features"
    WAIT_FOR_SCORES: Final = "wait_for_scores"  # the loop idle while the scorer thread works
    PAYLOADS: Final = "payloads"
    PRODUCE: Final = "produce"
    COMMIT: Final = "commit"  # flush every output, then commit (the transaction, in exactly_once)
    METRICS: Final = "metrics"
    DRIFT: Final = "drift"
    LOOP: Final = (CONSUME, DECODE, FEATURES, WAIT_FOR_SCORES, PAYLOADS, PRODUCE, COMMIT, METRICS)
    SCORER: Final = (*SCORING_STAGES, DRIFT)


@dataclasses.dataclass(frozen=True)
class LiveModel:
    """A verified, checked model and what the detector shows of it."""

    model: DetectionModel
    version: str
    folder: Path
    profile: ReferenceProfile | None = None  # the manifest's reference profile, for drift metrics


@dataclasses.dataclass
class Batch:
    """A consumed micro-batch from decoding to commit."""

    live: LiveModel  # the model that scores it: its alerts and verdicts carry this version
    consumed: list[Message]  # as consumed, errors included (for the batch-size histogram)
    messages: list[Message]  # without the errors
    decoded: DecodedBatch
    scoring: Future[Scores] | None  # on the scorer thread; None when no message was valid
    started: float  # perf_counter() when it was consumed
    full: bool  # as many records as a batch takes: the topic has a backlog
    # The scorer thread's seconds per stage for this batch: read once `scoring` is done.
    scorer_stages: StageTimes = dataclasses.field(default_factory=StageTimes)
    # Once its outputs are produced: what it adds to the metrics when it is committed.
    produced: BatchOutcome | None = None

    def scores(self) -> Scores | None:
        return self.scoring.result() if self.scoring is not None else None

    def valid_messages(self, rows: np.ndarray) -> list[Message]:
        """The messages of the valid records at `rows` (positions among the valid records)."""
        return list(map(self.messages.__getitem__, self.decoded.valid[rows].tolist()))

    def outcome(self, scores: Scores | None, alert_rows: np.ndarray, alerted: list[Message]) -> BatchOutcome:
        """What this batch, completed and committed, adds to the detector's metrics."""
        decoded = self.decoded
        invalid = collections.Counter(error.reason for _, error in decoded.invalid)
        if scores is None:
            empty = np.empty(0, dtype=object)
            return BatchOutcome(len(self.consumed), len(self.messages), 0, invalid, empty, empty, empty, _NO_TIMES)
        actual, known = ground_truth(decoded.records)
        created_ms = np.fromiter(
            map(itemgetter(1), map(Message.timestamp, alerted)), dtype=np.float64, count=len(alerted)
        )
        return BatchOutcome(
            consumed_records=len(self.consumed),
            messages=len(self.messages),
            scored=len(decoded.valid),
            invalid_by_reason=invalid,
            alert_classes=scores.attack_cat[alert_rows],
            actual=actual[known],
            predicted=scores.attack_cat[known],
            alert_created_ms=created_ms,
        )


_NO_TIMES = np.empty(0, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class BatchOutcome:
    """The counts of one completed batch, as the metrics record them."""

    consumed_records: int  # as consumed, errors included
    messages: int  # without the errors
    scored: int
    invalid_by_reason: Mapping[str, int]
    alert_classes: np.ndarray  # (n_alerts,) object: the attack_cat of each alert
    actual: np.ndarray  # (n_known,) object: ground truth of the flows that carry it …
    predicted: np.ndarray  # (n_known,) object: … and what the model said of them
    alert_created_ms: np.ndarray  # (n_alerts,) float64: Kafka timestamp of each alerted flow

    @property
    def alerts(self) -> int:
        return len(self.alert_classes)

    @property
    def invalid(self) -> int:
        return sum(self.invalid_by_reason.values())


def origin(messages: Sequence[Message]) -> Origin:
    """Topics, partitions and offsets of `messages`, read in C-level passes. A consumed message
    without an error always has all three."""
    topics = cast(list[str], list(map(Message.topic, messages)))
    partitions = cast(list[int], list(map(Message.partition, messages)))
    return topics, partitions, cast(list[int], list(map(Message.offset, messages)))


def position(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message without an error, where all three are set."""
    return cast(tuple[str, int, int], (message.topic(), message.partition(), message.offset()))


def where(message: Message) -> str:
    """`topic[partition]@offset` of a consumed message."""
    return str(Source(*position(message)))


class MessageSources(Sequence[tuple[str, int, int]]):
    """(topic, partition, offset) of the batch's messages, read only for the rows that need them
    (dead letters): three method calls per message add up at tens of thousands per second."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages

    def __len__(self) -> int:
        return len(self.messages)

    @overload
    def __getitem__(self, index: int) -> tuple[str, int, int]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[str, int, int]]: ...

    def __getitem__(self, index: int | slice) -> tuple[str, int, int] | Sequence[tuple[str, int, int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return position(self.messages[index])

"""A consumed micro-batch on its way from decoding to commit."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Future
from typing import cast, overload

import numpy as np
from confluent_kafka import Message

from detector.decode import DecodedBatch
from detector.messages import Origin
from detector.reload import LiveModel
from nids_model.detection import Scores


@dataclasses.dataclass
class Batch:
    live: LiveModel  # the model that scores it: its alerts and verdicts carry this version
    consumed: list[Message]  # as consumed, errors included (for the batch-size histogram)
    messages: list[Message]  # without the errors
    decoded: DecodedBatch
    scoring: Future[Scores] | None  # on the scorer thread; None when no message was valid
    started: float  # perf_counter() when it was consumed
    full: bool  # as many records as a batch takes: the topic has a backlog

    def scores(self) -> Scores | None:
        return self.scoring.result() if self.scoring is not None else None

    def valid_messages(self, rows: np.ndarray) -> list[Message]:
        """The messages of the valid records at `rows` (positions among the valid records)."""
        return [self.messages[index] for index in self.decoded.valid[rows].tolist()]


def origin(messages: Sequence[Message]) -> Origin:
    """Topics, partitions and offsets of `messages`, read in C-level passes. A consumed message
    without an error always has all three."""
    topics = cast(list[str], list(map(Message.topic, messages)))
    partitions = cast(list[int], list(map(Message.partition, messages)))
    return topics, partitions, cast(list[int], list(map(Message.offset, messages)))


def position(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message without an error, where all three are set."""
    return cast(tuple[str, int, int], (message.topic(), message.partition(), message.offset()))


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

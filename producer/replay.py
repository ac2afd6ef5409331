"""The replay loop: flow sources, pacing, delivery accounting. `nids-replay` is a thin CLI over it."""
from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
import uuid
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from confluent_kafka import KafkaError, Producer

from nids_common.errors import NidsError
from producer.config import ProducerConfig
from producer.encode import encode_chunk
from producer.synthetic import synthetic_frame
from training.data import iter_flows

log = logging.getLogger("nids.replay")
SYNTHETIC_CHUNK = 20_000
PACING_STEP = 200  # messages between pacing checks: fine enough for ±5 % at any rate above ~10 flows/s


@dataclasses.dataclass
class ReplaySummary:
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    seconds: float = 0.0
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.produced / self.seconds if self.seconds > 0 else 0.0


def file_chunks(paths: Sequence[str | os.PathLike[str]], chunk_rows: int, loop: bool, shuffle: bool,
                seed: int) -> Iterator[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    for _ in itertools.count() if loop else range(1):
        for path in paths:
            for chunk in iter_flows(path, chunk_rows):
                # Shuffling is within a chunk: a stream cannot reorder what it has not read yet.
                yield chunk.iloc[rng.permutation(len(chunk))] if shuffle else chunk


def synthetic_chunks(seed: int, chunk_rows: int = SYNTHETIC_CHUNK) -> Iterator[pd.DataFrame]:
    for index in itertools.count():
        yield synthetic_frame(chunk_rows, seed=seed + index)


class Pacer:
    """Holds a producer to `rate` flows/s, or to event time `speedup` times faster; neither → no wait."""

    def __init__(self, rate: float, speedup: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.speedup, self.clock, self.sleep = rate, speedup, clock, sleep
        self.started = clock()
        self.first_event: float | None = None

    def wait(self, sent: int, event_time: float | None) -> None:
        if self.rate > 0:
            due = self.started + sent / self.rate
        elif self.speedup > 0 and event_time is not None and np.isfinite(event_time):
            if self.first_event is None:
                self.first_event = event_time
            due = self.started + (event_time - self.first_event) / self.speedup
        else:
            return
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def replay(chunks: Iterable[pd.DataFrame], producer: Producer, topic: str, *, limit: int = 0, rate: float = 0.0,
           speedup: float = 0.0, running: Callable[[], bool] = lambda: True,
           on_progress: Callable[[ReplaySummary], None] | None = None, run_id: str | None = None) -> ReplaySummary:
    """Produce every flow of `chunks` to `topic`; flush; count deliveries. Never raises for one bad delivery."""
    run_id = run_id or uuid.uuid4().hex[:8]
    summary = ReplaySummary()
    pacer = Pacer(rate, speedup)
    started = time.monotonic()

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is None:
            summary.delivered += 1
        else:
            summary.failed += 1
            summary.first_error = summary.first_error or err.str()

    try:
        for chunk in chunks:
            if not running() or (limit and summary.produced >= limit):
                break
            if limit:
                chunk = chunk.iloc[: limit - summary.produced]
            count = len(chunk)
            ids = np.char.add(f"{run_id}-", np.arange(summary.produced, summary.produced + count).astype(str))
            event_times = _event_times(chunk)
            payloads = encode_chunk(chunk, ids, event_times)
            for start in range(0, count, PACING_STEP):
                if not running():
                    break
                pacer.wait(summary.produced, float(event_times[start]) if "stime" in chunk.columns else None)
                for index in range(start, min(start + PACING_STEP, count)):
                    _produce(producer, topic, ids[index], payloads[index], on_delivery)
                    summary.produced += 1
                producer.poll(0)
                if on_progress is not None:
                    summary.seconds = time.monotonic() - started
                    on_progress(summary)
    finally:
        remaining = producer.flush(30)
        summary.seconds = time.monotonic() - started
        if remaining:
            summary.failed += remaining
            summary.first_error = summary.first_error or f"{remaining} message(s) still queued after a 30 s flush"
    return summary


def _produce(producer: Producer, topic: str, key: str, value: bytes, on_delivery: Callable) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            return
        except BufferError:
            # librdkafka's local queue is full: serve delivery reports until there is room.
            producer.poll(0.05)


def _event_times(chunk: pd.DataFrame) -> np.ndarray:
    if "stime" in chunk.columns:
        return chunk["stime"].to_numpy(dtype=float)
    return np.full(len(chunk), time.time())


def make_producer(config: ProducerConfig) -> Producer:
    try:
        return Producer(config.kafka.client_config(**{"error_cb": _log_error}))
    except Exception as exc:
        raise NidsError(f"cannot create Kafka producer: {exc}") from None


def _log_error(err: KafkaError) -> None:
    log.warning("kafka: %s", err.str())

"""The replay loop: flow sources, pacing, delivery accounting. `nids-replay` is a thin CLI over it."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from queue import Full, Queue

import numpy as np
import pandas as pd
from confluent_kafka import KafkaError, Producer

from nids_common.errors import NidsError
from nids_common.kafka import ProduceStalled, Refusals, produce_all
from nids_dataset.synthetic import MEAN_GAP_S, synthetic_frame
from nids_dataset.unsw import iter_flows
from producer.config import ProducerConfig
from producer.encode import encode_chunk, wire_columns

log = logging.getLogger("nids.replay")
SYNTHETIC_CHUNK = 20_000
PACING_STEP = 100  # messages between pacing checks: smooth at 10,000 flows/s (a check every 10 ms)
ENCODE_ROWS = 1000
LOOP_CACHE_ROWS = 2_000_000
READ_AHEAD_JOIN_S = 10.0
# The replay producer's librdkafka settings; `kafka.librdkafka` of the config overrides any of them.
# Large lz4 batches: a replay sends tens of thousands of small JSON flows a second.
# acks=all with idempotence: a flow acknowledged before a broker dies is still there, once (see
# nids_common.stream_clients).
PRODUCER_DEFAULTS = {
    "acks": "all",
    "enable.idempotence": True,
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 500_000,
}


@dataclasses.dataclass
class ReplaySummary:
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    seconds: float = 0.0  # from the first flow read to the final flush
    startup_seconds: float = 0.0  # before it: the first chunk's read and parse
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.produced / self.seconds if self.seconds > 0 else 0.0


def file_chunks(
    paths: Sequence[str | os.PathLike[str]],
    chunk_rows: int,
    loop: bool,
    shuffle: bool,
    seed: int,
    cache_rows: int = LOOP_CACHE_ROWS,
) -> Iterator[pd.DataFrame]:
    """Cleaned chunks of the files; with `loop`, again and again. Files that fit in `cache_rows` are
    read and cleaned once: re-reading them each pass would pause the stream for the parse."""
    rng = np.random.default_rng(seed)

    def read() -> Iterator[pd.DataFrame]:
        return (chunk for path in paths for chunk in iter_flows(path, chunk_rows))

    def arranged(chunk: pd.DataFrame) -> pd.DataFrame:
        # Shuffling is within a chunk: a stream cannot reorder what it has not read yet.
        return chunk.iloc[rng.permutation(len(chunk))] if shuffle else chunk

    cached: list[pd.DataFrame] | None = [] if loop else None
    for chunk in read():
        if cached is not None:
            cached = [*cached, chunk] if sum(map(len, cached)) + len(chunk) <= cache_rows else None
        yield arranged(chunk)
    while loop:
        for chunk in cached if cached is not None else read():
            yield arranged(chunk)


def read_ahead(chunks: Iterable[pd.DataFrame], depth: int = 2) -> Generator[pd.DataFrame, None, None]:
    """Produce chunks from a background thread, so parsing the next chunk overlaps sending this one."""
    queue: Queue[object] = Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []
    stop = threading.Event()

    def put(item: object) -> bool:
        """`item` queued; False when the reader stopped first."""
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.2)
                return True
            except Full:
                continue
        return False

    def fill() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
        except BaseException as exc:  # handed to the consumer thread, raised there
            failure.append(exc)
        put(done)

    thread = threading.Thread(target=fill, name="replay-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        # Joined, not left to interpreter shutdown: a daemon thread still inside numpy or pandas
        # while the interpreter finalises can crash the process (seen: SIGSEGV after a refusal).
        thread.join(READ_AHEAD_JOIN_S)


def synthetic_chunks(
    seed: int, chunk_rows: int = SYNTHETIC_CHUNK, start_time: float | None = None
) -> Iterator[pd.DataFrame]:
    """Synthetic flows as live traffic: the capture starts at `start_time` (default: now), so a second
    replay is new traffic, not the first one's events again (an incident of the first would take them)."""
    origin = time.time() if start_time is None else start_time
    for index in itertools.count():
        # Event times carry on from chunk to chunk, as in one long capture.
        start = origin + index * chunk_rows * MEAN_GAP_S
        yield synthetic_frame(chunk_rows, seed=seed + index, start_time=start)


class Pacer:
    """Holds a producer to `rate` flows/s, or to event time `speedup` times faster; neither → no wait."""

    def __init__(
        self,
        rate: float,
        speedup: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.speedup, self.clock, self.sleep = rate, speedup, clock, sleep
        self.started: float | None = None
        self.first_event: float | None = None

    def wait(self, sent: int, event_time: float | None) -> None:
        # The clock starts at the first message, not before the first file read.
        if self.started is None:
            self.started = self.clock()
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


@dataclasses.dataclass(frozen=True)
class EncodedSlice:
    """Up to ENCODE_ROWS flows of a chunk, ready to send."""

    keys: list[str]
    payloads: list[bytes]
    event_times: np.ndarray | None  # Stime of each flow (raw files), for pacing by event time


def encoded_slices(chunk: pd.DataFrame, run_id: str, first_id: int) -> Iterator[EncodedSlice]:
    """The encode step: a chunk's flows as JSON, a slice at a time, keyed `<run_id>-<n>` from `first_id`.

    Lazy on purpose: encoding a whole chunk up front would stall the stream for its duration and then
    release it as one burst, so each slice is encoded just before it is paced and sent.
    """
    count = len(chunk)
    ids = np.char.add(f"{run_id}-", np.arange(first_id, first_id + count).astype(str))
    columns = wire_columns(chunk)
    event_times = chunk["stime"].to_numpy(dtype=float) if "stime" in chunk.columns else None
    for start in range(0, count, ENCODE_ROWS):
        stop = min(start + ENCODE_ROWS, count)
        # Without Stime (the partitioned files) the event time is the send time.
        times = event_times[start:stop] if event_times is not None else np.full(stop - start, time.time())
        payloads = encode_chunk({name: values[start:stop] for name, values in columns.items()}, ids[start:stop], times)
        yield EncodedSlice(ids[start:stop].tolist(), payloads, None if event_times is None else times)


class _Sender:
    """The pace and produce steps of one replay, and its accounting in `summary`."""

    def __init__(
        self,
        producer: Producer,
        topic: str,
        pacer: Pacer,
        running: Callable[[], bool],
        refusals: Refusals,
    ) -> None:
        self.producer, self.topic, self.pacer, self.running, self.refusals = producer, topic, pacer, running, refusals
        self.summary = ReplaySummary()
        self.started = time.monotonic()

    def go_on(self) -> bool:
        return self.running() and self.refusals.first is None

    def on_delivery(self, err: KafkaError | None, _msg: object) -> None:
        # Only failures are counted as they are reported (make_producer asks librdkafka to report only
        # those: a Python callback per delivered message would cost more than producing it);
        # delivered = produced - failed - still queued after the final flush.
        if err is not None:
            self.summary.failed += 1
            self.summary.first_error = self.summary.first_error or err.str()
            self.refusals.note(err, "WRITE")

    def wanted(self, chunks: Iterable[pd.DataFrame], limit: int) -> Iterator[pd.DataFrame]:
        """The source step: each chunk, cut to the flows still wanted (`limit`; 0: all), while the replay goes on."""
        for chunk in chunks:
            if not self.summary.produced:
                # The rate is the stream's: the clock restarts once the first chunk is parsed.
                self.summary.startup_seconds = time.monotonic() - self.started
                self.started = time.monotonic()
            if not self.go_on() or (limit and self.summary.produced >= limit):
                return
            yield chunk.iloc[: limit - self.summary.produced] if limit else chunk

    def send(self, flows: EncodedSlice) -> bool:
        """Pace, then produce, PACING_STEP flows at a time; False when the replay must stop."""
        summary = self.summary
        for offset in range(0, len(flows.keys), PACING_STEP):
            if not self.go_on():
                return False
            self.pacer.wait(summary.produced, None if flows.event_times is None else float(flows.event_times[offset]))
            end = offset + PACING_STEP
            messages = zip(flows.keys[offset:end], flows.payloads[offset:end])
            try:
                summary.produced += produce_all(
                    self.producer, self.topic, messages, self.on_delivery, running=self.go_on
                )
            except ProduceStalled as stalled:
                summary.produced += stalled.sent
                if not stalled.shutdown:
                    summary.first_error = summary.first_error or str(stalled)
                return False
            self.producer.poll(0)
        return True

    def elapsed(self) -> ReplaySummary:
        self.summary.seconds = time.monotonic() - self.started
        return self.summary

    def finish(self) -> ReplaySummary:
        # Refused access: what is still queued can never be delivered, so no 30 s wait for it.
        remaining = self.producer.flush(0 if self.refusals.first else 30)
        summary = self.elapsed()
        if remaining:
            summary.failed += remaining
            summary.first_error = summary.first_error or f"{remaining} message(s) still queued after a 30 s flush"
        summary.delivered = summary.produced - summary.failed
        return summary


def replay(
    chunks: Iterable[pd.DataFrame],
    producer: Producer,
    topic: str,
    *,
    limit: int = 0,
    rate: float = 0.0,
    speedup: float = 0.0,
    running: Callable[[], bool] = lambda: True,
    on_progress: Callable[[ReplaySummary], None] | None = None,
    run_id: str | None = None,
    refusals: Refusals | None = None,
) -> ReplaySummary:
    """Produce every flow of `chunks` to `topic`; flush; count deliveries. Never raises for one bad
    delivery; stops early (and returns) when the broker refuses access, noted in `refusals`.

    Source chunks → encode → pace → produce: `_Sender.wanted`, `encoded_slices`, `_Sender.send`.
    """
    run_id = run_id or uuid.uuid4().hex[:8]
    sender = _Sender(producer, topic, Pacer(rate, speedup), running, refusals or Refusals({}, {"topic": topic}))
    try:
        for chunk in sender.wanted(chunks, limit):
            for flows in encoded_slices(chunk, run_id, sender.summary.produced):
                if not sender.send(flows):
                    return sender.summary
                if on_progress is not None:
                    on_progress(sender.elapsed())
    finally:
        sender.finish()
    return sender.summary


def make_producer(config: ProducerConfig, refusals: Refusals | None = None) -> Producer:
    """The replay's producer; errors are logged, and refusals (bad credentials) noted in `refusals`."""

    def on_error(err: KafkaError) -> None:
        if refusals is None or not refusals.note(err, "WRITE"):
            log.warning("kafka: %s", err.str())

    fixed = {"error_cb": on_error, "delivery.report.only.error": True}
    try:
        return Producer({**PRODUCER_DEFAULTS, **config.kafka.client_config(**fixed)})
    except Exception as exc:
        raise NidsError(f"cannot create Kafka producer: {exc}") from None

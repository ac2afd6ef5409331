"""The replay loop: flow sources, pacing, delivery accounting. `nids-replay` is a thin CLI over it."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from queue import Full, Queue

import numpy as np
import pandas as pd
from confluent_kafka import KafkaError, Producer

from nids_common.errors import NidsError
from nids_common.kafka import ProduceStalled, Refusals, produce_all
from nids_dataset.synthetic import MEAN_GAP_S, START_TIME, synthetic_frame
from nids_dataset.unsw import iter_flows
from producer.config import ProducerConfig
from producer.encode import encode_chunk, wire_columns

log = logging.getLogger("nids.replay")
SYNTHETIC_CHUNK = 20_000
PACING_STEP = 100  # messages between pacing checks: smooth at 10,000 flows/s (a check every 10 ms)
ENCODE_ROWS = 1000
LOOP_CACHE_ROWS = 2_000_000


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


def read_ahead(chunks: Iterable[pd.DataFrame], depth: int = 2) -> Iterator[pd.DataFrame]:
    """Produce chunks from a background thread, so parsing the next chunk overlaps sending this one."""
    queue: Queue[object] = Queue(maxsize=depth)
    done = object()
    failure: list[BaseException] = []
    stop = threading.Event()

    def fill() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        queue.put(chunk, timeout=0.2)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer thread, raised there
            failure.append(exc)
        queue.put(done)

    thread = threading.Thread(target=fill, name="replay-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()


def synthetic_chunks(seed: int, chunk_rows: int = SYNTHETIC_CHUNK) -> Iterator[pd.DataFrame]:
    for index in itertools.count():
        # Event times carry on from chunk to chunk, as in one long capture.
        start = START_TIME + index * chunk_rows * MEAN_GAP_S
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
    delivery; stops early (and returns) when the broker refuses access, noted in `refusals`."""
    run_id = run_id or uuid.uuid4().hex[:8]
    summary = ReplaySummary()
    refusals = refusals or Refusals({}, {"topic": topic})

    def go_on() -> bool:
        return running() and refusals.first is None

    pacer = Pacer(rate, speedup)
    started = time.monotonic()

    # Only failures are counted as they are reported (make_producer asks librdkafka to report only
    # those: a Python callback per delivered message would cost more than producing it);
    # delivered = produced - failed - still queued after the final flush.
    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            summary.failed += 1
            summary.first_error = summary.first_error or err.str()
            refusals.note(err, "WRITE")

    try:
        for chunk in chunks:
            if not summary.produced:
                # The rate is the stream's: the clock restarts once the first chunk is parsed.
                summary.startup_seconds = time.monotonic() - started
                started = time.monotonic()
            if not go_on() or (limit and summary.produced >= limit):
                break
            if limit:
                chunk = chunk.iloc[: limit - summary.produced]
            count = len(chunk)
            ids = np.char.add(f"{run_id}-", np.arange(summary.produced, summary.produced + count).astype(str))
            columns = wire_columns(chunk)
            has_event_time = "stime" in chunk.columns
            event_times = chunk["stime"].to_numpy(dtype=float) if has_event_time else None
            # Encode a slice at a time between pacing checks: encoding a whole chunk up front would
            # stall the stream for its duration and then release it as one burst.
            for start in range(0, count, ENCODE_ROWS):
                stop = min(start + ENCODE_ROWS, count)
                # Without Stime (the partitioned files, synthetic flows) the event time is the send time.
                times = event_times[start:stop] if event_times is not None else np.full(stop - start, time.time())
                payloads = encode_chunk(
                    {name: values[start:stop] for name, values in columns.items()}, ids[start:stop], times
                )
                keys = ids[start:stop].tolist()
                for offset in range(0, stop - start, PACING_STEP):
                    if not go_on():
                        return summary
                    pacer.wait(summary.produced, float(times[offset]) if has_event_time else None)
                    end = min(offset + PACING_STEP, stop - start)
                    try:
                        summary.produced += produce_all(
                            producer, topic, zip(keys[offset:end], payloads[offset:end]), on_delivery, running=go_on
                        )
                    except ProduceStalled as stalled:
                        summary.produced += stalled.sent
                        if not stalled.shutdown:
                            summary.first_error = summary.first_error or str(stalled)
                        return summary
                    producer.poll(0)
                if on_progress is not None:
                    summary.seconds = time.monotonic() - started
                    on_progress(summary)
    finally:
        # Refused access: what is still queued can never be delivered, so no 30 s wait for it.
        remaining = producer.flush(0 if refusals.first else 30)
        summary.seconds = time.monotonic() - started
        if remaining:
            summary.failed += remaining
            summary.first_error = summary.first_error or f"{remaining} message(s) still queued after a 30 s flush"
        summary.delivered = summary.produced - summary.failed
    return summary


def make_producer(config: ProducerConfig, refusals: Refusals | None = None) -> Producer:
    """The replay's producer; errors are logged, and refusals (bad credentials) noted in `refusals`."""

    def on_error(err: KafkaError) -> None:
        if refusals is None or not refusals.note(err, "WRITE"):
            log.warning("kafka: %s", err.str())

    try:
        return Producer(config.kafka.client_config(**{"error_cb": on_error, "delivery.report.only.error": True}))
    except Exception as exc:
        raise NidsError(f"cannot create Kafka producer: {exc}") from None

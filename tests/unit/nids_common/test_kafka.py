"""The bounded produce helper, and waiting for created topics: neither waits forever.

A stand-in producer plays librdkafka's full queue (BufferError from produce()); the real producer is
exercised against the real broker by the integration tests. Likewise a stand-in admin client plays a
broker that shows a created topic late.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from nids_common.errors import NidsError
from nids_common.kafka import ProduceStalled, produce_all, wait_for_leaders


class FullQueueProducer:
    """Refuses the first `refusals` produce() calls with BufferError, as a full local queue does."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.produced: list[tuple[str, bytes, object, object]] = []
        self.polls = 0

    def produce(self, topic: str, value: bytes, key: object = None, partition: int = -1,
                on_delivery: object = None, headers: object = None) -> None:  # fmt: skip
        if self.refusals > 0:
            self.refusals -= 1
            raise BufferError("Local: Queue full")
        self.produced.append((topic, value, key, headers))

    def poll(self, _timeout: float) -> int:
        self.polls += 1
        return 0


def report(_err: object, _msg: object) -> None:
    pass


def test_a_full_queue_is_served_then_retried() -> None:
    producer = FullQueueProducer(refusals=3)
    sent = produce_all(producer, "t", [("k1", b"a"), ("k2", b"b")], report)  # type: ignore[arg-type]
    assert sent == 2
    assert [value for _, value, _, _ in producer.produced] == [b"a", b"b"]
    assert producer.polls == 3


def test_headers_travel_with_their_message() -> None:
    producer = FullQueueProducer(refusals=1)
    headers = [[("h", b"1")], [("h", b"2")]]
    produce_all(producer, "t", [("a", b"x"), ("b", b"y")], report, headers=headers)  # type: ignore[arg-type]
    assert [h for _, _, _, h in producer.produced] == headers


@pytest.mark.parametrize("lists", [1, 3])
def test_headers_must_match_the_messages_one_for_one(lists: int) -> None:
    headers = [[("h", b"1")]] * lists
    with pytest.raises((ValueError, IndexError)):
        produce_all(FullQueueProducer(0), "t", [("a", b"x"), ("b", b"y")], report, headers=headers)  # type: ignore[arg-type]


def test_a_queue_that_stays_full_raises_after_the_timeout() -> None:
    producer = FullQueueProducer(refusals=10**9)
    with pytest.raises(ProduceStalled, match="stayed full for 0 s") as stalled:
        produce_all(producer, "t", [("k", b"v")], report, timeout=0.2)  # type: ignore[arg-type]
    assert not stalled.value.shutdown and stalled.value.sent == 0


def test_shutdown_stops_the_retry_and_says_how_many_were_sent() -> None:
    producer = FullQueueProducer(refusals=0)
    original = producer.produce
    calls = {"n": 0}

    def produce_then_fill(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise BufferError("Local: Queue full")
        original(*args, **kwargs)  # type: ignore[arg-type]

    producer.produce = produce_then_fill  # type: ignore[method-assign]
    with pytest.raises(ProduceStalled, match="shutdown") as stalled:
        produce_all(producer, "t", [("a", b"1"), ("b", b"2"), ("c", b"3")], report, running=lambda: False)  # type: ignore[arg-type]
    assert stalled.value.shutdown and stalled.value.sent == 2


class FailedProducer:
    """A producer in a failed state: produce() raises `error` for every message."""

    def __init__(self, error: KafkaError) -> None:
        self.error = error

    def produce(self, *_args: object, **_kwargs: object) -> None:
        raise KafkaException(self.error)


@pytest.mark.parametrize(
    "error",
    [
        KafkaError(KafkaError._STATE, "Erroneous state"),
        KafkaError(KafkaError._FATAL, "fatal", fatal=True),
        KafkaError(KafkaError._FENCED, "fenced", fatal=True),
    ],
)
def test_a_producer_that_takes_nothing_fails_the_batch_instead_of_skipping_its_messages(error: KafkaError) -> None:
    refused: list[int] = []
    with pytest.raises(ProduceStalled, match="the producer takes no message") as stalled:
        produce_all(
            FailedProducer(error),  # type: ignore[arg-type]
            "alerts",
            [("k", b"v"), ("l", b"w")],
            report,
            on_refused=lambda index, _error: refused.append(index),
        )
    assert refused == [] and not stalled.value.shutdown


def test_a_message_refused_for_itself_is_skipped_and_the_others_go() -> None:
    refused: list[int] = []

    class RefusesLarge(FullQueueProducer):
        def produce(self, topic: str, value: bytes, key: object = None, partition: int = -1,
                    on_delivery: object = None, headers: object = None) -> None:  # fmt: skip
            if len(value) > 3:
                raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
            super().produce(topic, value, key, partition, on_delivery, headers)

    producer = RefusesLarge(0)
    sent = produce_all(
        producer, "t", [("a", b"big!"), ("b", b"ok")], report, on_refused=lambda i, _e: refused.append(i)
    )  # type: ignore[arg-type]
    assert refused == [0] and sent == 1 and [p[1] for p in producer.produced] == [b"ok"]


class LateMetadata:
    """An AdminClient stand-in whose metadata shows a topic only from its `shown_from`-th request,
    and its partitions' leader one request later."""

    def __init__(self, shown_from: int) -> None:
        self.shown_from, self.asked = shown_from, 0

    def list_topics(self, timeout: float) -> SimpleNamespace:
        self.asked += 1
        topics = {}
        if self.asked >= self.shown_from:
            leader = 1 if self.asked > self.shown_from else -1
            partitions = {n: SimpleNamespace(leader=leader) for n in range(3)}
            topics["alerts"] = SimpleNamespace(error=None, partitions=partitions)
        return SimpleNamespace(topics=topics)


def test_a_created_topic_is_waited_for_until_its_partitions_have_leaders() -> None:
    admin = LateMetadata(shown_from=3)
    wait_for_leaders(admin, {"alerts": 3}, timeout=5, poll=0.01)
    assert admin.asked == 4


def test_a_topic_that_never_shows_is_named_in_the_error() -> None:
    with pytest.raises(NidsError, match="without a leader after 0 s: alerts"):
        wait_for_leaders(LateMetadata(shown_from=10**6), {"alerts": 3}, timeout=0.05, poll=0.01)

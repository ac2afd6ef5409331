"""The checkpoint: which offsets a commit names, the watchdog over transaction calls, and how the
transactional checkpoint sorts errors into retriable, abortable and fatal (on a stand-in producer)."""

from __future__ import annotations

import gc
import time
import weakref

import pytest
from confluent_kafka import KafkaError, Message
from prometheus_client import CollectorRegistry

from detector.metrics import DetectorMetrics
from nids_common.checkpoint import (
    MAX_RENEWALS,
    TRANSACTION_ATTEMPTS,
    TransactionalCheckpoint,
    TransactionFailed,
    Watchdog,
    next_offsets,
)
from nids_common.errors import AccessDenied
from nids_common.kafka import Refusals
from tests.unit.kafka_standins import StandInBroker, StandInConsumer, StandInProducer, kafka_error


def test_a_commit_names_the_offset_after_each_partitions_last_message() -> None:
    places = [("f", 0, 10), ("f", 1, 4), ("f", 0, 11), ("g", 0, 7)]
    messages = [Message(topic=t, partition=p, offset=o) for t, p, o in places]
    offsets = {(tp.topic, tp.partition): tp.offset for tp in next_offsets(messages)}
    assert offsets == {("f", 0): 12, ("f", 1): 5, ("g", 0): 8}


def test_the_watchdog_fires_once_for_a_call_past_its_deadline() -> None:
    fired: list[tuple[str, float]] = []
    watchdog = Watchdog(lambda name, seconds: fired.append((name, seconds)))
    with watchdog.guard("send_offsets_to_transaction", 0.2):
        time.sleep(1.5)
    watchdog.close()
    assert fired == [("send_offsets_to_transaction", 0.2)]


def test_the_watchdog_tells_of_a_slow_call_once_before_its_deadline() -> None:
    slow: list[float] = []
    stuck: list[str] = []
    watchdog = Watchdog(
        lambda name, _: stuck.append(name), on_slow=lambda: slow.append(time.monotonic()), slow_after_s=0.2
    )
    started = time.monotonic()
    with watchdog.guard("commit_transaction", 10.0):
        time.sleep(2.0)
    watchdog.close()
    assert len(slow) == 1 and 0.2 < slow[0] - started < 1.5
    assert stuck == []


def test_the_watchdog_stays_quiet_for_calls_that_return_in_time() -> None:
    fired: list[tuple[str, float]] = []
    watchdog = Watchdog(lambda name, seconds: fired.append((name, seconds)))
    for _ in range(3):
        with watchdog.guard("commit_transaction", 1.0):
            time.sleep(0.05)
    time.sleep(1.5)
    watchdog.close()
    assert fired == []


class StuckCallOwner:
    def on_stuck(self, name: str, seconds: float) -> None: ...


def test_a_closed_watchdog_lets_go_of_its_callbacks() -> None:
    owner = StuckCallOwner()
    watchdog = Watchdog(owner.on_stuck)
    still_held = weakref.ref(owner)

    watchdog.close()
    del watchdog, owner
    gc.collect()

    assert still_held() is None


# -- the transactional checkpoint's error classes (librdkafka's examples/transactions.c) -----------
def transactional(
    errors: dict[str, list[KafkaError]], may_retry: bool = True
) -> tuple[TransactionalCheckpoint, StandInProducer, DetectorMetrics]:
    broker = StandInBroker({"f": 1, "alerts": 1})
    consumer = StandInConsumer(broker, batch=3)
    producer = StandInProducer(broker, transactional=True)
    producer.errors = errors
    metrics = DetectorMetrics(CollectorRegistry())
    checkpoint = TransactionalCheckpoint(
        consumer,  # type: ignore[arg-type]
        producer,  # type: ignore[arg-type]
        metrics,
        timeout=1.0,
        may_retry=lambda: may_retry,
        refusals=Refusals({}, {"topic": "f"}),
    )
    checkpoint.begin()
    return checkpoint, producer, metrics


BATCH = [Message(topic="f", partition=0, offset=o) for o in range(3)]
RETRIABLE = kafka_error(KafkaError._TIMED_OUT, retriable=True)
ABORTABLE = kafka_error(KafkaError._INCONSISTENT, txn_requires_abort=True)


def test_a_retriable_error_is_retried_and_the_transaction_commits() -> None:
    checkpoint, producer, _ = transactional({"commit_transaction": [RETRIABLE, RETRIABLE]})
    assert checkpoint.commit(BATCH)
    assert producer.calls.count("commit_transaction") == 3
    assert producer.broker.committed == {("f", 0): 3}


def test_retries_are_bounded() -> None:
    checkpoint, producer, _ = transactional({"commit_transaction": [RETRIABLE] * TRANSACTION_ATTEMPTS})
    with pytest.raises(TransactionFailed):
        checkpoint.commit(BATCH)
    assert producer.calls.count("commit_transaction") == TRANSACTION_ATTEMPTS


def test_no_retry_once_the_service_stops() -> None:
    checkpoint, producer, _ = transactional({"commit_transaction": [RETRIABLE]}, may_retry=False)
    with pytest.raises(TransactionFailed):
        checkpoint.commit(BATCH)
    assert producer.calls.count("commit_transaction") == 1


def test_an_abortable_error_aborts_and_asks_for_a_rewind() -> None:
    checkpoint, producer, metrics = transactional({"send_offsets_to_transaction": [ABORTABLE]})
    assert checkpoint.commit(BATCH) is False
    assert producer.calls[-1] == "abort_transaction"
    assert "commit_transaction" not in producer.calls
    assert metrics.registry.get_sample_value("nids_kafka_errors_total", {"code": "_INCONSISTENT"}) == 1


def test_a_fatal_error_ends_the_detector_without_committing() -> None:
    checkpoint, producer, _ = transactional({"commit_transaction": [kafka_error(KafkaError._FENCED, fatal=True)]})
    with pytest.raises(TransactionFailed, match="commit_transaction"):
        checkpoint.commit(BATCH)
    assert "abort_transaction" not in producer.calls
    assert producer.broker.committed == {}


def test_an_error_neither_retriable_nor_abortable_ends_the_detector() -> None:
    checkpoint, _, _ = transactional({"send_offsets_to_transaction": [kafka_error(KafkaError._STATE)]})
    with pytest.raises(TransactionFailed, match="transaction not committed"):
        checkpoint.commit(BATCH)


def test_a_refused_transaction_stops_with_who_was_refused_what() -> None:
    refused = KafkaError(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    with pytest.raises(AccessDenied, match="TRANSACTIONAL_ID_AUTHORIZATION_FAILED"):
        transactional({"init_transactions": [refused]})


def test_failed_deliveries_abort_the_transaction_before_its_offsets_are_sent() -> None:
    checkpoint, producer, metrics = transactional({})
    checkpoint.on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), Message(topic="alerts"))
    assert checkpoint.commit(BATCH) is False
    assert producer.offsets_sent == [] and producer.calls[-1] == "abort_transaction"
    assert metrics.registry.get_sample_value("nids_delivery_failures_total") == 1


# -- a fenced producer (a transaction the broker aborted on timeout during a failover) -------------
FENCED = kafka_error(KafkaError._FENCED, fatal=True)


def renewing(
    errors: dict[str, list[KafkaError]],
) -> tuple[TransactionalCheckpoint, list[StandInProducer], DetectorMetrics]:
    checkpoint, first, metrics = transactional(errors)
    made = [first]

    def renew() -> StandInProducer:
        made.append(StandInProducer(first.broker, transactional=True))
        return made[-1]

    checkpoint._renew = renew  # type: ignore[assignment]
    return checkpoint, made, metrics


def test_a_fenced_producer_is_replaced_and_the_batch_read_again_then_committed() -> None:
    checkpoint, made, metrics = renewing({"commit_transaction": [FENCED]})
    assert checkpoint.commit(BATCH) is False  # the caller rewinds
    assert len(made) == 2 and checkpoint.producer is made[1]
    assert made[1].calls == ["init_transactions"]
    assert made[0].broker.committed == {}
    assert metrics.registry.get_sample_value("nids_producer_renewals_total") == 1
    checkpoint.begin()
    assert checkpoint.commit(BATCH)
    assert made[1].broker.committed == {("f", 0): 3}


def test_an_abort_the_broker_refuses_after_a_timeout_renews_the_producer() -> None:
    invalid_state = kafka_error(KafkaError.INVALID_TXN_STATE, fatal=True)
    checkpoint, made, _ = renewing({"send_offsets_to_transaction": [ABORTABLE], "abort_transaction": [invalid_state]})
    assert checkpoint.commit(BATCH) is False
    assert checkpoint.producer is made[1]


def test_renewals_are_bounded_then_the_service_stops() -> None:
    checkpoint, made, _ = renewing({"commit_transaction": [FENCED]})
    for renewal in range(MAX_RENEWALS):
        made[-1].errors = {"commit_transaction": [FENCED]}
        assert checkpoint.commit(BATCH) is False, renewal
        checkpoint.begin()
    made[-1].errors = {"commit_transaction": [FENCED]}
    with pytest.raises(TransactionFailed, match="commit_transaction"):
        checkpoint.commit(BATCH)
    assert len(made) == 1 + MAX_RENEWALS


class Watcher:
    def __init__(self) -> None:
        self.told: list[str] = []

    def on_failed_write(self) -> None:
        self.told.append("failed")

    def on_written(self) -> None:
        self.told.append("written")

    def close(self) -> None:
        self.told.append("closed")


def test_the_watcher_hears_of_failed_calls_aborted_and_committed_batches_and_the_close() -> None:
    checkpoint, _, _ = transactional({"send_offsets_to_transaction": [ABORTABLE]})
    watcher = checkpoint.watcher = Watcher()
    assert checkpoint.commit(BATCH) is False
    assert set(watcher.told) == {"failed"}
    watcher.told.clear()
    checkpoint.begin()
    assert checkpoint.commit(BATCH)
    checkpoint.close()
    assert watcher.told == ["written", "closed"]


def test_a_closed_transactional_checkpoint_lets_go_of_its_producer() -> None:
    checkpoint, producer, _ = transactional({})
    still_held = weakref.ref(producer)

    checkpoint.close()
    del checkpoint, producer
    gc.collect()

    assert still_held() is None

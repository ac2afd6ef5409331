"""The detector loop on stand-in clients: batches held in flight, rewinds, revokes, lost partitions,
fatal errors and scorer failures, in both delivery modes, without a broker."""

from __future__ import annotations

import collections
import gc
import weakref

import pytest
from confluent_kafka import KafkaError, KafkaException

from detector.values import Stage
from nids_common.errors import NidsError
from nids_common.kafka import FatalKafkaError
from tests.unit.detector.standins import TOPICS, Rig, StandInModel, partition_logs, rig
from tests.unit.kafka_standins import StandInConsumer, kafka_error

SIZES = (10, 7)
# The offsets a commit of the first batch of 4 names: the stand-in reads partitions round robin.
FIRST_BATCH = {(TOPICS.flows, 0): 2, (TOPICS.flows, 1): 2}


def expected_alert_keys(run: Rig) -> set[bytes]:
    return {f"f{p}-{i}".encode() for p, log in run.flows().items() for i in range(len(log)) if i % 2 == 0}


def committed(run: Rig) -> dict[int, int]:
    return run.broker.committed_of(TOPICS.flows)


def assert_everything_scored_once(run: Rig) -> None:
    keys = run.alert_keys()
    assert set(keys) == expected_alert_keys(run)
    assert len(keys) == len(set(keys))
    assert committed(run) == run.broker.ends(TOPICS.flows)


def test_a_backlog_batch_is_held_in_flight_while_the_next_is_read() -> None:
    run = rig(partition_logs(SIZES), batch=4)
    seen: dict[str, object] = {}

    def while_second_batch_is_read(consumer: StandInConsumer) -> None:
        seen["commits"] = list(consumer.commits)
        seen["in_flight"] = run.detector._in_flight
        seen["alerts"] = len(run.alert_keys())

    run.consumer.on_consume[2] = while_second_batch_is_read
    run.run()
    assert seen["commits"] == [] and seen["alerts"] == 0
    assert seen["in_flight"] is not None
    assert_everything_scored_once(run)
    assert run.metrics.totals.consumed == sum(SIZES)


def test_under_a_backlog_a_produced_batch_is_committed_once_the_next_is_read() -> None:
    run = rig(partition_logs(SIZES), batch=4)
    seen: dict[str, object] = {}

    def while_third_batch_is_read(consumer: StandInConsumer) -> None:
        seen["commits"] = list(consumer.commits)
        seen["produced"] = run.detector._produced
        seen["unflushed"] = len(run.producer.pending)

    run.consumer.on_consume[3] = while_third_batch_is_read
    run.run()
    # Batch 1's alerts are handed to the producer, not yet flushed, and its offsets not committed …
    assert seen["commits"] == [] and seen["produced"] is not None and seen["unflushed"] > 0
    # … until the pass that read batch 3 commits it, before batch 2's outputs are produced.
    assert run.consumer.commits[0][0] == FIRST_BATCH
    assert_everything_scored_once(run)


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_a_revoke_commits_the_produced_batch_and_the_one_in_flight(delivery: str) -> None:
    run = rig(partition_logs(SIZES), batch=4, delivery=delivery)
    run.consumer.on_consume[3] = StandInConsumer.revoke
    run.run()
    assert run.consumer.seeks == []
    assert_everything_scored_once(run)
    if delivery == "at_least_once":
        assert [asynchronous for _, asynchronous in run.consumer.commits[:2]] == [False, False]


def test_lost_partitions_abort_the_transaction_of_a_produced_batch() -> None:
    run = rig(partition_logs(SIZES), batch=4, delivery="exactly_once")
    run.consumer.on_consume[3] = StandInConsumer.lose
    run.run()
    assert run.producer.calls.count("abort_transaction") == 1
    assert_everything_scored_once(run)  # the aborted outputs are read again and shown once


def test_a_batch_that_is_not_full_is_completed_at_once() -> None:
    run = rig(partition_logs((3,)), batch=4)
    run.consumer.on_consume[2] = lambda consumer: None
    run.run(consume_calls=2)
    assert run.consumer.commits[0] == ({(TOPICS.flows, 0): 3}, True)  # committed before the second consume()
    assert_everything_scored_once(run)


def test_a_failed_delivery_rewinds_every_batch_held_and_loses_nothing() -> None:
    run = rig(partition_logs(SIZES), batch=4)
    run.producer.failing_deliveries = 1
    run.run()
    # Batch 1 (offsets 0-1 of each partition) failed at its commit, after batches 2 and 3 were read:
    # all three are re-read from 0.
    assert run.consumer.seeks[0] == (TOPICS.flows, 0, 0)
    assert run.metrics.registry.get_sample_value("nids_delivery_failures_total") == 1
    keys = run.alert_keys()
    assert set(keys) == expected_alert_keys(run)  # at-least-once: nothing missing …
    assert committed(run) == run.broker.ends(TOPICS.flows)
    assert max(collections.Counter(keys).values()) == 2  # … and the batch whose delivery failed repeats


def test_a_revoke_completes_the_batch_in_flight_and_commits_it_before_handing_over() -> None:
    run = rig(partition_logs(SIZES), batch=4)
    run.consumer.on_consume[2] = StandInConsumer.revoke
    run.run()
    first_commit, asynchronous = run.consumer.commits[0]
    assert first_commit == FIRST_BATCH and asynchronous is False
    assert run.consumer.seeks == []
    assert_everything_scored_once(run)


def test_lost_partitions_drop_the_batch_in_flight_uncommitted() -> None:
    run = rig(partition_logs(SIZES), batch=4)
    produced_before_loss: list[int] = []
    run.consumer.on_consume[2] = lambda consumer: (produced_before_loss.append(len(run.alert_keys())), consumer.lose())
    run.run()
    assert produced_before_loss == [0]
    # The first commit is the re-read batch's, not the dropped one's.
    assert run.consumer.commits[0][0] == FIRST_BATCH
    assert_everything_scored_once(run)


def test_a_fatal_error_stops_the_loop_and_commits_nothing() -> None:
    run = rig(partition_logs(SIZES), batch=4)

    def fatal(_consumer: StandInConsumer) -> None:
        raise KafkaException(kafka_error(KafkaError._FENCED, fatal=True))

    run.consumer.on_consume[2] = fatal
    with pytest.raises(FatalKafkaError, match="fatal Kafka error"):
        run.run()
    assert run.consumer.commits == []
    assert run.alert_keys() == []
    assert run.consumer.closed


def test_a_scoring_error_stops_the_loop_with_that_error_and_commits_nothing_after_it() -> None:
    run = rig(partition_logs(SIZES), batch=4, model=StandInModel(fail_on_call=2))
    with pytest.raises(RuntimeError, match="scorer broke"):
        run.run()
    assert [offsets for offsets, _ in run.consumer.commits] == [FIRST_BATCH]
    assert run.consumer.closed


def test_exactly_once_shows_each_output_once_through_a_failed_delivery() -> None:
    run = rig(partition_logs(SIZES), batch=4, delivery="exactly_once")
    run.producer.failing_deliveries = 1
    run.run()
    assert "abort_transaction" in run.producer.calls
    assert_everything_scored_once(run)  # aborted outputs are never visible: no repeats
    assert run.metrics.registry.get_sample_value("nids_delivery_failures_total") == 1


def test_exactly_once_commits_the_offsets_in_the_transaction_not_the_consumer() -> None:
    run = rig(partition_logs(SIZES), batch=4, delivery="exactly_once")
    run.run()
    assert run.consumer.commits == []
    assert run.producer.calls.count("commit_transaction") == len(run.producer.offsets_sent)
    assert_everything_scored_once(run)


def test_dead_letters_keep_the_original_bytes_and_count_their_reason() -> None:
    logs = partition_logs((4,))
    logs[0][1] = b"not json"
    run = rig(logs, batch=8)
    run.run(consume_calls=2)
    letters = run.topic(TOPICS.dead_letter)
    assert [letter.value for letter in letters] == [b"not json"]
    assert run.metrics.registry.get_sample_value("nids_invalid_records_total", {"reason": "not_json"}) == 1
    assert run.metrics.totals.invalid == 1 and run.metrics.totals.scored == 3


def test_a_refused_read_stops_the_loop_with_one_line() -> None:
    run = rig(partition_logs(SIZES), batch=4)

    def refused(_consumer: StandInConsumer) -> None:
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    run.consumer.on_consume[1] = refused
    with pytest.raises(NidsError, match="may not READ"):
        run.run()


def test_where_the_time_goes_is_counted_per_stage() -> None:
    run = rig(partition_logs(SIZES), batch=4)
    run.run()
    spent = {
        stage: run.metrics.registry.get_sample_value("nids_stage_seconds_total", {"stage": stage})
        for stage in (*Stage.LOOP, *Stage.SCORER)
    }
    assert all(seconds is not None for seconds in spent.values())  # every stage exported from the start
    # The stand-in model times none of the model's own stages; every loop stage ran.
    assert all(spent[stage] > 0 for stage in Stage.LOOP), spent


def test_a_stopped_exactly_once_detector_lets_go_of_its_producer() -> None:
    run = rig(partition_logs((6, 6)), delivery="exactly_once")
    run.run(consume_calls=5)
    producer = weakref.ref(run.producer)
    del run
    gc.collect()
    # The transaction watchdog's thread, a root for the collector, held the checkpoint and so the
    # producer until the process ended.
    assert producer() is None

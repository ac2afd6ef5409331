"""The checkpoint's pure parts: which offsets a commit names, and the watchdog over transaction calls."""

from __future__ import annotations

import time

from confluent_kafka import Message

from detector.checkpoint import Watchdog, next_offsets


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
    assert fired == [("send_offsets_to_transaction", 0.2)]


def test_the_watchdog_stays_quiet_for_calls_that_return_in_time() -> None:
    fired: list[tuple[str, float]] = []
    watchdog = Watchdog(lambda name, seconds: fired.append((name, seconds)))
    for _ in range(3):
        with watchdog.guard("commit_transaction", 1.0):
            time.sleep(0.05)
    time.sleep(1.5)
    assert fired == []

"""Reading output topics as a downstream consumer does: a group of its own, committed transactions only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, Message

from nids_harness.errors import HarnessError


def downstream_consumer(bootstrap: str, name: str, from_start: bool = True) -> Consumer:
    """A consumer as a downstream reader of the outputs runs one: a group of its own, committed
    transactions only, from the start of the topic or (`from_start` false) from its end."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{name}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest" if from_start else "latest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )


def read_topic(bootstrap: str, topic: str, expected: int | None = None, idle_seconds: float = 5.0) -> list[Message]:
    """Every message of `topic` from the start, as a downstream reader sees it; stops after `expected`
    messages (and a second more) or `idle_seconds` of silence."""
    consumer = downstream_consumer(bootstrap, f"reader-{topic}")
    consumer.subscribe([topic])
    out: list[Message] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_seconds:
            for message in consumer.consume(num_messages=5000, timeout=0.5):
                if message.error() is None:
                    out.append(message)
                    last = time.monotonic()
            if expected is not None and len(out) >= expected:
                # Linger briefly so duplicates beyond `expected` would still be seen.
                expected, idle_seconds = None, 1.0
    finally:
        consumer.close()
    return out


class LiveReader(threading.Thread):
    """Reads `topic` as it fills and hands each message to `on_message` with its arrival time."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        on_message: Callable[[Message, float], None],
        from_start: bool = True,
        poll_seconds: float = 0.005,
    ) -> None:
        super().__init__(daemon=True)
        self.consumer = downstream_consumer(bootstrap, f"live-{topic}", from_start)
        # The consumer is used by this thread only (it is not thread-safe): its assignment is
        # reported to the others through an event.
        self.assigned = threading.Event()
        self.consumer.subscribe([topic], on_assign=lambda _consumer, _partitions: self.assigned.set())
        self.topic, self.on_message = topic, on_message
        # consume() waits for all its messages or the timeout: a short one keeps arrival times exact.
        self.poll_seconds = poll_seconds
        self.running = True

    def wait_assigned(self, timeout: float = 30.0) -> None:
        if not self.assigned.wait(timeout):
            raise HarnessError(f"the reader of {self.topic} got no partitions within {timeout:.0f} s")

    def run(self) -> None:
        while self.running:
            for message in self.consumer.consume(5000, timeout=self.poll_seconds):
                if message.error() is None:
                    self.on_message(message, time.time())
        self.consumer.close()

    def stop(self) -> None:
        self.running = False
        self.join(10)

"""Whether a service's output partitions take acks=all writes.

With fewer replicas in sync than a topic's min.insync.replicas (two brokers of three down), brokers
refuse every write to it with NOT_ENOUGH_REPLICAS. librdkafka retries that refusal silently until the
message or the transaction times out, so the service sees only a timeout. When a batch cannot be
written, `WriteAvailability` asks the cluster why and says it once per outage, in the log and in a
gauge, and once more when writes are accepted again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

log = logging.getLogger("nids.kafka")
# The cluster is asked at most this often while writes keep failing.
CHECK_EVERY_S = 2.0
TIMEOUT_S = 5.0


class Labelled(Protocol):
    def labels(self, *values: str) -> Any: ...


def partitions_below_min_insync(
    admin: Any, topics: Sequence[str], timeout_s: float = TIMEOUT_S
) -> dict[str, tuple[list[int], int]]:
    """Per topic of `topics` that has any: (its partitions with fewer in-sync replicas than its
    min.insync.replicas, that minimum). `admin` is an AdminClient."""
    metadata = admin.list_topics(timeout=timeout_s)
    present = [topic for topic in topics if topic in metadata.topics]
    if not present:
        return {}
    futures = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, topic) for topic in present], request_timeout=timeout_s
    )
    below: dict[str, tuple[list[int], int]] = {}
    for resource, future in futures.items():
        minimum = int(future.result(timeout=timeout_s)["min.insync.replicas"].value)
        partitions = metadata.topics[resource.name].partitions
        short = sorted(number for number, partition in partitions.items() if len(partition.isrs) < minimum)
        if short:
            below[resource.name] = (short, minimum)
    return below


def describe(below: Mapping[str, tuple[list[int], int]]) -> str:
    return "; ".join(
        f"{topic} partition(s) {', '.join(map(str, partitions))} (min.insync.replicas {minimum})"
        for topic, (partitions, minimum) in below.items()
    )


class WriteAvailability:
    """Says why writes fail when the cluster refuses them for want of in-sync replicas.

    `on_failed_write` is cheap and safe from any callback: a thread of its own asks the cluster, at
    once and then every `every_s` until a batch is written again, since the loop itself is blocked
    in the retries of the very writes that fail."""

    def __init__(
        self,
        admin: Any,
        topics: Sequence[str],
        gauge: Labelled,
        now: Callable[[], float] = time.monotonic,
        every_s: float = CHECK_EVERY_S,
    ) -> None:
        """`gauge`: nids_partitions_below_min_insync{topic}, set to 0 for every topic here."""
        self.admin, self.topics, self.gauge, self.now, self.every_s = admin, tuple(topics), gauge, now, every_s
        self.outage_since: float | None = None
        self._failing = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        for topic in self.topics:
            gauge.labels(topic).set(0)
        self._thread = threading.Thread(target=self._watch, name="nids-write-availability", daemon=True)
        self._thread.start()

    def on_failed_write(self) -> None:
        """A write failed or a batch could not be committed: the watcher asks the cluster why."""
        self._failing.set()

    def on_written(self) -> None:
        """A batch was written and committed: an outage, if one was said, is over."""
        self._failing.clear()
        with self._lock:
            if self.outage_since is None:
                return
            log.warning("writes accepted again after %.0f s of NOT_ENOUGH_REPLICAS", self.now() - self.outage_since)
            self.outage_since = None
            for topic in self.topics:
                self.gauge.labels(topic).set(0)

    def check(self) -> None:
        """Ask the cluster which output partitions refuse writes; set the gauge, and say it the first
        time in an outage."""
        try:
            below = partitions_below_min_insync(self.admin, self.topics)
        # The cluster cannot say now (a request to a broker that is down times out): ask again later.
        except (KafkaException, TimeoutError, ValueError, KeyError) as exc:
            log.debug("in-sync replicas unknown: %s", exc)
            return
        with self._lock:
            if not self._failing.is_set():  # written again meanwhile
                return
            for topic in self.topics:
                self.gauge.labels(topic).set(len(below.get(topic, ((), 0))[0]))
            if below and self.outage_since is None:
                self.outage_since = self.now()
                log.error(
                    "writes refused with NOT_ENOUGH_REPLICAS: %s have fewer in-sync replicas than that; "
                    "nothing is committed, the batch is read again until a broker returns",
                    describe(below),
                )

    def close(self) -> None:
        self._stopped.set()
        self._failing.set()
        self._thread.join(timeout=TIMEOUT_S * 2)

    def _watch(self) -> None:
        while not self._stopped.is_set():
            self._failing.wait()
            if self._stopped.is_set():
                return
            self.check()
            self._stopped.wait(self.every_s)

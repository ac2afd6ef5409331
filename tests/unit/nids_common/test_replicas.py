"""WriteAvailability: which output partitions refuse writes, said once per outage and in a gauge."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from nids_common.replicas import WriteAvailability, partitions_below_min_insync


class Future:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self, timeout: float | None = None) -> Any:
        return self.value


class Admin:
    """An AdminClient stand-in: per topic, each partition's in-sync replicas, min.insync.replicas 2."""

    def __init__(self, isrs: dict[str, list[list[int]]]) -> None:
        self.isrs = isrs
        self.asked = 0

    def list_topics(self, timeout: float) -> Any:
        self.asked += 1
        return SimpleNamespace(
            topics={
                topic: SimpleNamespace(partitions={n: SimpleNamespace(isrs=isr) for n, isr in enumerate(partitions)})
                for topic, partitions in self.isrs.items()
            }
        )

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Future]:
        return {r: Future({"min.insync.replicas": SimpleNamespace(value="2")}) for r in resources}


def gauge() -> Gauge:
    return Gauge("nids_partitions_below_min_insync", "test", ["topic"], registry=CollectorRegistry())


def value(g: Gauge, topic: str) -> float:
    return g.labels(topic)._value.get()  # type: ignore[attr-defined, no-any-return]


def test_partitions_below_their_minimum_are_named() -> None:
    admin = Admin({"alerts": [[1, 2, 3], [1], [2, 3]], "dlq": [[3]], "other": [[1]]})
    assert partitions_below_min_insync(admin, ["alerts", "dlq", "absent"]) == {"alerts": ([1], 2), "dlq": ([0], 2)}


def test_an_outage_is_said_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    admin, g = Admin({"alerts": [[1], [1]], "dlq": [[1, 2]]}), gauge()
    availability = WriteAvailability(admin, ["alerts", "dlq"], g, every_s=3600)
    try:
        with caplog.at_level(logging.INFO, logger="nids.kafka"):
            for _ in range(3):
                availability.on_failed_write()
                availability.check()
            assert (value(g, "alerts"), value(g, "dlq")) == (2, 0)
            availability.on_written()
            availability.on_written()
        refused = [r.message for r in caplog.records if "NOT_ENOUGH_REPLICAS" in r.message]
        assert len(refused) == 2  # said once, and its end once
        assert "alerts partition(s) 0, 1 (min.insync.replicas 2)" in refused[0]
        assert "accepted again" in refused[1]
        assert (value(g, "alerts"), value(g, "dlq")) == (0, 0)
    finally:
        availability.close()


def test_the_watcher_asks_the_cluster_when_a_write_fails_and_not_before() -> None:
    admin, g = Admin({"alerts": [[1]]}), gauge()
    availability = WriteAvailability(admin, ["alerts"], g, every_s=0.05)
    try:
        time.sleep(0.2)
        assert admin.asked == 0
        availability.on_failed_write()
        deadline = time.monotonic() + 5
        while value(g, "alerts") != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert value(g, "alerts") == 1 and availability.outage_since is not None
        availability.on_written()
        asked = admin.asked
        time.sleep(0.2)
        assert admin.asked <= asked + 1  # no more asking once written
    finally:
        availability.close()


def test_a_check_after_the_batch_was_written_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    availability = WriteAvailability(Admin({"alerts": [[1]]}), ["alerts"], gauge(), every_s=3600)
    try:
        availability.check()  # no write failed: nothing to say
        assert availability.outage_since is None and not caplog.records
    finally:
        availability.close()


class SlowAdmin(Admin):
    """Its first describe_configs times out, as one sent to a broker that just went down does."""

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        if self.asked == 1:
            return {r: TimedOut() for r in resources}
        return super().describe_configs(resources, request_timeout)


class TimedOut:
    def result(self, timeout: float | None = None) -> Any:
        raise TimeoutError


def test_the_watcher_asks_again_after_a_request_times_out() -> None:
    admin, g = SlowAdmin({"alerts": [[1]]}), gauge()
    availability = WriteAvailability(admin, ["alerts"], g, every_s=0.05)
    try:
        availability.on_failed_write()
        deadline = time.monotonic() + 5
        while value(g, "alerts") != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert value(g, "alerts") == 1 and admin.asked >= 2
    finally:
        availability.close()

"""nids-incidents against the real broker: exactly-once incidents that equal the offline reference,
through SIGKILLs of the service, with state restored from the changelog."""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import time
from pathlib import Path

import msgspec

from incidents.config import IncidentsConfig
from incidents.offline import run_offline
from nids_common.contract import Incident
from nids_harness.groups import committed_so_far
from nids_harness.incident_stream import (
    RunningIncidents,
    incidents_config,
    latest_incidents,
    produce_alerts,
    repartitioned,
    start_incidents,
    synthetic_alerts,
)
from nids_harness.waiting import wait_until

PARTITIONS = 3


def comparable(incident: Incident) -> tuple[object, ...]:
    """An incident's content without when and why it closed (quiet in a stream, end_of_input offline)
    and without detection-time bookkeeping of its records."""
    return msgspec.structs.astuple(msgspec.structs.replace(incident, close_reason=None, revision=0))


def assert_exact(config: IncidentsConfig, bootstrap: str, alerts_sent: int) -> list[Incident]:
    latest, records = latest_incidents(bootstrap, config.topics.incidents)
    assert latest, "no incident written"
    assert all(incident.state == "closed" for incident in latest.values())
    # Every alert read is in exactly one closed incident (suppressed ones would be counted too).
    assert sum(incident.alerts + incident.suppressed for incident in latest.values()) == alerts_sent
    opened = collections.Counter(record.incident_id for record in records if record.state == "open")
    assert set(opened.values()) == {1}, "an incident was opened twice"
    assert len(opened) == len(latest)
    reference = [
        incident
        for incident in run_offline(repartitioned(bootstrap, config), config.incidents, partitions=PARTITIONS)
        if incident.state == "closed"
    ]
    assert sorted(map(comparable, latest.values())) == sorted(map(comparable, reference))
    return list(latest.values())


def test_incidents_in_process_equal_the_offline_reference(kafka_bootstrap: str, unique_name: str) -> None:
    config = incidents_config(
        kafka_bootstrap, unique_name, PARTITIONS, delivery="exactly_once", idle_close_s=4.0, instance_id=unique_name
    )
    sent = produce_alerts(kafka_bootstrap, config.topics.alerts, synthetic_alerts(4000, sources=30))
    running = RunningIncidents(config)
    try:
        assert running.wait_for(lambda: running.value("nids_incident_alerts_tracked_total") >= sent, 90)
        # The stream goes quiet: processing time closes every incident left open.
        assert running.wait_for(lambda: running.value("nids_incidents_open") == 0, 30)
    finally:
        running.stop()
    registry = running.metrics.registry
    incidents = assert_exact(config, kafka_bootstrap, sent)
    assert len(incidents) >= 30  # one or two episodes per source, plus the address-less fallback keys
    assert registry.get_sample_value("nids_incident_records_total", {"state": "closed"}) == len(incidents)


def test_three_sigkills_lose_nothing_and_open_nothing_twice(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    config = incidents_config(
        kafka_bootstrap,
        unique_name,
        PARTITIONS,
        delivery="exactly_once",
        idle_close_s=4.0,
        instance_id=unique_name,
        max_records=500,
    )
    log = tmp_path / "incidents.log"
    alerts = list(synthetic_alerts(12_000, sources=40))
    chunks = [alerts[i::4] for i in range(4)]
    chunks = [sorted(chunk, key=lambda alert: alert.flow_id) for chunk in chunks]
    rng = random.Random(7)
    service = start_incidents(config, log)
    sent = 0
    try:
        for chunk in chunks[:3]:
            tracked = _tracked(config, kafka_bootstrap)
            sent += produce_alerts(kafka_bootstrap, config.topics.alerts, iter(chunk))
            # Mid-stream: killed once this member has committed part of the chunk's incidents (a
            # fixed sleep killed slow starters before they had committed anything, leaving nothing
            # open to restore), at a random moment after that.
            progressed = wait_until(lambda: _tracked(config, kafka_bootstrap) > tracked, 60, poll=0.1)  # noqa: B023
            assert progressed, log.read_text()[-3000:]
            time.sleep(rng.uniform(0.0, 1.0))
            os.kill(service.pid, signal.SIGKILL)
            service.wait(10)
            service = start_incidents(config, log)
        sent += produce_alerts(kafka_bootstrap, config.topics.alerts, iter(chunks[3]))
        assert wait_until(lambda: _all_closed(config, kafka_bootstrap, sent), 120), log.read_text()[-3000:]
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    assert service.returncode == 0, log.read_text()[-3000:]
    assert_exact(config, kafka_bootstrap, sent)
    # The members after the kills took over open incidents from the changelog.
    restored = [int(n) for n in re.findall(r": (\d+) open incidents restored from", log.read_text())]
    assert sum(1 for n in restored if n > 0) >= 2, restored


def _tracked(config: IncidentsConfig, bootstrap: str) -> int:
    """The repartitioned alerts whose incidents the group has committed (-1 while it cannot say)."""
    return committed_so_far(bootstrap, config.incidents.group_id, config.repartition_topic)


def _all_closed(config: IncidentsConfig, bootstrap: str, sent: int) -> bool:
    latest, _ = latest_incidents(bootstrap, config.topics.incidents, idle_seconds=1.0)
    closed = [incident for incident in latest.values() if incident.state == "closed"]
    return len(closed) == len(latest) and sum(i.alerts + i.suppressed for i in closed) == sent

"""The detector survives a broker outage: it keeps running, reports the broker down, resumes by itself,
and every flow from before and after the outage is scored."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from nids_harness.checkout import KAFKA_LOCAL
from nids_harness.running_detector import RunningDetector, detector_config
from nids_harness.topics import make_topics
from tests.integration.helpers import replay_synthetic


def test_detector_resumes_after_the_broker_comes_back(own_broker: str, unique_name: str, trained_model: Path) -> None:
    # It stops and starts the broker: only one this test session started (own_broker).
    kafka_bootstrap = own_broker
    topics = make_topics(kafka_bootstrap, unique_name)
    replay_synthetic(kafka_bootstrap, topics.flows, 500, seed=71, run_id="before")
    running = RunningDetector(detector_config(kafka_bootstrap, topics, unique_name, trained_model))
    try:
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= 500)
        subprocess.run([KAFKA_LOCAL, "stop"], check=True, capture_output=True)
        assert running.wait_for(lambda: running.value("nids_broker_up") == 0, 60), "outage not reported"
        time.sleep(2)
        assert running.thread.is_alive(), "the detector died with the broker"
        subprocess.run([KAFKA_LOCAL, "start"], check=True, capture_output=True)
        replay_synthetic(kafka_bootstrap, topics.flows, 500, seed=72, run_id="after")
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= 1000, 90), "did not resume"
        assert running.value("nids_broker_up") == 1
        assert (
            sum(
                s.value
                for s in running.metrics.kafka_errors.collect()[0].samples
                if s.name == "nids_kafka_errors_total"
            )
            > 0
        )
    finally:
        subprocess.run([KAFKA_LOCAL, "start"], capture_output=True)
        running.stop()

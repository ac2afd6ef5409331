"""No input and no crash stops detection or repeats a verdict, against the real broker:
an oversized message is dead-lettered and the stream goes on; in exactly_once mode, detectors killed
with SIGKILL mid-batch and a broker killed the same way cost no alert and repeat none, and a
restarted detector resumes within 10 s."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from confluent_kafka import Producer

from nids_common.contract import DEAD_LETTER_MAX_BYTES, Header, Reason
from nids_dataset.synthetic import synthetic_frame
from nids_harness.chaos import OVERSIZED_BYTES, run_chaos, single_broker_fault
from nids_harness.reading import read_topic
from nids_harness.running_detector import RunningDetector, detector_config
from nids_harness.topics import make_topics
from nids_model.artifact import load_model
from tests.integration.helpers import replay_synthetic

RESUME_BOUND_S = 10.0


def test_an_oversized_compressible_message_is_dead_lettered_and_the_flows_after_it_scored(
    kafka_bootstrap: str, unique_name: str, trained_model: Path
) -> None:
    topics = make_topics(kafka_bootstrap, unique_name, partitions=1)
    before = replay_synthetic(kafka_bootstrap, topics.flows, 200, seed=3, run_id="before")
    oversized = b'{"flow_id": "big", "pad": "' + b"a" * OVERSIZED_BYTES + b'"}'
    # lz4 shrinks it to a few KiB: the broker takes it, though it is 1.6 MB once decompressed.
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "compression.type": "lz4", "message.max.bytes": 20_000_000}
    )
    producer.produce(topics.flows, oversized, "oversized")
    assert producer.flush(10) == 0
    after = replay_synthetic(kafka_bootstrap, topics.flows, 300, seed=4, run_id="after")

    running = RunningDetector(detector_config(kafka_bootstrap, topics, unique_name, trained_model))
    try:
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= 500)
        assert running.thread.is_alive(), "the oversized message stopped the detector"
        assert running.value("nids_invalid_records_total", reason=Reason.TOO_LARGE) == 1
        assert running.value("nids_outputs_refused_total", output="dead_letters") == 0
    finally:
        running.stop()
    (dead,) = read_topic(kafka_bootstrap, topics.dead_letter, expected=1)
    headers = {name: value.decode() for name, value in dead.headers() or []}
    assert dead.key() == b"oversized" and dead.value() == oversized[:DEAD_LETTER_MAX_BYTES]
    assert headers[Header.REASON] == Reason.TOO_LARGE and headers[Header.TRUNCATED] == "true"
    assert int(headers[Header.ORIGINAL_SIZE]) == len(oversized)
    model, _ = load_model(trained_model)
    flows = pd.concat([before, after], ignore_index=True)
    expected = set(flows["flow_id"][model.score(flows).is_attack])
    assert {m.key().decode() for m in read_topic(kafka_bootstrap, topics.alerts, expected=len(expected))} == expected


def test_exactly_once_through_detector_and_broker_sigkills(
    own_broker: str, trained_model: Path, tmp_path: Path
) -> None:
    frame = synthetic_frame(120_000, seed=17)
    report = run_chaos(
        own_broker,
        frame,
        trained_model,
        "exactly_once",
        kills=3,
        malformed=300,
        broker_fault=single_broker_fault,
        workdir=tmp_path,
    )
    print(report.line())
    assert report.missing_alerts == 0 and report.duplicated_alerts == 0, report.line()
    assert report.missing_dead == 0 and report.duplicated_dead == 0, report.line()
    assert report.got_dead == report.expected_dead == 300 + 10 + 1, report.line()
    assert len(report.detector_stalls) == 3 and report.longest_detector_stall <= RESUME_BOUND_S, report.line()
    assert report.broker_stall is not None, report.line()

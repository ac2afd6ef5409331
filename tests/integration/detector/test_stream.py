"""The streaming detector against the real broker: alerts match offline scoring, bad records go to the
dead-letter topic with their reason, metrics agree with the topics, a consumer group shares the work."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from prometheus_client import CollectorRegistry

from detector.cli import build_detector
from detector.metrics import DetectorMetrics
from detector.reload import load_live
from nids_common.contract import Header, alert_decoder, verdict_decoder
from nids_common.stages import StageTimes
from nids_harness.payloads import SENSOR_DECIMALS, bad_payloads, valid_flow
from nids_harness.reading import read_topic
from nids_harness.running_detector import RunningDetector, detector_config
from nids_harness.topics import make_topics
from nids_model.artifact import load_model
from nids_model.detection import DetectionModel, Features, Scores
from tests.integration.helpers import replay_synthetic

FLOWS = 3000


# Numbers with a sensor's 6 decimals take the compiled reader's path (detector.number_fields); a
# double's 17 digits are beyond it and take msgspec's whole-Flow path.
@pytest.mark.parametrize("decimals", [SENSOR_DECIMALS, None], ids=["sensor-precision", "full-precision"])
def test_alerts_are_exactly_the_offline_attacks(
    kafka_bootstrap: str, unique_name: str, trained_model: Path, decimals: int | None
) -> None:
    topics = make_topics(kafka_bootstrap, unique_name)
    flows = replay_synthetic(kafka_bootstrap, topics.flows, FLOWS, seed=31, run_id="r1", decimals=decimals)
    model, manifest = load_model(trained_model)
    offline = model.score(flows)
    expected = set(flows["flow_id"][offline.is_attack])
    assert 0 < len(expected) < FLOWS

    running = RunningDetector(detector_config(kafka_bootstrap, topics, unique_name, trained_model))
    try:
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= FLOWS)
    finally:
        running.stop()
    alerts = read_topic(kafka_bootstrap, topics.alerts, expected=len(expected))
    ids = [m.key().decode() for m in alerts]
    assert len(ids) == len(set(ids)), "an alert was produced twice"
    assert set(ids) == expected
    by_id = flows.set_index("flow_id")
    offline_cat = pd.Series(offline.attack_cat, index=flows["flow_id"])
    for message in alerts[:200]:
        alert = alert_decoder.decode(message.value() or b"")  # the contract's struct, unknown keys refused
        assert alert.is_attack and alert.attack_cat == offline_cat[alert.flow_id] != "Normal"
        assert alert.model_version == manifest.version
        assert alert.source.topic == topics.flows
        assert abs(sum(alert.class_probabilities.values()) - 1) < 1e-3
        assert alert.flow_id in by_id.index


def test_malformed_messages_are_dead_lettered_and_the_rest_scored(
    kafka_bootstrap: str, unique_name: str, trained_model: Path
) -> None:
    topics = make_topics(kafka_bootstrap, unique_name, partitions=1)
    max_bytes = 4096
    good = valid_flow("base", 1)
    bad = bad_payloads(good, max_bytes)
    valid = {
        "plain": orjson.dumps({**good, "flow_id": "v-plain"}),
        "extra_fields": orjson.dumps({**good, "flow_id": "v-extra", "note": {"any": [1, 2]}, "srcip": "10.1.1.1"}),
        "unseen_categories": orjson.dumps(
            {**good, "flow_id": "v-unseen", "proto": "quic9", "service": "gopher", "state": "ZZ"}
        ),
        "null_key": orjson.dumps({**good, "flow_id": "v-nullkey"}),
        "with_truth": orjson.dumps(
            {**good, "flow_id": "v-truth", "label": 1, "attack_cat": "Exploits", "ts": 1421927414.5}
        ),
    }
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for name, (payload, _, _) in bad.items():
        producer.produce(topics.flows, key=name.encode(), value=payload)
    for name, payload in valid.items():
        producer.produce(topics.flows, key=None if name == "null_key" else name.encode(), value=payload)
    assert producer.flush(10) == 0
    total = len(bad) + len(valid)

    running = RunningDetector(
        detector_config(
            kafka_bootstrap, topics, unique_name, trained_model, max_message_bytes=max_bytes, emit_verdicts=True
        )
    )
    try:
        assert running.wait_for(lambda: running.value("nids_flows_consumed_total") >= total)
        assert running.thread.is_alive(), "a bad record stopped the detector"
        dead = read_topic(kafka_bootstrap, topics.dead_letter, expected=len(bad))
        verdicts = read_topic(kafka_bootstrap, topics.verdicts, expected=len(valid))
        counts = {
            reason: running.value("nids_invalid_records_total", reason=reason)
            for reason in {r for _, r, _ in bad.values()}
        }
        scored = running.value("nids_flows_scored_total")
    finally:
        running.stop()

    assert len(dead) == len(bad)
    for message in dead:
        name = message.key().decode()
        payload, reason, field = bad[name]
        headers = {k: v.decode() for k, v in message.headers()}
        assert message.value() == payload, f"{name}: dead letter must carry the original bytes"
        assert headers[Header.REASON] == reason, name
        if field:
            assert headers[Header.FIELD] == field, name
        source = json.loads(headers[Header.SOURCE])
        assert source["topic"] == topics.flows and source["partition"] == 0 and isinstance(source["offset"], int)
    expected_counts: dict[str, int] = {}
    for _, reason, _ in bad.values():
        expected_counts[reason] = expected_counts.get(reason, 0) + 1
    assert counts == expected_counts
    assert scored == len(valid)
    decoded = [verdict_decoder.decode(m.value() or b"") for m in verdicts]  # the contract's struct
    assert {v.flow_id for v in decoded} == {"v-plain", "v-extra", "v-unseen", "v-nullkey", "v-truth"}
    for verdict in decoded:
        # The contract: class probabilities exactly for the flows called attacks, null for the others.
        assert (verdict.class_probabilities is not None) == verdict.is_attack, verdict.flow_id
        assert (verdict.attack_cat != "Normal") == verdict.is_attack, verdict.flow_id


def test_metrics_agree_with_topics(kafka_bootstrap: str, unique_name: str, trained_model: Path) -> None:
    topics = make_topics(kafka_bootstrap, unique_name)
    flows = replay_synthetic(kafka_bootstrap, topics.flows, 2000, seed=41, run_id="m")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(25):
        producer.produce(topics.flows, key=f"junk-{i}", value=b"{not json")
    assert producer.flush(10) == 0
    running = RunningDetector(detector_config(kafka_bootstrap, topics, unique_name, trained_model))
    try:
        assert running.wait_for(lambda: running.value("nids_flows_consumed_total") >= 2025)
        alerts = read_topic(kafka_bootstrap, topics.alerts)
        consumed = running.value("nids_flows_consumed_total")
        scored = running.value("nids_flows_scored_total")
        invalid = sum(
            running.value("nids_invalid_records_total", reason=r)
            for r in ("empty", "too_large", "not_json", "not_object", "missing_field", "bad_type", "non_finite")
        )
        alert_total = sum(s.value for s in running.metrics.alerts.collect()[0].samples if s.name == "nids_alerts_total")
        classified = sum(
            s.value
            for s in running.metrics.classifications.collect()[0].samples
            if s.name == "nids_classifications_total"
        )
        latency_count = running.value("nids_end_to_end_latency_seconds_count")
    finally:
        running.stop()
    assert consumed == scored + invalid == 2025
    assert invalid == 25
    assert alert_total == len(alerts) > 0
    assert classified == len(flows)
    assert latency_count == len(alerts)


def test_two_detectors_share_partitions_and_take_over(
    kafka_bootstrap: str, unique_name: str, trained_model: Path
) -> None:
    topics = make_topics(kafka_bootstrap, unique_name)
    config = detector_config(kafka_bootstrap, topics, unique_name, trained_model, max_records=200)
    first = RunningDetector(config)
    second = RunningDetector(config)
    try:
        assert first.wait_for(
            lambda: _assigned(first) + _assigned(second) == 6 and _assigned(first) > 0 and _assigned(second) > 0, 60
        )
        flows = replay_synthetic(kafka_bootstrap, topics.flows, 2000, seed=51, run_id="a")
        assert first.wait_for(
            lambda: first.value("nids_flows_scored_total") + second.value("nids_flows_scored_total") >= 2000
        )
        assert first.value("nids_flows_scored_total") > 0 and second.value("nids_flows_scored_total") > 0
        first.stop()
        assert second.wait_for(lambda: _assigned(second) == 6, 60)
        more = replay_synthetic(kafka_bootstrap, topics.flows, 2000, seed=52, run_id="b")
        assert second.wait_for(
            lambda: second.value("nids_flows_scored_total") + first.value("nids_flows_scored_total") >= 4000
        )
    finally:
        if first.thread.is_alive():
            first.stop()
        second.stop()
    model, _ = load_model(trained_model)
    all_flows = pd.concat([flows, more], ignore_index=True)
    expected = set(all_flows["flow_id"][model.score(all_flows).is_attack])
    alerts = read_topic(kafka_bootstrap, topics.alerts, expected=len(expected))
    # At-least-once: every attack alerted; a takeover may repeat a batch, never skip one.
    assert {m.key().decode() for m in alerts} == expected


def _assigned(running: RunningDetector) -> int:
    return len(running.metrics.lag.collect()[0].samples)


def test_a_failed_delivery_rewinds_and_nothing_is_lost(
    kafka_bootstrap: str, unique_name: str, trained_model: Path
) -> None:
    topics = make_topics(kafka_bootstrap, unique_name)
    # The broker itself refuses the alerts for a while: the topic takes no message that large.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    set_max_message_bytes(admin, topics.alerts, 64)
    flows = replay_synthetic(kafka_bootstrap, topics.flows, 1500, seed=81, run_id="rw")
    # Small batches over 6 partitions: the batches after the rewind cover only some partitions.
    config = detector_config(kafka_bootstrap, topics, unique_name, trained_model, max_records=100)
    running = RunningDetector(config)
    try:
        assert running.wait_for(lambda: running.value("nids_delivery_failures_total") >= 1, 60)
        assert running.value("nids_flows_scored_total") == 0  # nothing committed while alerts fail
        set_max_message_bytes(admin, topics.alerts, 1_048_588)
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= 1500, 90)
    finally:
        running.stop()
    model, _ = load_model(trained_model)
    expected = set(flows["flow_id"][model.score(flows).is_attack])
    alerts = read_topic(kafka_bootstrap, topics.alerts, expected=len(expected))
    assert {m.key().decode() for m in alerts} == expected
    reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": unique_name})
    try:
        partitions = [TopicPartition(topics.flows, p) for p in range(6)]
        committed = {tp.partition: tp.offset for tp in reader.committed(partitions, timeout=10)}
        ends = {p: reader.get_watermark_offsets(TopicPartition(topics.flows, p), timeout=10)[1] for p in range(6)}
    finally:
        reader.close()
    assert committed == ends


def test_a_scoring_error_stops_the_detector_and_loses_nothing(
    kafka_bootstrap: str, unique_name: str, trained_model: Path
) -> None:
    topics = make_topics(kafka_bootstrap, unique_name)
    flows = replay_synthetic(kafka_bootstrap, topics.flows, 1200, seed=91, run_id="se")
    # Full batches of 100: one is scoring on the scorer thread while the next is read.
    config = detector_config(kafka_bootstrap, topics, unique_name, trained_model, max_records=100)
    live = load_live(trained_model, threads=1)
    broken_live = dataclasses.replace(live, model=FailsOnCall(live.model, 4))  # type: ignore[arg-type]
    broken = build_detector(config, broken_live, DetectorMetrics(CollectorRegistry()))
    with pytest.raises(RuntimeError, match="scorer broke"):
        broken.run()
    assert broken.totals.scored < 1200
    # The group resumes from the last batch that was finished: every attack is alerted in the end.
    running = RunningDetector(config)
    try:
        assert running.wait_for(lambda: broken.totals.scored + running.value("nids_flows_scored_total") >= 1200, 60)
    finally:
        running.stop()
    expected = set(flows["flow_id"][load_model(trained_model)[0].score(flows).is_attack])
    alerts = read_topic(kafka_bootstrap, topics.alerts, expected=len(expected))
    assert {m.key().decode() for m in alerts} == expected


def set_max_message_bytes(admin: AdminClient, topic: str, limit: int) -> None:
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET)
    ])  # fmt: skip
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


class FailsOnCall:
    """The real model, whose `score_features` raises on call number `failing`."""

    def __init__(self, model: DetectionModel, failing: int) -> None:
        self.model, self.failing, self.calls = model, failing, 0
        self.classes = model.classes

    def features(self, columns: Any) -> Features:
        return self.model.features(columns)

    def score_features(self, features: Features, stages: StageTimes | None = None) -> Scores:
        self.calls += 1
        if self.calls == self.failing:
            raise RuntimeError("scorer broke")
        return self.model.score_features(features, stages)

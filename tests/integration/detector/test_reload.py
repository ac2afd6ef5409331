"""A new model goes live while the stream runs, against the real broker: no flow lost or scored twice,
each verdict scored by the version it names; a tampered or canary-failing artifact is refused while
the old model keeps scoring; nids-model rollback re-points latest and the detector follows."""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import pandas as pd

from nids_common.contract import verdict_decoder
from nids_harness.reading import read_topic
from nids_harness.running_detector import RunningDetector, detector_config
from nids_harness.topics import make_topics
from nids_model.artifact import load_model, point_latest
from tests.integration.helpers import replay_synthetic
from training import model_cli

POLL_S = 0.2


def verdicts_by_flow(bootstrap: str, topic: str, expected: int) -> dict[str, list[tuple[str, str]]]:
    """flow_id → [(model_version, attack_cat)] of every verdict read (read_committed)."""
    seen: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for message in read_topic(bootstrap, topic, expected=expected):
        verdict = verdict_decoder.decode(message.value() or b"")
        seen[verdict.flow_id].append((verdict.model_version, verdict.attack_cat))
    return seen


def scored_offline(models: Path, version: str, flows: pd.DataFrame) -> dict[str, str]:
    model, _ = load_model(models / version)
    return dict(zip(flows["flow_id"], model.score(flows).attack_cat, strict=True))


def test_a_promoted_model_goes_live_mid_stream_without_loss_or_repeats(
    kafka_bootstrap: str, unique_name: str, model_store: tuple[Path, str, str]
) -> None:
    models, first, second = model_store
    topics = make_topics(kafka_bootstrap, unique_name)
    config = detector_config(
        kafka_bootstrap, topics, unique_name, models / "latest", emit_verdicts=True, model_poll_s=POLL_S
    )
    running = RunningDetector(config)
    try:
        before = replay_synthetic(kafka_bootstrap, topics.flows, 1500, seed=51, run_id="before")
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= 1500)
        assert running.value("nids_model_info", version=first) == 1
        assert model_cli.main(["--models", str(models), "promote", second]) == 0
        assert running.wait_for(lambda: running.value("nids_model_info", version=second) == 1, 30)
        assert running.value("nids_model_reloads_total", result="loaded") == 1
        after = replay_synthetic(kafka_bootstrap, topics.flows, 1500, seed=52, run_id="after")
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= 3000)
    finally:
        running.stop()
    seen = verdicts_by_flow(kafka_bootstrap, topics.verdicts, 3000)
    assert set(seen) == set(before["flow_id"]) | set(after["flow_id"])
    assert all(len(verdicts) == 1 for verdicts in seen.values()), "a flow was scored twice"
    # Every verdict names the version that scored it, and that version scores it the same way offline.
    offline = {version: scored_offline(models, version, pd.concat([before, after])) for version in (first, second)}
    for flow_id, [(version, attack_cat)] in seen.items():
        assert offline[version][flow_id] == attack_cat, (flow_id, version)
    assert {seen[f][0][0] for f in before["flow_id"]} == {first}
    assert {seen[f][0][0] for f in after["flow_id"]} == {second}


def test_bad_artifacts_are_refused_and_rollback_is_followed(
    kafka_bootstrap: str, unique_name: str, model_store: tuple[Path, str, str]
) -> None:
    models, first, second = model_store
    tampered, canary_fails = f"{second}-tampered", f"{second}-canary"
    shutil.copytree(models / second, models / tampered)
    blob = bytearray((models / tampered / "model.joblib").read_bytes())
    blob[len(blob) // 3] ^= 0x01
    (models / tampered / "model.joblib").write_bytes(bytes(blob))
    shutil.copytree(models / second, models / canary_fails)
    manifest = json.loads((models / canary_fails / "manifest.json").read_text())
    manifest["canary"]["expected"]["attack_probability"][0] += 1e-9
    (models / canary_fails / "manifest.json").write_text(json.dumps(manifest))

    topics = make_topics(kafka_bootstrap, unique_name)
    running = RunningDetector(
        detector_config(
            kafka_bootstrap, topics, unique_name, models / "latest", emit_verdicts=True, model_poll_s=POLL_S
        )
    )
    sent = 0
    try:
        for refused, bad in enumerate((tampered, canary_fails), start=1):
            # Re-pointed by hand: nids-model promote would refuse them before any detector saw them.
            point_latest(models, bad)
            assert running.wait_for(lambda: running.value("nids_model_reloads_total", result="refused") == refused, 30)  # noqa: B023
            assert running.value("nids_model_info", version=first) == 1
        replay_synthetic(kafka_bootstrap, topics.flows, 500, seed=61, run_id="kept")
        sent += 500
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= sent)

        assert model_cli.main(["--models", str(models), "promote", second]) == 0
        assert running.wait_for(lambda: running.value("nids_model_info", version=second) == 1, 30)
        assert model_cli.main(["--models", str(models), "rollback"]) == 0
        assert (models / "latest").resolve().name == first
        assert running.wait_for(lambda: running.value("nids_model_info", version=first) == 1, 30)
        replay_synthetic(kafka_bootstrap, topics.flows, 500, seed=62, run_id="back")
        sent += 500
        assert running.wait_for(lambda: running.value("nids_flows_scored_total") >= sent)
    finally:
        running.stop()
    seen = verdicts_by_flow(kafka_bootstrap, topics.verdicts, sent)
    assert len(seen) == sent and all(len(v) == 1 for v in seen.values())
    assert {v[0][0] for v in seen.values()} == {first}, "only the first model may have scored these flows"
    assert running.value("nids_model_reloads_total", result="loaded") == 2

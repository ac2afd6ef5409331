"""Alert messages: valid JSON with every contract field, identity passed through, probabilities per class."""
from __future__ import annotations

import json

import numpy as np

import msgspec

from detector.alerts import alert_payloads
from detector.decode import Flow
from nids_common.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from training.detection import Scores

CLASSES = ("DoS", "Exploits", "Normal")


def test_alert_contract_fields() -> None:
    features = {**{f: "x" for f in CATEGORICAL_FEATURES}, **{f: 1.0 for f in NUMERIC_FEATURES}}
    records = [msgspec.convert({**features, **extra}, Flow) for extra in (
        {"flow_id": "a", "ts": 12.5, "srcip": "1.2.3.4", "sport": 80},
        {"flow_id": "b"},
        {"flow_id": "c", "dstip": "5.6.7.8"},
    )]
    scores = Scores(
        attack_probability=np.array([0.91, 0.2, 0.7]),
        is_attack=np.array([True, False, True]),
        attack_cat=np.array(["DoS", "Normal", "Exploits"], dtype=object),
        class_probabilities=np.array([[0.8, 0.15, 0.05], [np.nan] * 3, [0.1, 0.6, 0.3]]),
    )
    out = alert_payloads(np.array([0, 2]), records, scores, CLASSES, (["flows", "flows"], [2, 4], [10, 7]), "v9")
    assert [key for key, _ in out] == ["a", "c"]
    first, second = (json.loads(value) for _, value in out)
    assert first == {
        "flow_id": "a", "is_attack": True, "attack_cat": "DoS", "attack_probability": 0.91, "model_version": "v9",
        "detected_at": first["detected_at"], "ts": 12.5, "source": {"topic": "flows", "partition": 2, "offset": 10},
        "class_probabilities": {"DoS": 0.8, "Exploits": 0.15, "Normal": 0.05}, "srcip": "1.2.3.4", "sport": 80,
    }
    assert second["dstip"] == "5.6.7.8" and second["ts"] is None and second["source"]["partition"] == 4
    verdicts = alert_payloads(np.array([1]), records, scores, CLASSES, (["flows"], [2], [11]), "v9")
    assert json.loads(verdicts[0][1])["class_probabilities"] is None

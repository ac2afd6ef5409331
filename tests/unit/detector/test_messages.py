"""Alert and verdict messages hold the stream contract: they decode strictly into its structs, carry
every field, pass identity through, and give class probabilities exactly for attacks."""

from __future__ import annotations

import hashlib

import msgspec
import numpy as np
import orjson

from detector.messages import verdict_payloads
from nids_common.contract import UNSET, Alert, Flow, Header, Reason, Source, Verdict, alert_decoder, verdict_decoder
from nids_common.dead_letters import InvalidRecord, dead_letter
from nids_common.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from nids_model.detection import Scores

CLASSES = ("DoS", "Exploits", "Normal")
FEATURE_VALUES = {**dict.fromkeys(CATEGORICAL_FEATURES, "x"), **dict.fromkeys(NUMERIC_FEATURES, 1.0)}
RECORDS = [
    msgspec.convert({**FEATURE_VALUES, **extra}, Flow)
    for extra in (
        {"flow_id": "a", "ts": 12.5, "srcip": "1.2.3.4", "sport": 80},
        {"flow_id": "b"},
        {"flow_id": "c", "dstip": "5.6.7.8"},
    )
]
SCORES = Scores(
    attack_probability=np.array([0.91, 0.2, 0.7]),
    is_attack=np.array([True, False, True]),
    attack_cat=np.array(["DoS", "Normal", "Exploits"], dtype=object),
    class_probabilities=np.array([[0.8, 0.15, 0.05], [np.nan] * 3, [0.1, 0.6, 0.3]]),
)
ORIGIN = (["flows"] * 3, [2, 3, 4], [10, 11, 7])


def test_alerts_decode_into_the_contract_with_every_field() -> None:
    out = verdict_payloads(np.array([0, 2]), RECORDS, SCORES, CLASSES, (["flows"] * 2, [2, 4], [10, 7]), "v9")
    assert [key for key, _ in out] == ["a", "c"]
    first, second = (alert_decoder.decode(value) for _, value in out)
    assert first == Alert(
        flow_id="a", is_attack=True, attack_cat="DoS", attack_probability=0.91, model_version="v9",
        detected_at=first.detected_at, ts=12.5, source=Source(topic="flows", partition=2, offset=10),
        class_probabilities={"DoS": 0.8, "Exploits": 0.15, "Normal": 0.05}, srcip="1.2.3.4", sport=80,
    )  # fmt: skip
    assert second.dstip == "5.6.7.8" and second.srcip is UNSET and second.ts is None
    assert second.source.partition == 4


def test_verdicts_of_normal_flows_carry_null_probabilities() -> None:
    out = verdict_payloads(np.arange(3), RECORDS, SCORES, CLASSES, ORIGIN, "v9")
    verdicts = [verdict_decoder.decode(value) for _, value in out]
    assert [v.is_attack for v in verdicts] == [True, False, True]
    assert verdicts[1].class_probabilities is None and verdicts[1].attack_cat == "Normal"
    assert verdicts[0].class_probabilities == {"DoS": 0.8, "Exploits": 0.15, "Normal": 0.05}


def test_the_contract_refuses_an_alert_without_probabilities_or_with_unknown_keys() -> None:
    (_, normal), *_ = verdict_payloads(np.array([1]), RECORDS, SCORES, CLASSES, ORIGIN, "v9")
    assert isinstance(verdict_decoder.decode(normal), Verdict)
    try:
        alert_decoder.decode(normal)
        raise AssertionError("a verdict without class probabilities must not pass as an alert")
    except msgspec.ValidationError as exc:
        assert "class_probabilities" in str(exc)
    extra = orjson.dumps({**orjson.loads(normal), "surprise": 1})
    try:
        verdict_decoder.decode(extra)
        raise AssertionError("an unknown key must be refused")
    except msgspec.ValidationError as exc:
        assert "surprise" in str(exc)


def test_a_dead_letter_carries_the_original_bytes_and_its_reason() -> None:
    error = InvalidRecord(Reason.BAD_TYPE, "dur", "Expected `float`, got `str`", "flows", 1, 99)
    value, headers = dead_letter(b'{"dur": "x"}', error, max_bytes=1024)
    assert value == b'{"dur": "x"}'
    named = dict(headers)
    assert named[Header.REASON] == b"bad_type" and named[Header.FIELD] == b"dur"
    assert named[Header.DETAIL] == b"Expected `float`, got `str`"
    assert orjson.loads(named[Header.SOURCE]) == {"topic": "flows", "partition": 1, "offset": 99}
    assert Header.TRUNCATED not in named


def test_a_too_large_original_becomes_a_prefix_with_its_size_and_digest() -> None:
    original = b'{"pad": "' + b"x" * 5000 + b'"}'
    error = InvalidRecord(Reason.TOO_LARGE, None, "5011 bytes > limit 4096", "flows", 0, 7)
    value, headers = dead_letter(original, error, max_bytes=1024)
    assert value == original[:1024]
    named = dict(headers)
    assert named[Header.TRUNCATED] == b"true"
    assert named[Header.ORIGINAL_SIZE] == str(len(original)).encode()
    assert named[Header.ORIGINAL_SHA256] == hashlib.sha256(original).hexdigest().encode()


def test_a_tombstone_stays_null() -> None:
    value, headers = dead_letter(None, InvalidRecord(Reason.EMPTY, None, "no value", "flows", 0, 1), max_bytes=1024)
    assert value is None and dict(headers)[Header.REASON] == b"empty"


def test_an_alert_with_addresses_ports_and_proto_carries_its_community_id() -> None:
    # The spec's baseline: TCP 128.232.110.120:34855 → 66.35.250.204:80, seed 0.
    identity = {"srcip": "128.232.110.120", "sport": 34855, "dstip": "66.35.250.204", "dsport": 80}
    whole = msgspec.convert({**FEATURE_VALUES, "proto": "tcp", "flow_id": "a", **identity}, Flow)
    source_only = msgspec.convert({**FEATURE_VALUES, "proto": "tcp", "flow_id": "c", "srcip": "1.2.3.4"}, Flow)
    origin = (["flows"] * 2, [2, 4], [10, 7])
    out = verdict_payloads(np.array([0, 2]), [whole, RECORDS[1], source_only], SCORES, CLASSES, origin, "v")
    first, second = (alert_decoder.decode(value) for _, value in out)
    assert first.community_id == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert second.community_id is UNSET

"""The alert's optional community_id and the incident contract: what decodes, what is refused."""

from __future__ import annotations

import msgspec
import pytest

from nids_common.contract import (
    KEY_CHOICES,
    UNSET,
    Counted,
    Incident,
    IncidentKey,
    SampleFlow,
    alert_decoder,
    incident_decoder,
)

ALERT = (
    b'{"flow_id": "f1", "is_attack": true, "attack_cat": "DoS", "attack_probability": 0.9, "model_version": "v1",'
    b' "detected_at": 1.0, "ts": null, "source": {"topic": "t", "partition": 0, "offset": 1},'
    b' "class_probabilities": {"DoS": 0.9}'
)


def test_alerts_without_a_community_id_still_decode() -> None:
    assert alert_decoder.decode(ALERT + b"}").community_id is UNSET


def test_alerts_carry_a_community_id_or_null() -> None:
    assert alert_decoder.decode(ALERT + b', "community_id": "1:abc="}').community_id == "1:abc="
    assert alert_decoder.decode(ALERT + b', "community_id": null}').community_id is None
    with pytest.raises(msgspec.ValidationError, match="community_id"):
        alert_decoder.decode(ALERT + b', "community_id": 5}')


def incident(**changes: object) -> Incident:
    fields: dict[str, object] = {
        "incident_id": "0287a61fa5f77bd44f98",
        "revision": 1,
        "state": "closed",
        "key": IncidentKey(
            text="src=10.0.0.1", by="src", addresses=("10.0.0.1",), attack_cat=None, source_unknown=False
        ),
        "priority": "high",
        "first_ts": 1.0,
        "last_ts": 2.0,
        "first_detected_at": 3.0,
        "last_detected_at": 4.0,
        "alerts": 2,
        "alerts_by_attack_cat": {"DoS": 2},
        "suppressed": 0,
        "late_alerts": 0,
        "max_attack_probability": 0.9,
        "top_destinations": (Counted("10.0.0.9", 2),),
        "top_ports": (Counted("80", 2),),
        "samples": (SampleFlow("f1", None, 1.0),),
        "model_versions": ("v1",),
        "close_reason": "idle",
        **changes,
    }
    return Incident(**fields)  # type: ignore[arg-type]


def test_incidents_round_trip_through_json() -> None:
    record = incident()
    assert incident_decoder.decode(msgspec.json.encode(record)) == record


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"state": "reopened"}, "state"),
        ({"priority": "urgent"}, "priority"),
        ({"close_reason": "bored"}, "close_reason"),
    ],
)
def test_incident_choices_are_checked_on_decode(changes: dict[str, object], field: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=field):
        incident_decoder.decode(msgspec.json.encode(incident(**changes)))


def test_unknown_incident_fields_are_refused() -> None:
    text = msgspec.json.encode(incident())[:-1] + b', "extra": 1}'
    with pytest.raises(msgspec.ValidationError, match="extra"):
        incident_decoder.decode(text)


def test_key_choices() -> None:
    assert KEY_CHOICES == ("src", "dst", "pair", "src+attack_cat", "dst+attack_cat", "pair+attack_cat")

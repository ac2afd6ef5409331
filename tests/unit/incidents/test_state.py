"""Per-key state: changelog encoding round trip, deterministic incident ids, the update backoff."""

from __future__ import annotations

import msgspec
import pytest

from incidents.state import (
    KeyState,
    OpenIncident,
    PendingSuppressed,
    StreamClock,
    decode_state,
    encode_state,
    incident_id,
    next_update_at,
)
from nids_common.contract import IncidentKey, SampleFlow


def test_states_round_trip_through_the_changelog_encoding() -> None:
    incident = OpenIncident(
        incident_id="abc",
        key=IncidentKey(text="src=10.0.0.1", by="src", addresses=("10.0.0.1",), attack_cat=None, source_unknown=False),
        first_ts=1.5,
        last_ts=9.0,
        first_detected_at=100.0,
        last_detected_at=101.0,
        alerts=3,
        by_attack_cat={"DoS": 3},
        destinations={"10.0.0.9": 3},
        samples=(SampleFlow("f1", "1:x", 1.5),),
        model_versions=("v1",),
        records=2,
        next_update_at=100,
    )
    for state in (
        KeyState(incident=incident),
        KeyState(pending=PendingSuppressed(count=4, last_ts=3.0)),
        StreamClock(stream_time=12.25),
    ):
        assert decode_state(encode_state(state)) == state


def test_a_value_of_another_kind_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_state(msgspec.msgpack.encode({"type": "other"}))


def test_incident_ids_are_deterministic() -> None:
    assert incident_id("src=10.0.0.1", "f1", 1.5) == incident_id("src=10.0.0.1", "f1", 1.5)
    assert len({incident_id("src=10.0.0.1", "f1", 1.5), incident_id("src=10.0.0.2", "f1", 1.5)}) == 2
    assert incident_id("src=10.0.0.1", "f1", 1.5) != incident_id("src=10.0.0.1", "f1", 2.5)


def test_updates_back_off_by_powers_of_ten() -> None:
    assert [next_update_at(n) for n in (10, 57, 99, 100, 1000, 4321)] == [100, 100, 100, 1000, 10_000, 10_000]

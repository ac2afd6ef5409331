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

KEY = IncidentKey(text="src=10.0.0.1", by="src", addresses=("10.0.0.1",), attack_cat=None, source_unknown=False)


def test_states_round_trip_through_the_changelog_encoding() -> None:
    incident = OpenIncident(
        incident_id="abc",
        key=KEY,
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


# Written by 0.4.0, the first version with incidents: a changelog must restore across upgrades.
WRITTEN_BY_0_4_0 = {
    "83a474797065a36b6579a8696e636964656e74de0012ab696e636964656e745f6964a3616263a36b657985a474657874ac7372"
    "633d31302e302e302e31a26279a3737263a961646472657373657391a831302e302e302e31aa61747461636b5f636174c0ae73"
    "6f757263655f756e6b6e6f776ec2a866697273745f7473cb3ff0000000000000a76c6173745f7473cb4000000000000000b166"
    "697273745f64657465637465645f6174cb3ff8000000000000b06c6173745f64657465637465645f6174cb4004000000000000"
    "a6616c6572747302ad62795f61747461636b5f63617481a3446f5302aa7375707072657373656400ab6c6174655f616c657274"
    "7300b66d61785f61747461636b5f70726f626162696c697479cb0000000000000000ac64657374696e6174696f6e7381a83130"
    "2e302e302e3202a5706f72747381a2383002a773616d706c65739183a7666c6f775f6964a26631ac636f6d6d756e6974795f69"
    "64a4313a783da27473cb3ff0000000000000ae6d6f64656c5f76657273696f6e7391a27631a77265636f72647300ae6e657874"
    "5f7570646174655f61740ab76c6173745f7265636f72645f64657465637465645f6174cb0000000000000000a770656e64696e"
    "67c0": KeyState(
        incident=OpenIncident(
            incident_id="abc",
            key=KEY,
            first_ts=1.0,
            last_ts=2.0,
            first_detected_at=1.5,
            last_detected_at=2.5,
            alerts=2,
            by_attack_cat={"DoS": 2},
            destinations={"10.0.0.2": 2},
            ports={"80": 2},
            samples=(SampleFlow("f1", "1:x=", 1.0),),
            model_versions=("v1",),
        )
    ),
    "82a474797065a5636c6f636bab73747265616d5f74696d65cb41d954fc40200000": StreamClock(stream_time=1700000000.5),
}


@pytest.mark.parametrize("written", list(WRITTEN_BY_0_4_0))
def test_state_written_by_an_earlier_version_restores(written: str) -> None:
    assert decode_state(bytes.fromhex(written)) == WRITTEN_BY_0_4_0[written]


def test_a_value_of_another_kind_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_state(msgspec.msgpack.encode({"type": "other"}))


def test_incident_ids_are_deterministic() -> None:
    assert incident_id("src=10.0.0.1", "f1", 1.5) == incident_id("src=10.0.0.1", "f1", 1.5)
    assert len({incident_id("src=10.0.0.1", "f1", 1.5), incident_id("src=10.0.0.2", "f1", 1.5)}) == 2
    assert incident_id("src=10.0.0.1", "f1", 1.5) != incident_id("src=10.0.0.1", "f1", 2.5)


def test_updates_back_off_by_powers_of_ten() -> None:
    assert [next_update_at(n) for n in (10, 57, 99, 100, 1000, 4321)] == [100, 100, 100, 1000, 10_000, 10_000]

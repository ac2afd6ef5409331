"""Vectorised decoding: valid rows become columns, each invalid one gets its reason and field."""

from __future__ import annotations

import msgspec
import numpy as np
import orjson
import pandas as pd
import pytest

from detector.decode import SLICE, DecodedBatch, FlowHeader, decode_batch, ground_truth
from nids_common.contract import Flow
from nids_common.schema import FEATURES, NUMERIC_FEATURES
from nids_dataset.synthetic import synthetic_frame
from nids_harness.payloads import at_sensor_precision, bad_payloads, valid_flow
from producer.encode import encode_chunk

MAX_BYTES = 10_000


def flows(n: int = 4) -> list[dict]:
    frame = synthetic_frame(n, seed=2)
    payloads = encode_chunk(frame, np.array([f"f{i}" for i in range(n)]), np.full(n, 1.5e9))
    return [orjson.loads(p) for p in payloads]


def decode(values: list[bytes | None], max_bytes: int = MAX_BYTES) -> DecodedBatch:
    return decode_batch(values, [("t", 0, i) for i in range(len(values))], max_bytes)


def test_producer_encoding_round_trips_through_decoder() -> None:
    frame = synthetic_frame(50, seed=4)
    payloads = encode_chunk(frame, np.array([f"id{i}" for i in range(50)]), np.arange(50, dtype=float))
    batch = decode(payloads)
    assert batch.invalid == []
    assert list(batch.valid) == list(range(50))
    for name in NUMERIC_FEATURES:
        np.testing.assert_allclose(batch.columns[name], frame[name].to_numpy(dtype=float), rtol=1e-12)
    assert list(batch.columns["proto"]) == list(frame["proto"])
    assert batch.records[3].flow_id == "id3" and batch.records[3].ts == 3.0
    assert batch.records[3].attack_cat == frame["attack_cat"].iloc[3]


BAD = bad_payloads(valid_flow("bad", seed=2), MAX_BYTES)


def sensor_flows(n: int, seed: int) -> tuple[list[bytes], pd.DataFrame]:
    """Flows whose numbers carry a sensor's precision (UNSW-NB15's have 6 decimals or fewer), as
    live traffic does: the compiled reader takes their numbers."""
    frame = at_sensor_precision(synthetic_frame(n, seed=seed))
    return encode_chunk(frame, np.array([f"f{i}" for i in range(n)]), np.full(n, 1.5e9)), frame


def test_numbers_read_from_the_bytes_equal_msgspecs_bit_for_bit() -> None:
    values, _ = sensor_flows(2 * SLICE, seed=8)
    # 17-digit numbers: the compiled reader leaves them, and their slice is decoded whole.
    values[SLICE + 3] = encode_chunk(synthetic_frame(1, seed=9), np.array(["long"]), np.zeros(1))[0]
    batch = decode(list(values))
    assert batch.invalid == [] and batch.valid.tolist() == list(range(2 * SLICE))
    assert {type(record) for record in batch.records[:SLICE]} == {FlowHeader}
    assert {type(record) for record in batch.records[SLICE:]} == {Flow}
    whole = [msgspec.json.decode(value, type=Flow) for value in values]
    for name in NUMERIC_FEATURES:
        expected = np.array([getattr(flow, name) for flow in whole])
        assert batch.columns[name].view(np.uint64).tolist() == expected.view(np.uint64).tolist(), name
    assert list(batch.columns["proto"]) == [flow.proto for flow in whole]
    assert [record.flow_id for record in batch.records] == [flow.flow_id for flow in whole]


SENSOR_BAD = bad_payloads(orjson.loads(sensor_flows(1, seed=2)[0][0]), MAX_BYTES)


@pytest.mark.parametrize("name", sorted(SENSOR_BAD))
def test_each_bad_record_among_sensor_flows_is_named(name: str) -> None:
    payload, reason, field = SENSOR_BAD[name]
    values, _ = sensor_flows(3, seed=3)
    batch = decode([values[0], payload, values[2]])
    assert [(p, e.reason, e.field) for p, e in batch.invalid] == [(1, reason, field)]
    assert batch.valid.tolist() == [0, 2] and [r.flow_id for r in batch.records] == ["f0", "f2"]


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_record_is_named_and_the_rest_decoded(name: str) -> None:
    payload, reason, field = BAD[name]
    rows = flows(3)
    values = [orjson.dumps(rows[0]), payload, orjson.dumps(rows[2])]
    batch = decode(values)
    assert [p for p, _ in batch.invalid] == [1]
    error = batch.invalid[0][1]
    assert (error.reason, error.field) == (reason, field)
    assert (error.topic, error.partition, error.offset) == ("t", 0, 1)
    assert "t[0]@1" in str(error)
    assert list(batch.valid) == [0, 2]
    assert all(len(batch.columns[name]) == 2 for name in FEATURES)


def test_bad_records_in_a_batch_of_many_slices_keep_every_position() -> None:
    n = 3 * SLICE + 7
    frame = synthetic_frame(n, seed=6)
    values: list[bytes | None] = list(encode_chunk(frame, np.array([f"f{i}" for i in range(n)]), np.full(n, 1.5e9)))
    bad_rows = [0, SLICE + 1, 2 * SLICE - 1, n - 1]
    for row in bad_rows:
        values[row] = None if row == 0 else BAD[sorted(BAD)[0]][0]
    batch = decode(values)
    assert [position for position, _ in batch.invalid] == bad_rows
    assert [error.offset for _, error in batch.invalid] == bad_rows
    good = [row for row in range(n) if row not in bad_rows]
    assert batch.valid.tolist() == good
    assert [record.flow_id for record in batch.records] == [f"f{row}" for row in good]
    np.testing.assert_allclose(batch.columns["sbytes"], frame["sbytes"].to_numpy(dtype=float)[good])


def test_several_bad_fields_in_one_row_count_once() -> None:
    row = flows(1)[0]
    batch = decode([orjson.dumps({**row, "dur": "x", "sbytes": None})])
    assert len(batch.invalid) == 1 and len(batch.valid) == 0
    assert all(len(v) == 0 for v in batch.columns.values())


def test_extra_fields_and_unseen_categories_are_valid() -> None:
    row = flows(1)[0]
    batch = decode([orjson.dumps({**row, "proto": "new-proto", "extra": {"deep": [1]}})])
    assert batch.invalid == [] and batch.columns["proto"][0] == "new-proto"


def test_integers_become_floats() -> None:
    row = flows(1)[0]
    batch = decode([orjson.dumps({**row, "spkts": 12})])
    assert batch.columns["spkts"].dtype == np.float64 and batch.columns["spkts"][0] == 12.0


def test_ground_truth_from_attack_cat_or_label() -> None:
    base = flows(1)[0]
    rows = [{"attack_cat": " DoS "}, {"label": 0}, {"label": 1}, {}, {"attack_cat": 3}]
    records = decode(
        [orjson.dumps({**{k: v for k, v in base.items() if k not in ("label", "attack_cat")}, **r}) for r in rows]
    ).records
    actual, known = ground_truth(records)
    assert list(actual) == ["DoS", "Normal", "", "", ""]
    assert list(known) == [True, True, False, False, False]


def test_identity_and_truth_keep_their_json_types_in_sliced_encoding() -> None:
    import pandas as pd

    from producer.encode import wire_columns

    frame = synthetic_frame(3, seed=5)
    frame["srcip"] = ["10.0.0.1", None, "10.0.0.3"]
    frame["sport"] = pd.array([80, None, 443], dtype="Int64")  # a '-' port in the raw files
    frame["label"] = [0, 1, 1]
    ids, times = np.array(["a", "b", "c"]), np.zeros(3)
    whole = encode_chunk(frame, ids, times)
    columns = wire_columns(frame)
    sliced = encode_chunk({k: v[:2] for k, v in columns.items()}, ids[:2], times[:2]) + encode_chunk(
        {k: v[2:] for k, v in columns.items()}, ids[2:], times[2:]
    )
    assert sliced == whole
    first, second = orjson.loads(whole[0]), orjson.loads(whole[1])
    assert (first["srcip"], first["sport"], first["label"]) == ("10.0.0.1", 80, 0)
    assert (second["srcip"], second["sport"], second["label"]) == (None, None, 1)


def test_a_flow_header_is_a_flow_without_its_numbers() -> None:
    """The fast path rests on it: a FlowHeader accepts what a Flow accepts but for the numbers, and
    the numbers sit under the keys the compiled reader looks for."""
    flow_fields = {field.name: field for field in msgspec.structs.fields(Flow)}
    header_fields = {field.name: field for field in msgspec.structs.fields(FlowHeader)}
    assert header_fields == {name: field for name, field in flow_fields.items() if name not in NUMERIC_FEATURES}
    assert set(flow_fields) - set(header_fields) == set(NUMERIC_FEATURES)
    assert all(flow_fields[name].encode_name == name for name in NUMERIC_FEATURES)  # no rename
    assert FlowHeader.__struct_config__.forbid_unknown_fields == Flow.__struct_config__.forbid_unknown_fields

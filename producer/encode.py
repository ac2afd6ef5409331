"""Flow chunks → one JSON object per flow, the wire contract of the `nids.flows` topic."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import orjson
import pandas as pd

from nids_common.json_columns import json_each, json_numbers, json_objects, json_strings
from nids_common.schema import ATTACK_CAT, FEATURES, IDENTITY_FIELDS, LABEL, NUMERIC_FEATURES

OPTIONAL_FIELDS = (*IDENTITY_FIELDS, LABEL, ATTACK_CAT)


def encode_chunk(
    flows: pd.DataFrame | Mapping[str, np.ndarray], flow_ids: np.ndarray, event_times: np.ndarray
) -> list[bytes]:
    """JSON bytes per row: flow_id, ts, the 42 features, and identity and ground-truth fields when present.

    Built column by column (nids_common.json_columns); numbers as their shortest round-trip text,
    NaN as null, which the detector dead-letters. `flows` is a DataFrame or what `wire_columns`
    made of one: a replay takes a chunk's columns once and encodes slices of them.
    """
    columns = wire_columns(flows) if isinstance(flows, pd.DataFrame) else flows
    fields: list[tuple[str, list[bytes]]] = [
        ("flow_id", json_strings(np.asarray(flow_ids, dtype=str).tolist())),
        ("ts", json_numbers(np.asarray(event_times, dtype=np.float64))),
    ]
    for name in FEATURES:
        values = columns[name]
        fields.append((name, json_numbers(values) if name in NUMERIC_FEATURES else json_each(values.tolist(), _text)))
    for name in OPTIONAL_FIELDS:
        if name in columns:
            values = columns[name]
            fields.append((name, json_each(values.tolist()) if values.dtype == object else json_numbers(values)))
    return json_objects(fields)


def wire_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns the encoder reads, as numpy arrays (slicing a DataFrame's columns per 1,000 rows
    costs more than encoding them). Numbers as float64, nullable ones as objects with None."""
    columns = {}
    for name in FEATURES:
        values = frame[name].to_numpy()
        columns[name] = values.astype(np.float64) if name in NUMERIC_FEATURES else values
    for name in OPTIONAL_FIELDS:
        if name in frame.columns:
            columns[name] = _optional(frame[name])
    return columns


def _optional(values: pd.Series) -> np.ndarray:
    """Identity and ground-truth columns keep their JSON type (label stays an integer)."""
    if pd.api.types.is_numeric_dtype(values) and not values.hasnans:
        return np.asarray(values.to_numpy(dtype=np.int64 if pd.api.types.is_integer_dtype(values) else np.float64))
    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        return np.asarray(values.to_numpy(dtype=object, na_value=None))
    # Nullable numbers (ports that were '-') go out as JSON null.
    return np.array([None if pd.isna(v) else v.item() for v in values], dtype=object)


def _text(value: object) -> bytes:
    """A category; anything but a string (a missing value) is null."""
    return orjson.dumps(value if type(value) is str else None)

"""Flow chunks → one JSON object per flow, the wire contract of the `nids.flows` topic."""
from __future__ import annotations

import itertools
from typing import Mapping

import numpy as np
import orjson
import pandas as pd

from nids_common.schema import ATTACK_CAT, FEATURES, IDENTITY_FIELDS, LABEL, NUMERIC_FEATURES

OPTIONAL_FIELDS = (*IDENTITY_FIELDS, LABEL, ATTACK_CAT)


def encode_chunk(flows: pd.DataFrame | Mapping[str, np.ndarray], flow_ids: np.ndarray, event_times: np.ndarray) -> list[bytes]:
    """JSON bytes per row: flow_id, ts, the 42 features, and identity and ground-truth fields when present.

    Built column by column: orjson serialises each numeric column in one call (shortest round-trip
    float text, NaN as null, which the detector dead-letters), then each row is one bytes.join.
    A per-row dict would cost several times more. `flows` is a DataFrame or what `wire_columns`
    made of one: a replay takes a chunk's columns once and encodes slices of them.
    """
    columns = wire_columns(flows) if isinstance(flows, pd.DataFrame) else flows
    pieces: list[tuple[bytes, list[bytes]]] = [
        # Our flow ids ('<run>-<n>') hold no comma, so one orjson call serves the whole column.
        (b"flow_id", orjson.dumps(np.asarray(flow_ids, dtype=str).tolist())[1:-1].split(b",") if len(flow_ids) else []),
        (b"ts", _numbers(np.asarray(event_times, dtype=np.float64))),
    ]
    for name in FEATURES:
        values = columns[name]
        pieces.append((name.encode(), _numbers(values) if name in NUMERIC_FEATURES else _texts(values)))
    for name in OPTIONAL_FIELDS:
        if name in columns:
            pieces.append((name.encode(), _any(columns[name])))
    parts = []
    for position, (key, values) in enumerate(pieces):
        parts.append(itertools.repeat((b"{" if position == 0 else b",") + b'"' + key + b'":'))
        parts.append(values)
    parts.append(itertools.repeat(b"}"))
    return [b"".join(row) for row in zip(*parts)]


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
        return values.to_numpy(dtype=np.int64 if pd.api.types.is_integer_dtype(values) else np.float64)
    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        return values.to_numpy(dtype=object, na_value=None)
    # Nullable numbers (ports that were '-') go out as JSON null.
    return np.array([None if pd.isna(v) else v.item() for v in values], dtype=object)


def _numbers(values: np.ndarray) -> list[bytes]:
    if not len(values):
        return []
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")


def _texts(values: np.ndarray) -> list[bytes]:
    """Few distinct values (proto, service, state, attack_cat): serialise each once, then look up."""
    items = values.tolist()
    encoded = {v: orjson.dumps(v if type(v) is str else None) for v in set(items)}
    return [encoded[v] for v in items]


def _any(values: np.ndarray) -> list[bytes]:
    if values.dtype != object:
        return _numbers(values)
    items = values.tolist()
    encoded = {v: orjson.dumps(v) for v in set(items)}
    return [encoded[v] for v in items]

"""Flow chunks → one JSON object per flow, the wire contract of the `nids.flows` topic."""
from __future__ import annotations

import itertools

import numpy as np
import orjson
import pandas as pd

from nids_common.schema import ATTACK_CAT, FEATURES, IDENTITY_FIELDS, LABEL, NUMERIC_FEATURES

OPTIONAL_FIELDS = (*IDENTITY_FIELDS, LABEL, ATTACK_CAT)


def encode_chunk(frame: pd.DataFrame, flow_ids: np.ndarray, event_times: np.ndarray) -> list[bytes]:
    """JSON bytes per row: flow_id, ts, the 42 features, and identity and ground-truth fields when present.

    Built column by column: orjson serialises each numeric column in one call (shortest round-trip
    float text, NaN as null, which the detector dead-letters), then each row is one bytes.join.
    A per-row dict would cost several times more.
    """
    pieces: list[tuple[bytes, list[bytes]]] = [
        # Our flow ids ('<run>-<n>') hold no comma, so one orjson call serves the whole column.
        (b"flow_id", orjson.dumps([str(v) for v in flow_ids])[1:-1].split(b",") if len(flow_ids) else []),
        (b"ts", _numbers(np.asarray(event_times, dtype=np.float64))),
    ]
    for name in FEATURES:
        values = frame[name].to_numpy()
        pieces.append((name.encode(), _numbers(values.astype(np.float64)) if name in NUMERIC_FEATURES else _texts(values)))
    for name in OPTIONAL_FIELDS:
        if name in frame.columns:
            pieces.append((name.encode(), _any(frame[name])))
    columns = []
    for position, (key, values) in enumerate(pieces):
        columns.append(itertools.repeat((b"{" if position == 0 else b",") + b'"' + key + b'":'))
        columns.append(values)
    columns.append(itertools.repeat(b"}"))
    return [b"".join(parts) for parts in zip(*columns)]


def _numbers(values: np.ndarray) -> list[bytes]:
    if not len(values):
        return []
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")


def _texts(values: np.ndarray) -> list[bytes]:
    """Few distinct values (proto, service, state, attack_cat): serialise each once, then look up."""
    items = values.tolist()
    encoded = {v: orjson.dumps(v if type(v) is str else None) for v in set(items)}
    return [encoded[v] for v in items]


def _any(values: pd.Series) -> list[bytes]:
    """Identity and ground-truth columns, keeping their JSON type (label stays an integer)."""
    if pd.api.types.is_numeric_dtype(values) and not values.hasnans:
        return _numbers(values.to_numpy(dtype=np.int64 if pd.api.types.is_integer_dtype(values) else np.float64))
    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        return _texts(values.to_numpy(dtype=object, na_value=None))
    # Nullable numbers (ports that were '-') go out as JSON null.
    return [orjson.dumps(None if pd.isna(v) else v.item()) for v in values]

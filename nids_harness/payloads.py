"""The bad-payload matrix: every kind of message the detector must dead-letter, made from one valid flow."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd

from nids_common.contract import Reason
from nids_common.schema import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from nids_dataset.synthetic import synthetic_frame


def bad_payloads(good: dict[str, Any], max_bytes: int) -> dict[str, tuple[bytes | None, str, str | None]]:
    """Every kind of message the detector must dead-letter, made from one valid flow `good`:
    name → (value, reason, field). The decoder's unit test, the stream's integration test and the chaos
    run share it."""

    def without(field: str) -> dict[str, Any]:
        return {k: v for k, v in good.items() if k != field}

    def raw(field: str, literal: bytes) -> bytes:
        # Literals strict JSON has no word for (NaN, Infinity) or that overflow a double.
        return orjson.dumps(without(field))[:-1] + b',"' + field.encode() + b'":' + literal + b"}"

    return {
        "garbage": (b"\x00\xff\xfe binary \x9c", Reason.NOT_JSON, None),
        "png": (b"\x89PNG\r\n", Reason.NOT_JSON, None),
        "truncated": (orjson.dumps(good)[:-20], Reason.NOT_JSON, None),
        "array": (b"[1, 2, 3]", Reason.NOT_OBJECT, None),
        "string": (b'"a flow"', Reason.NOT_OBJECT, None),
        "json_null": (b"null", Reason.NOT_OBJECT, None),
        "empty": (b"", Reason.EMPTY, None),
        "tombstone": (None, Reason.EMPTY, None),
        "too_large": (orjson.dumps({**good, "padding": "x" * max_bytes}), Reason.TOO_LARGE, None),
        "nan": (raw("dur", b"NaN"), Reason.NON_FINITE, "dur"),
        "infinity": (raw("sbytes", b"Infinity"), Reason.NON_FINITE, "sbytes"),
        "minus_infinity": (raw("dur", b"-Infinity"), Reason.NON_FINITE, "dur"),
        "overflow": (raw("dload", b"1e999"), Reason.NON_FINITE, "dload"),
        "nested": (orjson.dumps({**good, "spkts": {"value": 3}}), Reason.BAD_TYPE, "spkts"),
        "list_number": (orjson.dumps({**good, "dur": [1]}), Reason.BAD_TYPE, "dur"),
        "string_number": (orjson.dumps({**good, "sbytes": "1200"}), Reason.BAD_TYPE, "sbytes"),
        "boolean_number": (orjson.dumps({**good, "sttl": True}), Reason.BAD_TYPE, "sttl"),
        "null_number": (orjson.dumps({**good, "dttl": None}), Reason.BAD_TYPE, "dttl"),
        "number_category": (orjson.dumps({**good, "proto": 6}), Reason.BAD_TYPE, "proto"),
        "object_category": (orjson.dumps({**good, "state": {"a": 1}}), Reason.BAD_TYPE, "state"),
        "number_flow_id": (orjson.dumps({**good, "flow_id": 7}), Reason.BAD_TYPE, "flow_id"),
        "text_time": (orjson.dumps({**good, "ts": "yesterday"}), Reason.BAD_TYPE, "ts"),
        "missing": (orjson.dumps(without("smean")), Reason.MISSING_FIELD, "smean"),
        "no_flow_id": (orjson.dumps(without("flow_id")), Reason.MISSING_FIELD, "flow_id"),
    }


def valid_flow(flow_id: str, seed: int) -> dict[str, Any]:
    """One synthetic flow as the wire carries it (a JSON object's fields)."""
    row = synthetic_frame(1, seed=seed).iloc[0]
    flow: dict[str, Any] = {
        name: (row[name] if name in CATEGORICAL_FEATURES else float(row[name])) for name in FEATURES
    }
    flow["flow_id"] = flow_id
    return flow


# UNSW-NB15's numbers carry 6 decimals or fewer; synthetic flows carry a double's 17 digits.
SENSOR_DECIMALS = 6


def at_sensor_precision(frame: pd.DataFrame, decimals: int = SENSOR_DECIMALS) -> pd.DataFrame:
    """`frame` with its numeric features rounded as a sensor writes them: messages the detector's
    compiled reader (detector.number_fields) takes, where synthetic ones mostly go to msgspec."""
    return frame.assign(**{name: frame[name].round(decimals) for name in NUMERIC_FEATURES})

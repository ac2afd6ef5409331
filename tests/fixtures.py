"""Test fixtures built from synthetic flows: CSV files of both public formats and a small trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from nids_common.contract import Reason
from nids_common.schema import CATEGORICAL_FEATURES, FEATURES, RAW_COLUMNS, RAW_TO_PARTITIONED
from nids_dataset.synthetic import synthetic_frame
from training.config import TrainingConfig

FAST_TRAINING = TrainingConfig(
    seed=3,
    deploy_candidates=("hgb",),
    min_rows_per_second=1.0,
    analysis_rows=1500,
    throughput_batch_rows=500,
    rfe_feature_counts=(10, 20),
    search_iterations=2,
)


def flows_with_identity(rows: int, seed: int = 11) -> pd.DataFrame:
    frame = synthetic_frame(rows, seed=seed)
    rng = np.random.default_rng(seed)
    frame.insert(0, "id", np.arange(1, rows + 1))
    frame["srcip"] = [f"59.166.0.{i % 9}" for i in range(rows)]
    frame["dstip"] = [f"149.171.126.{i % 19}" for i in range(rows)]
    frame["sport"] = rng.integers(1024, 65535, rows)
    frame["dsport"] = rng.choice([53, 80, 111, 25], rows)
    frame["stime"] = 1421927414 + np.arange(rows) // 10
    frame["ltime"] = frame["stime"] + 1
    return frame


def write_partitioned(frame: pd.DataFrame, path: Path) -> Path:
    columns = ["id", *FEATURES, "attack_cat", "label"]
    frame[[c for c in columns if c in frame.columns]].to_csv(path, index=False)
    return path


def write_raw(frame: pd.DataFrame, path: Path) -> Path:
    """The raw capture layout: no header, 49 columns, a UTF-8 BOM, blank attack_cat for normal traffic."""
    back = {v: k for k, v in RAW_TO_PARTITIONED.items()}
    raw = frame.rename(columns=back).copy()
    raw["attack_cat"] = raw["attack_cat"].where(raw["attack_cat"] != "Normal", "")
    raw = raw[list(RAW_COLUMNS)]
    text = raw.to_csv(index=False, header=False)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    return path


def bad_payloads(good: dict[str, Any], max_bytes: int) -> dict[str, tuple[bytes | None, str, str | None]]:
    """Every kind of message the detector must dead-letter, made from one valid flow `good`:
    name → (value, reason, field). The decoder's unit test and the stream's integration test share it."""

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

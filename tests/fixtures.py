"""Test fixtures built from synthetic flows: CSV files of both public formats and a small trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nids_common.schema import FEATURES, RAW_COLUMNS, RAW_TO_PARTITIONED
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

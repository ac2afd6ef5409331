"""Compute nids_dataset/synthetic_stats.json from a UNSW-NB15 file: per-class summary statistics, no rows.

.venv/bin/python scripts/make_synthetic_stats.py ../shared/data/unsw-nb15/unsw_nb15_dev.csv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from nids_common.schema import ATTACK_CAT, ATTACK_CLASSES, CATEGORICAL_FEATURES, NUMERIC_FEATURES
from nids_dataset.unsw import load_flows

QUANTILES = 41
TOP_TRIPLES = 12
OUT = Path(__file__).resolve().parents[1] / "nids_dataset" / "synthetic_stats.json"


def nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues and restore the unit diagonal, so sampling needs no repair."""
    np.fill_diagonal(matrix, 1.0)
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    fixed = vectors @ np.diag(np.clip(values, 1e-4, None)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


def main(paths: list[str]) -> int:
    frame = load_flows(paths)
    grid = np.linspace(0, 1, QUANTILES)
    classes = {}
    for name in ATTACK_CLASSES:
        part = frame[frame[ATTACK_CAT] == name]
        if part.empty:
            continue
        triples = part[list(CATEGORICAL_FEATURES)].value_counts(normalize=True).head(TOP_TRIPLES)
        numeric = part[list(NUMERIC_FEATURES)].fillna(0.0).to_numpy(float)
        scores = np.column_stack([ndtri((rankdata(col) - 0.5) / len(col)) for col in numeric.T])
        with np.errstate(invalid="ignore", divide="ignore"):  # constant columns within a class
            correlation = np.corrcoef(scores, rowvar=False) if len(part) > 2 else np.eye(len(NUMERIC_FEATURES))
        correlation = nearest_correlation(np.nan_to_num(correlation))
        classes[name] = {
            "share": round(len(part) / len(frame), 6),
            "categorical_triples": [{"values": list(k), "share": round(float(v), 5)} for k, v in triples.items()],
            "quantiles": {
                f: [float(f"{q:.6g}") for q in np.quantile(numeric[:, i], grid)] for i, f in enumerate(NUMERIC_FEATURES)
            },
            "integer_features": [
                f for i, f in enumerate(NUMERIC_FEATURES) if np.all(numeric[:, i] == np.round(numeric[:, i]))
            ],
            "normal_score_correlation": np.round(correlation, 3).tolist(),
        }
    OUT.write_text(
        json.dumps(
            {
                "source": "per-class summary statistics of the UNSW-NB15 testing partition (dev split)",
                "classes": classes,
            },
            separators=(",", ":"),
        )
        + "\n"
    )
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

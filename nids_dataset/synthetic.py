"""Synthetic UNSW-NB15-shaped flows, drawn per class from summary statistics of the real data.

`synthetic_stats.json` (made by scripts/make_synthetic_stats.py) holds, per attack_cat, the class's
share, its most common (proto, service, state) triples, 41 quantiles of every numeric feature and the
rank correlation of their normal scores. Flows are drawn from that Gaussian copula, so features keep
their class's marginals and their monotone dependencies (sbytes with spkts, sttl with ct_state_ttl).
No row of the dataset is stored.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES, FEATURES, LABEL, NORMAL, NUMERIC_FEATURES

STATS_FILE = "synthetic_stats.json"


@functools.lru_cache(maxsize=1)
def load_stats() -> dict[str, Any]:
    stats: dict[str, Any] = json.loads(resources.files("nids_dataset").joinpath(STATS_FILE).read_text())
    return stats


def synthetic_frame(
    rows: int, seed: int = 7, stats: Mapping[str, Any] | None = None, class_shares: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """`rows` flows with the 42 features, label and attack_cat; classes in the data's proportions."""
    stats = stats or load_stats()
    rng = np.random.default_rng(seed)
    classes = list(stats["classes"])
    shares = np.array([(class_shares or {}).get(c, stats["classes"][c]["share"]) for c in classes], dtype=float)
    counts = rng.multinomial(rows, shares / shares.sum())
    # Every class appears at least twice when there is room, so small synthetic sets stay stratifiable.
    if rows >= 2 * len(classes):
        for i in np.flatnonzero(counts < 2):
            deficit = 2 - counts[i]
            counts[i] = 2
            counts[counts.argmax()] -= deficit
    parts = [_draw_class(stats["classes"][c], c, n, rng) for c, n in zip(classes, counts) if n > 0]
    frame = pd.concat(parts, ignore_index=True)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


def _copula_factor(spec: Mapping[str, Any]) -> np.ndarray:
    """A factor L with L Lᵀ ≈ the stored correlation; eigenvalues clipped because 3-decimal rounding
    can leave the stored matrix slightly indefinite."""
    correlation = np.asarray(spec["normal_score_correlation"], dtype=float)
    values, vectors = np.linalg.eigh((correlation + correlation.T) / 2)
    factor: np.ndarray = vectors * np.sqrt(np.clip(values, 0.0, None))
    return factor


def _draw_class(spec: Mapping[str, Any], name: str, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    triples = spec["categorical_triples"]
    weights = np.array([t["share"] for t in triples], dtype=float)
    picks = rng.choice(len(triples), size=rows, p=weights / weights.sum())
    columns: dict[str, Any] = {}
    for position, feature in enumerate(CATEGORICAL_FEATURES):
        values = np.array([t["values"][position] for t in triples], dtype=object)
        columns[feature] = values[picks]
    z = rng.standard_normal((rows, len(NUMERIC_FEATURES))) @ _copula_factor(spec).T
    uniform = ndtr(z)
    grid = np.linspace(0.0, 1.0, len(next(iter(spec["quantiles"].values()))))
    for index, feature in enumerate(NUMERIC_FEATURES):
        quantiles = np.asarray(spec["quantiles"][feature], dtype=float)
        values = np.interp(uniform[:, index], grid, quantiles)
        if feature in spec["integer_features"]:
            values = np.round(values)
        columns[feature] = values
    frame = pd.DataFrame(columns)[list(FEATURES)]
    frame[ATTACK_CAT] = name
    frame[LABEL] = np.int8(name != NORMAL)
    return frame

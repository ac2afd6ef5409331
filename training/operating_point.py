"""The label threshold an operator's false-positive budget allows, and the rates it gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import Pipeline

from nids_common.schema import ATTACK_CAT, LABEL
from nids_model.folds import flow_groups, grouped_folds
from nids_model.manifest import Rates

HELD_OUT_FOLDS = 5


def rates(is_attack: np.ndarray, attack_probability: np.ndarray, threshold: float) -> Rates:
    """The rates of one threshold (is_attack: rows, bool or 0/1; attack_probability: rows, float)."""
    truth = np.asarray(is_attack).astype(bool)
    alert = np.asarray(attack_probability) >= threshold
    normal, attacks = int((~truth).sum()), int(truth.sum())
    true_alerts = int((alert & truth).sum())
    alerts = int(alert.sum())
    return Rates(
        threshold=float(threshold),
        false_positive_rate=int((alert & ~truth).sum()) / normal if normal else 0.0,
        recall=true_alerts / attacks if attacks else 0.0,
        precision=true_alerts / alerts if alerts else 1.0,
        normal_flows=normal,
        attack_flows=attacks,
    )


def threshold_for_budget(
    is_attack: np.ndarray, attack_probability: np.ndarray, max_false_positive_rate: float
) -> Rates:
    """The lowest threshold, so the highest recall, that calls at most `max_false_positive_rate` of
    the Normal flows attacks. Thresholds are the scores themselves: a Normal flow scoring exactly at
    the threshold counts as a false positive, so ties at the boundary are all kept out."""
    if not 0 <= max_false_positive_rate < 1:
        raise ValueError("max_false_positive_rate: must be within [0, 1)")
    truth = np.asarray(is_attack).astype(bool)
    scores = np.asarray(attack_probability, dtype=np.float64)
    normal_scores = np.sort(scores[~truth])[::-1]
    allowed = int(np.floor(max_false_positive_rate * len(normal_scores) + 1e-9))
    candidates = np.unique(scores)
    if allowed >= len(normal_scores):
        threshold = float(candidates[0])
    else:
        # Above the highest Normal score that must stay below the threshold.
        above = candidates[candidates > normal_scores[allowed]]
        threshold = float(above[0]) if above.size else float(np.nextafter(normal_scores[allowed], np.inf))
    return rates(truth, scores, threshold)


def held_out_attack_probability(label_pipeline: Pipeline, train: pd.DataFrame, seed: int) -> np.ndarray:
    """P(attack) of every training row from a copy of `label_pipeline` that never saw its feature
    vector (grouped folds): the threshold is chosen on these, so the validation split stays a fair
    check of the rates it promises."""
    folds = grouped_folds(flow_groups(train), train[ATTACK_CAT].to_numpy(), HELD_OUT_FOLDS, seed)
    probabilities = cross_val_predict(
        clone(label_pipeline), train, train[LABEL].to_numpy(), cv=folds, method="predict_proba"
    )
    positive = list(label_pipeline.classes_).index(1)
    result: np.ndarray = probabilities[:, positive]
    return result

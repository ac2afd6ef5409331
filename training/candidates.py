"""Candidate pipelines (a family, a target, a feature set) and candidate pairs (a label and an attack_cat
pipeline as one cascade): fit them, score them on held-out folds, choose the pair to deploy."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from nids_common.schema import ATTACK_CAT, LABEL, NORMAL
from nids_model.averaging import class_sample_weight
from nids_model.detection import DetectionModel
from nids_model.folds import flow_groups, grouped_holdout
from nids_model.manifest import ValidationMetrics
from training.config import TrainingConfig
from training.evaluation import TargetMetrics, class_metrics, evaluate, rows_per_second
from training.models import FAMILY_NAMES, build_pipeline, sample_params, supports_sample_weight
from training.operating_point import held_out_attack_probability

log = logging.getLogger("nids.train")


@dataclasses.dataclass(frozen=True, eq=False)
class Candidate:
    family: str
    target: str
    feature_set: str
    params: dict[str, Any]
    pipeline: Pipeline
    fit_seconds: float
    rows_per_second: float
    probabilities: np.ndarray  # validation rows × classes
    metrics: TargetMetrics
    # Its score on held-out predictions of the training rows (grouped folds): label accuracy, or the
    # attack_cat macro-F1 that tuned the class scales. None without such predictions.
    held_out_score: float | None = None
    held_out_attack_probability: np.ndarray | None = None  # label: training rows

    @property
    def name(self) -> str:
        return f"{FAMILY_NAMES[self.family]} ({self.feature_set} features)"

    def attack_probability(self) -> np.ndarray:
        """P(label = 1) of the validation rows: a label candidate's positive column."""
        column: np.ndarray = self.probabilities[:, list(self.pipeline.classes_).index(1)]
        return column


@dataclasses.dataclass(frozen=True, eq=False)
class Pair:
    """A label and an attack_cat candidate as one cascade, with its validation figures."""

    label: Candidate
    attack_cat: Candidate
    model: DetectionModel
    metrics: ValidationMetrics
    worst_case_rows_per_second: float

    def merit(self) -> tuple[float, float]:
        """What deployment maximises: attack_cat, then label held-out score (the validation figures
        where a candidate has none)."""
        cat, lab = self.attack_cat.held_out_score, self.label.held_out_score
        return (
            round(self.metrics.attack_cat_macro_f1 if cat is None else cat, 4),
            self.metrics.label_accuracy if lab is None else lab,
        )


@dataclasses.dataclass(frozen=True)
class Trial:
    """One setting of a hyper-parameter search and its inner hold-out score."""

    params: dict[str, Any]
    score: float


def fit_pipeline(
    family: str, target: str, features: Sequence[str], params: dict[str, Any], train: pd.DataFrame, seed: int
) -> tuple[Pipeline, float]:
    """One target's pipeline fitted on `train`, with its class weights; and the seconds it took."""
    pipeline = build_pipeline(family, features, params, seed)
    y = train[target].to_numpy()
    fit_kwargs = {}
    weights = class_sample_weight(y, params.get("weight_exponent", 0.0)) if supports_sample_weight(family) else None
    if weights is not None:
        fit_kwargs["model__sample_weight"] = weights
    started = time.perf_counter()
    pipeline.fit(train, y, **fit_kwargs)
    return pipeline, time.perf_counter() - started


def target_metrics(target: str, y_true: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> TargetMetrics:
    """One pipeline's own validation metrics. An attack_cat model is asked only about attacks in the
    cascade, so it is scored on the attack rows, naming the most probable attack class."""
    if target == ATTACK_CAT:
        attacks = y_true.astype(str) != NORMAL
        y_true, probabilities = y_true[attacks], probabilities[attacks].copy()
        probabilities[:, list(classes.astype(str)).index(NORMAL)] = -1.0
    # As text, so the label target's 0/1 and attack_cat's names are reported alike.
    return class_metrics(y_true.astype(str), classes[probabilities.argmax(axis=1)].astype(str))


def held_out_scores(candidate: Candidate, train: pd.DataFrame, config: TrainingConfig) -> Candidate:
    """The candidate with its grouped-fold score: deployment is chosen on these, never on the
    validation split, which stays the honest estimate of the chosen pair."""
    if candidate.target == LABEL:
        probability = held_out_attack_probability(candidate.pipeline, train, config.seed)
        truth = train[LABEL].to_numpy()
        score = float(np.mean((probability >= config.decision_threshold) == (truth == 1)))
        return dataclasses.replace(candidate, held_out_score=score, held_out_attack_probability=probability)
    estimator = candidate.pipeline[-1]
    while not hasattr(estimator, "held_out_macro_f1_") and hasattr(estimator, "estimator_"):
        estimator = estimator.estimator_
    return dataclasses.replace(candidate, held_out_score=getattr(estimator, "held_out_macro_f1_", None))


def fit_candidate(
    family: str,
    target: str,
    feature_set: str,
    features: Sequence[str],
    params: dict[str, Any],
    train: pd.DataFrame,
    val: pd.DataFrame,
    config: TrainingConfig,
) -> Candidate:
    pipeline, fit_seconds = fit_pipeline(family, target, features, params, train, config.seed)
    probabilities = pipeline.predict_proba(val)
    batch = val.iloc[: config.throughput_batch_rows]
    speed = rows_per_second(pipeline.predict_proba, batch, len(batch))
    return Candidate(
        family,
        target,
        feature_set,
        dict(params),
        pipeline,
        fit_seconds,
        speed,
        probabilities,
        target_metrics(target, val[target].to_numpy(), probabilities, pipeline.classes_),
    )


def search_params(
    family: str, target: str, features: Sequence[str], train: pd.DataFrame, config: TrainingConfig
) -> tuple[dict[str, Any], list[Trial]]:
    """Bounded random search scored on an inner hold-out of the training split (validation stays unseen)."""
    rng = np.random.default_rng(config.seed)
    inner_train_rows, inner_test_rows = grouped_holdout(
        flow_groups(train), train[ATTACK_CAT].to_numpy(), 0.2, config.seed
    )
    inner_train, inner_test = train.iloc[inner_train_rows], train.iloc[inner_test_rows]
    trials = []
    for params in sample_params(family, rng, config.search_iterations, target):
        candidate = fit_candidate(family, target, "inner", features, params, inner_train, inner_test, config)
        score = candidate.metrics.macro_f1 if target == ATTACK_CAT else candidate.metrics.accuracy
        trials.append(Trial(params, score))
        log.info("search %s/%s %s → %.4f", family, target, params, score)
    best = max(trials, key=lambda t: t.score)
    return best.params, trials


def choose_deployed(
    label_candidates: Sequence[Candidate],
    cat_candidates: Sequence[Candidate],
    val: pd.DataFrame,
    config: TrainingConfig,
) -> tuple[Pair, list[Pair]]:
    """The best pair (`Pair.merit`) among the pairs fast enough to deploy; and every pair."""
    pairs: list[Pair] = []
    batch = val.iloc[: config.throughput_batch_rows]
    for lab in label_candidates:
        for cat in cat_candidates:
            model = DetectionModel(lab.pipeline, cat.pipeline, config.decision_threshold)
            scores = model.decide(lab.attack_probability(), cat.probabilities)
            metrics = evaluate(
                val[LABEL].to_numpy(), val[ATTACK_CAT].to_numpy(), scores.is_attack.astype(int), scores.attack_cat
            ).metrics
            pairs.append(Pair(lab, cat, model, metrics, worst_case_rows_per_second(model, batch)))
    fast = [p for p in pairs if p.worst_case_rows_per_second >= config.min_rows_per_second]
    pool = fast or [max(pairs, key=lambda p: p.worst_case_rows_per_second)]
    if not fast:
        log.warning("no candidate pair predicts at %.0f rows/s; deploying the fastest", config.min_rows_per_second)
    return max(pool, key=Pair.merit), pairs


def worst_case_rows_per_second(model: DetectionModel, batch: pd.DataFrame) -> float:
    """Scoring rate when every flow is an attack (a flood): the cascade runs both pipelines on every row."""
    flood = dataclasses.replace(model, threshold=0.0)
    return rows_per_second(flood.score, batch, len(batch))

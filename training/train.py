"""nids-train's work: split, analyse, fit candidates, choose the deployed model, write the artifact."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from nids_common.errors import InputError
from nids_common.progress import progress
from nids_common.schema import ATTACK_CAT, FEATURES, LABEL, NORMAL
from nids_dataset.unsw import load_flows
from nids_model import artifact
from nids_model.canary import CANARY_FILE, make_canary
from nids_model.detection import DetectionModel
from nids_model.folds import flow_groups, grouped_holdout
from nids_model.profile import make_profile
from training import report
from training.analysis import analyse
from training.config import TrainingConfig
from training.evaluation import class_metrics, evaluate, rows_per_second
from training.models import (
    DEFAULT_PARAMS,
    FAMILY_NAMES,
    build_pipeline,
    class_sample_weight,
    sample_params,
    supports_sample_weight,
)
from training.operating_point import HELD_OUT_FOLDS, held_out_attack_probability, rates, threshold_for_budget

log = logging.getLogger("nids.train")
TARGETS = (LABEL, ATTACK_CAT)
MIN_ROWS_PER_CLASS = 2


@dataclasses.dataclass
class Candidate:
    family: str
    target: str
    feature_set: str
    params: dict[str, Any]
    pipeline: Pipeline
    fit_seconds: float
    rows_per_second: float
    probabilities: np.ndarray  # validation rows × classes
    metrics: dict[str, Any]
    # Its score on held-out predictions of the training rows (grouped folds): label accuracy, or the
    # attack_cat macro-F1 that tuned the class scales. None without such predictions.
    held_out_score: float | None = None
    held_out_attack_probability: np.ndarray | None = None  # label: training rows

    @property
    def name(self) -> str:
        return f"{FAMILY_NAMES[self.family]} ({self.feature_set} features)"


@dataclasses.dataclass
class TrainingResult:
    path: Path
    manifest: dict[str, Any]
    validation: pd.DataFrame


def split(frame: pd.DataFrame, config: TrainingConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validation split: identical feature vectors never on both sides (`nids_model.folds`)."""
    counts = frame[ATTACK_CAT].value_counts()
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    if len(rare):
        raise InputError(
            f"column attack_cat: class {rare.index[0]!r} has {int(rare.iloc[0])} row(s); "
            f"a stratified split needs {MIN_ROWS_PER_CLASS}"
        )
    train_idx, val_idx = grouped_holdout(
        flow_groups(frame), frame[ATTACK_CAT].to_numpy(), config.validation_fraction, config.seed
    )
    return frame.iloc[train_idx].reset_index(drop=True), frame.iloc[val_idx].reset_index(drop=True)


def plain_split_metrics(
    chosen: Mapping[str, Candidate], threshold: float, frame: pd.DataFrame, config: TrainingConfig
) -> dict[str, Any]:
    """Validation figures of the deployed settings refitted on a plain stratified split, which lets
    copies of one feature vector fall on both sides: what a duplicate-blind evaluation reports."""
    train_rows, val_rows = train_test_split(
        np.arange(len(frame)),
        test_size=config.validation_fraction,
        stratify=frame[ATTACK_CAT],
        random_state=config.seed,
    )
    train, val = frame.iloc[train_rows], frame.iloc[val_rows]
    label, attack_cat = (
        fit_pipeline(c.family, c.target, c.pipeline[0].features, c.params, train, config.seed)[0]
        for c in (chosen[LABEL], chosen[ATTACK_CAT])
    )
    scores = DetectionModel(label, attack_cat, threshold).score(val)
    metrics = evaluate(
        val[LABEL].to_numpy(), val[ATTACK_CAT].to_numpy(), scores.is_attack.astype(int), scores.attack_cat
    )
    return {k: v for k, v in metrics.items() if k != "confusion_matrix"}


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


def target_metrics(target: str, y_true: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
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
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Bounded random search scored on an inner hold-out of the training split (validation stays unseen)."""
    rng = np.random.default_rng(config.seed)
    inner_train_rows, inner_test_rows = grouped_holdout(
        flow_groups(train), train[ATTACK_CAT].to_numpy(), 0.2, config.seed
    )
    inner_train, inner_test = train.iloc[inner_train_rows], train.iloc[inner_test_rows]
    trials = []
    for params in sample_params(family, rng, config.search_iterations, target):
        candidate = fit_candidate(family, target, "inner", features, params, inner_train, inner_test, config)
        score = candidate.metrics["macro_f1"] if target == ATTACK_CAT else candidate.metrics["accuracy"]
        trials.append({"params": params, "score": score})
        log.info("search %s/%s %s → %.4f", family, target, params, score)
    best = max(trials, key=lambda t: t["score"])
    return best["params"], trials


def choose_deployed(
    label_candidates: Sequence[Candidate],
    cat_candidates: Sequence[Candidate],
    val: pd.DataFrame,
    config: TrainingConfig,
) -> tuple[DetectionModel, dict[str, Any], list[dict[str, Any]]]:
    """The best pair (attack_cat, then label held-out score; the validation figures where a
    candidate has none) among the pairs fast enough to deploy."""
    rows: list[dict[str, Any]] = []
    batch = val.iloc[: config.throughput_batch_rows]
    for lab in label_candidates:
        for cat in cat_candidates:
            model = DetectionModel(lab.pipeline, cat.pipeline, config.decision_threshold)
            positive = list(lab.pipeline.classes_).index(1)
            scores = model.decide(lab.probabilities[:, positive], cat.probabilities)
            metrics = evaluate(
                val[LABEL].to_numpy(), val[ATTACK_CAT].to_numpy(), scores.is_attack.astype(int), scores.attack_cat
            )
            rows.append(
                {
                    "label": lab,
                    "attack_cat": cat,
                    "model": model,
                    "metrics": metrics,
                    "worst_case_rows_per_second": worst_case_rows_per_second(model, batch),
                }
            )
    fast = [r for r in rows if r["worst_case_rows_per_second"] >= config.min_rows_per_second]
    pool = fast or [max(rows, key=lambda r: r["worst_case_rows_per_second"])]
    if not fast:
        log.warning("no candidate pair predicts at %.0f rows/s; deploying the fastest", config.min_rows_per_second)

    def merit(row: dict[str, Any]) -> tuple[float, float]:
        cat, lab = row["attack_cat"].held_out_score, row["label"].held_out_score
        return (
            round(row["metrics"]["attack_cat_macro_f1"] if cat is None else cat, 4),
            row["metrics"]["label_accuracy"] if lab is None else lab,
        )

    best = max(pool, key=merit)
    return best["model"], best, rows


def worst_case_rows_per_second(model: DetectionModel, batch: pd.DataFrame) -> float:
    """Scoring rate when every flow is an attack (a flood): the cascade runs both pipelines on every row."""
    flood = dataclasses.replace(model, threshold=0.0)
    return rows_per_second(flood.score, batch, len(batch))


def run_training(
    data: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    config: TrainingConfig,
    test: Sequence[str | os.PathLike[str]] = (),
    compare: bool = False,
    frame: pd.DataFrame | None = None,
    data_description: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Train and write an artifact. `frame` replaces reading `data` (synthetic training)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}  # phase → seconds, for the manifest
    if frame is None:
        frame = load_flows(data, config.chunk_rows)
    if test:
        train, val = frame.reset_index(drop=True), load_flows(test, config.chunk_rows)
    else:
        train, val = split(frame, config)
    log.info("training on %d rows, validating on %d", len(train), len(val))
    timings["load and split"] = time.perf_counter() - started

    families = ("rf", "knn", "hgb") if compare else config.deploy_candidates
    with progress() as bar:
        task = bar.add_task("feature analysis", total=1, info="")
        analysis = analyse(
            train, config.rfe_feature_counts, config.analysis_rows, config.selection_tolerance, config.seed
        )
        bar.advance(task)
        timings["feature analysis"] = time.perf_counter() - started - sum(timings.values())
        feature_sets = {"all": FEATURES, "selected": analysis.selected} if compare else {"all": FEATURES}
        jobs = [(f, t, s) for f in families for t in TARGETS for s in feature_sets]
        task = bar.add_task("models", total=len(jobs), info="")
        candidates: list[Candidate] = []
        searches: dict[str, Any] = {}
        for family, target, feature_set in jobs:
            bar.update(task, info=f"{FAMILY_NAMES[family]} / {target} / {feature_set}")
            params = dict(DEFAULT_PARAMS[(family, target)])
            if compare:
                params, trials = search_params(family, target, feature_sets[feature_set], train, config)
                searches[f"{family}/{target}/{feature_set}"] = trials
            candidates.append(
                fit_candidate(family, target, feature_set, feature_sets[feature_set], params, train, val, config)
            )
            bar.advance(task)

    candidates = [held_out_scores(c, train, config) if c.family in config.deploy_candidates else c for c in candidates]
    deployable = [c for c in candidates if c.family in config.deploy_candidates]
    model, chosen, pairs = choose_deployed(
        [c for c in deployable if c.target == LABEL], [c for c in deployable if c.target == ATTACK_CAT], val, config
    )
    timings["models"] = time.perf_counter() - started - sum(timings.values())
    label_probability = chosen["label"].probabilities[:, list(chosen["label"].pipeline.classes_).index(1)]
    expected = None
    if config.max_false_positive_rate is not None:
        held_out = chosen["label"].held_out_attack_probability
        expected = threshold_for_budget(train[LABEL].to_numpy(), held_out, config.max_false_positive_rate)
        model = dataclasses.replace(model, threshold=expected.threshold)
        log.info("label threshold %.4f for a false-positive budget of %s", expected.threshold, expected)
    verdicts = model.decide(label_probability, chosen["attack_cat"].probabilities)
    validation = evaluate(
        val[LABEL].to_numpy(), val[ATTACK_CAT].to_numpy(), verdicts.is_attack.astype(int), verdicts.attack_cat
    )
    timings["operating point"] = time.perf_counter() - started - sum(timings.values())
    plain = None if test else plain_split_metrics(chosen, model.threshold, frame, config)
    timings["plain split"] = time.perf_counter() - started - sum(timings.values())
    batch = val.iloc[: config.throughput_batch_rows]
    measured = rows_per_second(model.score, batch, len(batch))
    manifest = {
        "features": list(FEATURES),
        "feature_dtypes": {
            f: ("category" if f in model.label_pipeline[0].vocabularies_ else "float64") for f in FEATURES
        },
        "category_vocabularies": {k: list(v) for k, v in model.label_pipeline[0].vocabularies_.items()},
        "classes": list(model.classes),
        "decision_threshold": model.threshold,
        "operating_point": {
            "threshold": model.threshold,
            "max_false_positive_rate": config.max_false_positive_rate,
            "expected": None if expected is None else dataclasses.asdict(expected),
            "expected_from": None
            if expected is None
            else f"grouped {HELD_OUT_FOLDS}-fold out-of-fold P(attack) of the training rows",
            "validation": dataclasses.asdict(rates(val[LABEL].to_numpy(), label_probability, model.threshold)),
        },
        "models": {
            LABEL: {
                "family": chosen["label"].family,
                "feature_set": chosen["label"].feature_set,
                "params": chosen["label"].params,
                "features": list(model.label_pipeline[0].features),
            },
            ATTACK_CAT: {
                "family": chosen["attack_cat"].family,
                "feature_set": chosen["attack_cat"].feature_set,
                "params": chosen["attack_cat"].params,
                "features": list(model.attack_cat_pipeline[0].features),
            },
        },
        "training_data": dict(data_description)
        if data_description
        else [{"path": str(p), "sha256": artifact.file_sha256(p)} for p in data],
        "validation_data": [{"path": str(p), "sha256": artifact.file_sha256(p)} for p in test]
        or {
            "split": "grouped: identical feature vectors on one side, stratified by attack_cat",
            "fraction": config.validation_fraction,
            "seed": config.seed,
        },
        "rows": {"train": len(train), "validation": len(val)},
        "validation_metrics": {k: v for k, v in validation.items() if k not in ("confusion_matrix",)},
        "plain_split_metrics": plain,
        "rows_per_second": measured,
        "worst_case_rows_per_second": worst_case_rows_per_second(model, batch),
        "throughput_batch_rows": len(batch),
        "selected_features": list(analysis.selected),
    }
    canary, manifest["canary"] = make_canary(model, val, seed=config.seed)
    preprocess = model.label_pipeline[0]
    manifest["reference_profile"] = make_profile(
        preprocess.transform(train),
        preprocess.features,
        preprocess.vocabularies_,
        verdicts.attack_cat,
        model.classes,
    )
    timings["measure, canary, profile"] = time.perf_counter() - started - sum(timings.values())

    def extras(folder: Path) -> None:
        (folder / CANARY_FILE).write_bytes(canary)
        report.write(
            folder,
            report.Inputs(analysis, candidates, pairs, chosen, validation, label_probability, manifest, compare),
            searches,
            train,
            val,
        )

    manifest["training_seconds"] = round(time.perf_counter() - started, 1)
    manifest["training_seconds_by_phase"] = {phase: round(seconds, 1) for phase, seconds in timings.items()}
    path = artifact.write_artifact(out_dir, model, manifest, extras)
    log.info("wrote %s in %.0f s", path, time.perf_counter() - started)
    validation_frame = val.assign(pred_label=verdicts.is_attack.astype(int), pred_attack_cat=verdicts.attack_cat)
    return TrainingResult(path, artifact.read_manifest(path), validation_frame)

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
from nids_common.schema import ATTACK_CAT, FEATURES, LABEL
from nids_dataset.unsw import load_flows
from nids_model import artifact
from nids_model.canary import CANARY_FILE, make_canary
from nids_model.detection import DetectionModel
from nids_model.profile import make_profile
from training import report
from training.analysis import analyse
from training.config import TrainingConfig
from training.evaluation import class_metrics, evaluate, rows_per_second, stratify_or_none
from training.models import (
    DEFAULT_PARAMS,
    FAMILY_NAMES,
    build_pipeline,
    class_sample_weight,
    sample_params,
    supports_sample_weight,
)

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

    @property
    def name(self) -> str:
        return f"{FAMILY_NAMES[self.family]} ({self.feature_set} features)"


@dataclasses.dataclass
class TrainingResult:
    path: Path
    manifest: dict[str, Any]
    validation: pd.DataFrame


def split(frame: pd.DataFrame, config: TrainingConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = frame[ATTACK_CAT].value_counts()
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    if len(rare):
        raise InputError(
            f"column attack_cat: class {rare.index[0]!r} has {int(rare.iloc[0])} row(s); "
            f"a stratified split needs {MIN_ROWS_PER_CLASS}"
        )
    train_idx, val_idx = train_test_split(
        np.arange(len(frame)),
        test_size=config.validation_fraction,
        stratify=frame[ATTACK_CAT],
        random_state=config.seed,
    )
    return frame.iloc[train_idx].reset_index(drop=True), frame.iloc[val_idx].reset_index(drop=True)


def target_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    # As text, so the label target's 0/1 and attack_cat's names are reported alike.
    return class_metrics(y_true.astype(str), y_pred.astype(str))


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
    pipeline = build_pipeline(family, features, params, config.seed)
    y = train[target].to_numpy()
    fit_kwargs = {}
    weights = class_sample_weight(y, params.get("weight_exponent", 0.0)) if supports_sample_weight(family) else None
    if weights is not None:
        fit_kwargs["model__sample_weight"] = weights
    started = time.perf_counter()
    pipeline.fit(train, y, **fit_kwargs)
    fit_seconds = time.perf_counter() - started
    probabilities = pipeline.predict_proba(val)
    predicted = pipeline.classes_[probabilities.argmax(axis=1)]
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
        target_metrics(val[target].to_numpy(), predicted),
    )


def search_params(
    family: str, target: str, features: Sequence[str], train: pd.DataFrame, config: TrainingConfig
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Bounded random search scored on an inner hold-out of the training split (validation stays unseen)."""
    rng = np.random.default_rng(config.seed)
    inner_train_rows, inner_test_rows = train_test_split(
        np.arange(len(train)),
        test_size=0.2,
        stratify=stratify_or_none(train[ATTACK_CAT].to_numpy()),
        random_state=config.seed,
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
    """Best validation (attack_cat macro-F1, label accuracy) among pairs fast enough to deploy."""
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
    best = max(pool, key=lambda r: (round(r["metrics"]["attack_cat_macro_f1"], 4), r["metrics"]["label_accuracy"]))
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
    if frame is None:
        frame = load_flows(data, config.chunk_rows)
    if test:
        train, val = frame.reset_index(drop=True), load_flows(test, config.chunk_rows)
    else:
        train, val = split(frame, config)
    log.info("training on %d rows, validating on %d", len(train), len(val))

    families = ("rf", "knn", "hgb") if compare else config.deploy_candidates
    with progress() as bar:
        task = bar.add_task("feature analysis", total=1, info="")
        analysis = analyse(
            train, config.rfe_feature_counts, config.analysis_rows, config.selection_tolerance, config.seed
        )
        bar.advance(task)
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

    deployable = [c for c in candidates if c.family in config.deploy_candidates]
    model, chosen, pairs = choose_deployed(
        [c for c in deployable if c.target == LABEL], [c for c in deployable if c.target == ATTACK_CAT], val, config
    )
    batch = val.iloc[: config.throughput_batch_rows]
    measured = rows_per_second(model.score, batch, len(batch))
    worst_case = chosen["worst_case_rows_per_second"]
    validation = chosen["metrics"]
    manifest = {
        "features": list(FEATURES),
        "feature_dtypes": {
            f: ("category" if f in model.label_pipeline[0].vocabularies_ else "float64") for f in FEATURES
        },
        "category_vocabularies": {k: list(v) for k, v in model.label_pipeline[0].vocabularies_.items()},
        "classes": list(model.classes),
        "decision_threshold": model.threshold,
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
        or {"split": "stratified by attack_cat", "fraction": config.validation_fraction, "seed": config.seed},
        "rows": {"train": len(train), "validation": len(val)},
        "validation_metrics": {k: v for k, v in validation.items() if k not in ("confusion_matrix",)},
        "rows_per_second": measured,
        "worst_case_rows_per_second": worst_case,
        "throughput_batch_rows": len(batch),
        "selected_features": list(analysis.selected),
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    canary, manifest["canary"] = make_canary(model, val, seed=config.seed)
    validation_verdicts = model.decide(
        chosen["label"].probabilities[:, list(chosen["label"].pipeline.classes_).index(1)],
        chosen["attack_cat"].probabilities,
    )
    preprocess = model.label_pipeline[0]
    manifest["reference_profile"] = make_profile(
        preprocess.transform(train),
        preprocess.features,
        preprocess.vocabularies_,
        validation_verdicts.attack_cat,
        model.classes,
    )

    def extras(folder: Path) -> None:
        (folder / CANARY_FILE).write_bytes(canary)
        report.write(folder, analysis, candidates, pairs, chosen, measured, manifest, compare, searches, train, val)

    path = artifact.write_artifact(out_dir, model, manifest, extras)
    log.info("wrote %s in %.0f s", path, time.perf_counter() - started)
    predictions = model.decide(
        chosen["label"].probabilities[:, list(chosen["label"].pipeline.classes_).index(1)],
        chosen["attack_cat"].probabilities,
    )
    validation_frame = val.assign(pred_label=predictions.is_attack.astype(int), pred_attack_cat=predictions.attack_cat)
    return TrainingResult(path, artifact.read_manifest(path), validation_frame)

"""nids-train's work, phase by phase: load and split, analyse features, fit candidates and choose the
deployed pair, set its operating point, refit on a plain split for comparison, measure it and record
its canary and reference profile, then write the artifact."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from rich.progress import Progress

from nids_common.errors import InputError
from nids_common.progress import progress
from nids_common.schema import ATTACK_CAT, FEATURES, LABEL
from nids_common.stages import StageTimes
from nids_dataset.unsw import load_flows
from nids_model import artifact
from nids_model.canary import CANARY_FILE, make_canary
from nids_model.detection import DetectionModel, Scores
from nids_model.folds import flow_groups, grouped_holdout
from nids_model.manifest import (
    Canary,
    DataFile,
    DeployedModels,
    Manifest,
    ModelSpec,
    OperatingPoint,
    ReferenceProfile,
    RowCounts,
    SplitRecipe,
    SyntheticData,
    TrainingRecord,
)
from nids_model.profile import make_profile
from training import report
from training.analysis import FeatureAnalysis, analyse
from training.candidates import (
    Candidate,
    Pair,
    Trial,
    choose_deployed,
    fit_candidate,
    held_out_scores,
    search_params,
    worst_case_rows_per_second,
)
from training.config import ATTACK_CAT_ONLY_FAMILIES, TrainingConfig
from training.evaluation import Evaluation, evaluate, evaluate_by_regime, rows_per_second
from training.models import DEFAULT_PARAMS, FAMILY_NAMES, SEARCH_SPACES
from training.operating_point import HELD_OUT_FOLDS, rates, threshold_for_budget
from training.regimes import RegimeResult, fit_regimes, seen_record

log = logging.getLogger("nids.train")
TARGETS = (LABEL, ATTACK_CAT)
MIN_ROWS_PER_CLASS = 2
COMPARED_FAMILIES = ("rf", "knn", "hgb")


@dataclasses.dataclass
class TrainingResult:
    path: Path
    manifest: Manifest
    validation: pd.DataFrame


class PhaseClock(StageTimes):
    """Seconds spent per phase of a training run (the manifest's training_seconds_by_phase); a phase
    entered twice adds up."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(now)
        self.started = now()

    def phase(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self.timing(name)

    def total(self) -> float:
        return self.now() - self.started


@dataclasses.dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    from_test_files: bool  # validation rows came from --test files, not a split


@dataclasses.dataclass(frozen=True)
class Fitted:
    candidates: list[Candidate]
    searches: dict[str, list[Trial]]  # "family/target/feature_set" → its search trials (--compare)


@dataclasses.dataclass(frozen=True)
class Selection:
    candidates: list[Candidate]  # every candidate; the deployable ones with their held-out scores
    pairs: list[Pair]
    chosen: Pair


@dataclasses.dataclass(frozen=True, eq=False)
class Deployment:
    """The chosen pair at its operating point, and what it does on the validation rows."""

    model: DetectionModel
    point: OperatingPoint
    attack_probability: np.ndarray  # validation rows, P(label = 1)
    verdicts: Scores  # validation rows
    validation: Evaluation
    validation_by_regime: dict[str, Evaluation]  # `evaluate_by_regime` of the validation rows


@dataclasses.dataclass(frozen=True)
class Measurements:
    rows_per_second: float
    worst_case_rows_per_second: float
    batch_rows: int
    canary_payload: bytes
    canary: Canary
    profile: ReferenceProfile


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


def load_and_split(
    data: Sequence[str | os.PathLike[str]],
    test: Sequence[str | os.PathLike[str]],
    config: TrainingConfig,
    frame: pd.DataFrame | None,
) -> Splits:
    """Training and validation rows: `test` files validate when given, else a grouped split."""
    flows = load_flows(data, config.chunk_rows) if frame is None else frame
    if test:
        train, val = flows.reset_index(drop=True), load_flows(test, config.chunk_rows)
    else:
        train, val = split(flows, config)
    log.info("training on %d rows, validating on %d", len(train), len(val))
    return Splits(train, val, bool(test))


def analyse_features(train: pd.DataFrame, config: TrainingConfig, bar: Progress) -> FeatureAnalysis:
    task = bar.add_task("feature analysis", total=1, info="")
    analysis = analyse(train, config.rfe_feature_counts, config.analysis_rows, config.selection_tolerance, config.seed)
    bar.advance(task)
    return analysis


def fit_candidates(
    jobs: Sequence[tuple[str, str, str]],
    feature_sets: Mapping[str, Sequence[str]],
    splits: Splits,
    compare: bool,
    config: TrainingConfig,
    bar: Progress,
) -> Fitted:
    """A candidate per (family, target, feature set) job: with `compare` each tuned by a bounded
    search (an averaged family takes its members' defaults: it has no search space), else with the
    family's defaults."""
    task = bar.add_task("models", total=len(jobs), info="")
    candidates: list[Candidate] = []
    searches: dict[str, list[Trial]] = {}
    for family, target, feature_set in jobs:
        bar.update(task, info=f"{FAMILY_NAMES[family]} / {target} / {feature_set}")
        features = feature_sets[feature_set]
        params = dict(DEFAULT_PARAMS[(family, target)])
        if compare and family in SEARCH_SPACES:
            params, searches[f"{family}/{target}/{feature_set}"] = search_params(
                family, target, features, splits.train, config
            )
        candidates.append(
            fit_candidate(family, target, feature_set, features, params, splits.train, splits.val, config)
        )
        bar.advance(task)
    return Fitted(candidates, searches)


def candidate_jobs(
    config: TrainingConfig, compare: bool, feature_sets: Iterable[str]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(family, target, feature set) of the candidates to fit first, and of those to fit only when no
    pair of the first scores fast enough. With `compare`, every compared and deployable family at
    once; else, per target, the first of `deploy_candidates` that has a model of it (rf+hgb has an
    attack_cat model only), then the rest."""
    families = dict.fromkeys((*COMPARED_FAMILIES, *config.deploy_candidates) if compare else config.deploy_candidates)
    jobs = [
        (f, t, s)
        for f in families
        for t in TARGETS
        for s in feature_sets
        if t == ATTACK_CAT or f not in ATTACK_CAT_ONLY_FAMILIES
    ]
    if compare:
        return jobs, []
    preferred = {t: next(f for f, target, _ in jobs if target == t) for t in TARGETS}
    return [j for j in jobs if preferred[j[1]] == j[0]], [j for j in jobs if preferred[j[1]] != j[0]]


def fit_and_select(
    splits: Splits,
    feature_sets: Mapping[str, Sequence[str]],
    compare: bool,
    config: TrainingConfig,
    bar: Progress,
) -> tuple[Fitted, Selection]:
    """The candidates and the deployed pair: the preferred families first, the fallbacks only when
    no pair of those scores `min_rows_per_second` (a fallback's fit costs a tenth of a run or more)."""
    first, fallbacks = candidate_jobs(config, compare, feature_sets)
    fitted = fit_candidates(first, feature_sets, splits, compare, config, bar)
    selection = select_deployed(fitted.candidates, splits, config)
    if fallbacks and selection.chosen.worst_case_rows_per_second < config.min_rows_per_second:
        log.info(
            "%s / %s scores %.0f rows/s when every flow is an attack, below %.0f: fitting %s too",
            selection.chosen.label.name,
            selection.chosen.attack_cat.name,
            selection.chosen.worst_case_rows_per_second,
            config.min_rows_per_second,
            ", ".join(f"{f}/{t}" for f, t, _ in fallbacks),
        )
        more = fit_candidates(fallbacks, feature_sets, splits, compare, config, bar)
        fitted = Fitted(fitted.candidates + more.candidates, {**fitted.searches, **more.searches})
        selection = select_deployed(selection.candidates + more.candidates, splits, config)
    return fitted, selection


def select_deployed(candidates: Sequence[Candidate], splits: Splits, config: TrainingConfig) -> Selection:
    """The deployable candidates scored on held-out folds, paired, and the best fast-enough pair."""
    scored = [
        held_out_scores(c, splits.train, config)
        if c.family in config.deploy_candidates and c.held_out_score is None
        else c
        for c in candidates
    ]
    deployable = [c for c in scored if c.family in config.deploy_candidates]
    chosen, pairs = choose_deployed(
        [c for c in deployable if c.target == LABEL],
        [c for c in deployable if c.target == ATTACK_CAT],
        splits.val,
        config,
    )
    return Selection(scored, pairs, chosen)


def set_operating_point(chosen: Pair, splits: Splits, config: TrainingConfig) -> tuple[Deployment, RegimeResult]:
    """The label threshold: the configured one, or the one a false-positive budget allows on
    out-of-fold predictions of the training rows; the seen regime and the cross-validated figures at
    it; and the deployed model's validation figures."""
    model, expected = chosen.model, None
    if config.max_false_positive_rate is not None:
        held_out = chosen.label.held_out_attack_probability
        if held_out is None:  # select_deployed gives every deployable label candidate its predictions
            raise ValueError(f"{chosen.label.name}: no held-out predictions to choose a threshold on")
        expected = threshold_for_budget(splits.train[LABEL].to_numpy(), held_out, config.max_false_positive_rate)
        model = dataclasses.replace(model, threshold=expected.threshold)
        log.info("label threshold %.4f for a false-positive budget of %s", expected.threshold, expected)
    regimes = fit_regimes(chosen.label, chosen.attack_cat, splits.train, model.threshold, config.seed)
    model = dataclasses.replace(model, seen=regimes.seen)
    seen = model.regime(model.label_pipeline[0].transform(splits.val))
    attack_probability = regimes.seen.attack_probability(seen, chosen.label.attack_probability())
    verdicts = model.decide(attack_probability, regimes.seen.class_probabilities(seen, chosen.attack_cat.probabilities))
    truth, true_cat = splits.val[LABEL].to_numpy(), splits.val[ATTACK_CAT].to_numpy()
    predicted_label = verdicts.is_attack.astype(int)
    validation = evaluate(truth, true_cat, predicted_label, verdicts.attack_cat)
    by_regime = evaluate_by_regime(truth, true_cat, predicted_label, verdicts.attack_cat, seen)
    point = OperatingPoint(
        threshold=float(model.threshold),
        max_false_positive_rate=config.max_false_positive_rate,
        expected=expected,
        expected_from=None
        if expected is None
        else f"grouped {HELD_OUT_FOLDS}-fold out-of-fold P(attack) of the training rows",
        validation=rates(truth, attack_probability, model.threshold),
    )
    return Deployment(model, point, attack_probability, verdicts, validation, by_regime), regimes


def measure(deployment: Deployment, splits: Splits, config: TrainingConfig) -> Measurements:
    """The deployed model's scoring rates, its canary and the training data's reference profile."""
    model = deployment.model
    batch = splits.val.iloc[: config.throughput_batch_rows]
    measured = rows_per_second(model.score, batch, len(batch))
    worst_case = worst_case_rows_per_second(model, batch)
    # Validation rows and as many training rows: the canary then also checks the seen regime's table.
    seen_rows = splits.train.sample(n=min(len(splits.val), len(splits.train)), random_state=config.seed)
    payload, canary = make_canary(model, pd.concat([splits.val, seen_rows]), seed=config.seed)
    preprocess = model.label_pipeline[0]
    profile = make_profile(
        preprocess.transform(splits.train),
        preprocess.features,
        preprocess.vocabularies_,
        deployment.verdicts.attack_cat,
        model.classes,
    )
    return Measurements(measured, worst_case, len(batch), payload, canary, profile)


def build_manifest(
    data: Sequence[str | os.PathLike[str]],
    test: Sequence[str | os.PathLike[str]],
    data_description: Mapping[str, Any] | None,
    config: TrainingConfig,
    splits: Splits,
    analysis: FeatureAnalysis,
    chosen: Pair,
    deployment: Deployment,
    regimes: RegimeResult,
    measured: Measurements,
    clock: PhaseClock,
) -> TrainingRecord:
    """The training record of the deployed model: everything the manifest holds but what writing the
    artifact adds (version, checksums, library versions)."""
    model = deployment.model
    vocabularies = model.label_pipeline[0].vocabularies_
    return TrainingRecord(
        features=tuple(FEATURES),
        feature_dtypes={f: ("category" if f in vocabularies else "float64") for f in FEATURES},
        category_vocabularies={name: tuple(values) for name, values in vocabularies.items()},
        classes=tuple(model.classes),
        decision_threshold=float(model.threshold),
        operating_point=deployment.point,
        models=DeployedModels(
            label=model_spec(chosen.label, model.label_pipeline[0].features),
            attack_cat=model_spec(chosen.attack_cat, model.attack_cat_pipeline[0].features),
        ),
        training_data=msgspec.convert(dict(data_description), SyntheticData) if data_description else data_files(data),
        validation_data=data_files(test)
        or SplitRecipe(
            split="grouped: identical feature vectors on one side, stratified by attack_cat",
            fraction=config.validation_fraction,
            seed=config.seed,
        ),
        rows=RowCounts(train=len(splits.train), validation=len(splits.val)),
        validation_metrics=deployment.validation.metrics,
        cross_validation=regimes.cross_validation,
        seen_regime=seen_record(regimes.seen, model.classes),
        rows_per_second=measured.rows_per_second,
        worst_case_rows_per_second=measured.worst_case_rows_per_second,
        throughput_batch_rows=measured.batch_rows,
        selected_features=tuple(analysis.selected),
        canary=measured.canary,
        reference_profile=measured.profile,
        training_seconds=round(clock.total(), 1),
        training_seconds_by_phase={phase: round(seconds, 1) for phase, seconds in clock.seconds.items()},
    )


def model_spec(candidate: Candidate, features: Sequence[str]) -> ModelSpec:
    return ModelSpec(
        family=candidate.family, feature_set=candidate.feature_set, params=candidate.params, features=tuple(features)
    )


def data_files(paths: Sequence[str | os.PathLike[str]]) -> tuple[DataFile, ...]:
    return tuple(DataFile(path=str(p), sha256=artifact.file_sha256(p)) for p in paths)


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
    clock = PhaseClock()
    with clock.phase("load and split"):
        splits = load_and_split(data, test, config, frame)
    with progress() as bar:
        with clock.phase("feature analysis"):
            analysis = analyse_features(splits.train, config, bar)
        with clock.phase("models"):
            feature_sets = {"all": FEATURES, "selected": analysis.selected} if compare else {"all": FEATURES}
            fitted, selection = fit_and_select(splits, feature_sets, compare, config, bar)
    with clock.phase("operating point, regimes, cross-validation"):
        deployment, regimes = set_operating_point(selection.chosen, splits, config)
    with clock.phase("measure, canary, profile"):
        measured = measure(deployment, splits, config)
    record = build_manifest(
        data, test, data_description, config, splits, analysis, selection.chosen, deployment, regimes, measured, clock
    )
    version = artifact.new_version()

    def extras(folder: Path) -> None:
        (folder / CANARY_FILE).write_bytes(measured.canary_payload)
        inputs = report.Inputs(
            version,
            analysis,
            selection.candidates,
            selection.pairs,
            selection.chosen,
            deployment.validation,
            deployment.validation_by_regime,
            deployment.attack_probability,
            record,
            compare,
        )
        report.write(folder, inputs, fitted.searches, splits.train, splits.val)

    path = artifact.write_artifact(out_dir, deployment.model, record, extras, version=version)
    log.info("wrote %s in %.0f s", path, clock.total())
    verdicts = deployment.verdicts
    validation_frame = splits.val.assign(pred_label=verdicts.is_attack.astype(int), pred_attack_cat=verdicts.attack_cat)
    return TrainingResult(path, artifact.read_manifest(path), validation_frame)

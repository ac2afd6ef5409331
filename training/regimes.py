"""The two regimes of the deployed pair: the seen rule tuned on plain folds, and cross-validated figures
of the whole decision on grouped folds (novel vectors) and on plain folds (random rows, as live traffic).

Every figure comes from predictions of rows by models that never saw them: the grouped held-out
predictions training already makes (the label model's for its threshold, the attack_cat model's for
its class scales) and one plain 5-fold pass. The few numbers tuned after the models (the class scales,
the seen rule) are cross-fitted: tuned on the other folds' rows, applied to the fold's own.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from nids_common.schema import ATTACK_CAT, LABEL, NORMAL
from nids_model.attack_only import AttackOnlyClassifier
from nids_model.compiled import distinct_rows
from nids_model.folds import flow_groups, fold_of, grouped_folds
from nids_model.manifest import BucketScale, CrossValidation, FoldScores, RegimeScores, SeenRegimeRecord
from nids_model.reweighting import (
    DEFAULT_GRID,
    ClassScaledClassifier,
    confusion_macro_f1,
    coordinate_ascent,
    macro_f1,
    pair_counts,
    tune_class_scale,
)
from nids_model.seen_regime import SeenRegime, SeenVectors, blended_probability, row_buckets
from training.candidates import Candidate, fit_pipeline
from training.evaluation import class_metrics
from training.operating_point import HELD_OUT_FOLDS

log = logging.getLogger("nids.train")
PRIOR_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
SEEN_SCALE_GRID = (0.1, 0.25, 0.5, 0.7, 0.85, 1.0, 1.2, 1.4, 2.0, 2.8, 4.0, 8.0)
# The buckets of a seen vector's training rows that get class scales of their own (SeenRegime.min_rows).
SEEN_MIN_ROWS = (1, 2, 5, 10)
METHOD = (
    "5-fold cross-validation of the deployed settings on the training rows: models refitted per fold "
    "(grouped: the held-out predictions of the label threshold and the class-scale tuning; plain: a "
    "stratified random 5-fold pass), class scales and the seen rule tuned on the other folds' rows"
)


@dataclasses.dataclass(frozen=True, eq=False)
class Rows:
    """The training rows as the tuning sees them: n_samples rows, n_classes attack_cat classes.

    Attributes
    ----------
    truth : ndarray of shape (n_samples,), dtype=intp
        attack_cat as a column of `classes`.
    is_attack : ndarray of shape (n_samples,), dtype=bool
    classes : ndarray of shape (n_classes,), dtype=object (str)
    normal : int
        Normal's column.
    threshold : float
    """

    truth: np.ndarray
    is_attack: np.ndarray
    classes: np.ndarray
    normal: int
    threshold: float


@dataclasses.dataclass(frozen=True, eq=False)
class OutOfFold:
    """Held-out predictions of every training row (n_samples) under one fold scheme.

    Attributes
    ----------
    fold : ndarray of shape (n_samples,), dtype=intp
    attack_probability : ndarray of shape (n_samples,), dtype=float64
    raw : ndarray of shape (n_samples, n_classes), dtype=float64
        The attack_cat model's probabilities before class scaling.
    vector_rows, vector_attacks : ndarray of shape (n_samples,), dtype=int64
        How many of the fold's training rows had the row's exact vector (0: novel), and how many of
        those were attacks.
    vector_held_out : ndarray of shape (n_samples, n_classes), dtype=float64, or None
        The held-out class probabilities of the row's vector (`vector_held_out`), which the seen
        rule scales; None where no row is seen (grouped folds), or where the seen rule scales the
        model's probabilities `raw` (times the novel scales) instead.
    """

    fold: np.ndarray
    attack_probability: np.ndarray
    raw: np.ndarray
    vector_rows: np.ndarray
    vector_attacks: np.ndarray
    vector_held_out: np.ndarray | None = None

    @property
    def seen(self) -> np.ndarray:
        seen: np.ndarray = self.vector_rows > 0
        return seen


@dataclasses.dataclass(frozen=True, eq=False)
class SeenRule:
    prior: float
    class_scale: np.ndarray  # (len(min_rows), n_classes)
    min_rows: tuple[int, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class HeldOut:
    """Every training row's held-out predictions under both fold schemes.

    Attributes
    ----------
    rows : Rows
    matrix : ndarray of shape (n_samples, n_features), dtype=float32
        The model's matrix of the training rows: what the seen table is built from.
    grouped, plain : OutOfFold
    """

    rows: Rows
    matrix: np.ndarray
    grouped: OutOfFold
    plain: OutOfFold


@dataclasses.dataclass(frozen=True, eq=False)
class RegimeResult:
    """The seen regime to deploy and the cross-validated figures; with the held-out predictions they
    came from and `plain_decided` (n_samples,) intp, each training row's decided class on plain folds,
    every tuned number tuned on the other folds."""

    seen: SeenRegime
    cross_validation: CrossValidation
    held: HeldOut
    plain_decided: np.ndarray


def verdicts(
    rows: Rows, oof: OutOfFold, novel_scale: np.ndarray, rule: SeenRule | None, at: np.ndarray | slice = slice(None)
) -> np.ndarray:
    """The class column each row of `at` is decided as (intp): the alert rule on held-out predictions,
    with the seen rule where the fold's training rows held the vector (its attack class from the
    vector's held-out probabilities, as `SeenRegime.class_probabilities` takes it)."""
    probability = oof.attack_probability[at]
    score = oof.raw[at] * novel_scale
    if rule is not None:
        seen = oof.seen[at]
        vector_rows, vector_attacks = oof.vector_rows[at][seen], oof.vector_attacks[at][seen]
        probability = probability.copy()
        probability[seen] = blended_probability(vector_attacks, vector_rows, rule.prior, probability[seen])
        base = score[seen] if oof.vector_held_out is None else oof.vector_held_out[at][seen]
        score[seen] = base * rule.class_scale[row_buckets(rule.min_rows, vector_rows)]
    score[:, rows.normal] = -1.0
    decided: np.ndarray = np.where(probability >= rows.threshold, score.argmax(axis=1), rows.normal)
    return decided


def tune_novel_scale(rows: Rows, grouped: OutOfFold, at: np.ndarray) -> np.ndarray:
    """Class scales for novel flows from grouped held-out predictions of the attack rows of `at`, as
    ClassScaledClassifier tunes them (n_classes,)."""
    attacks = at[rows.truth[at] != rows.normal]
    scale, _ = tune_class_scale(grouped.raw[attacks], rows.truth[attacks], DEFAULT_GRID)
    return scale


def tune_seen_rule(rows: Rows, plain: OutOfFold, novel_scale: np.ndarray, at: np.ndarray) -> SeenRule:
    """The seen rule that decides the rows `at` of plain folds best: the prior by label accuracy on
    their seen rows, then the class scales of the vectors' held-out probabilities by macro-F1 over
    all of them (novel rows, decided with `novel_scale`, included, since macro-F1 is one figure over
    both): first one scale for every seen vector, then, from it, each bucket of training rows
    (SEEN_MIN_ROWS) its own."""
    seen_at = at[plain.seen[at]]
    n_classes, normal = len(rows.classes), rows.normal
    ones = np.ones((len(SEEN_MIN_ROWS), n_classes))

    def label_accuracy(prior: float) -> float:
        decided = verdicts(rows, plain, novel_scale, SeenRule(prior, ones, SEEN_MIN_ROWS), seen_at)
        return float(np.mean((decided != normal) == rows.is_attack[seen_at]))

    prior = max(PRIOR_GRID, key=label_accuracy) if len(seen_at) else PRIOR_GRID[-1]
    truth = rows.truth[at]
    unscaled = verdicts(rows, plain, novel_scale, SeenRule(prior, ones, SEEN_MIN_ROWS), at)
    # The scales move only the attack class of the seen rows decided as attacks: the rest is decided
    # once, and each bucket's rows are re-decided (as `verdicts` would, to the bit) only for a scale
    # of that bucket not counted yet, so a per-bucket trial re-decides one bucket.
    moving = plain.seen[at] & (unscaled != normal)
    fixed = pair_counts(truth[~moving], unscaled[~moving], n_classes, n_classes)
    bucket = row_buckets(SEEN_MIN_ROWS, plain.vector_rows[at][moving])
    members = [np.flatnonzero(bucket == index) for index in range(len(SEEN_MIN_ROWS))]
    moving_truth = truth[moving]
    held_out = (
        plain.raw[at[moving]] * novel_scale if plain.vector_held_out is None else plain.vector_held_out[at[moving]]
    )
    counted: dict[tuple[int, bytes], np.ndarray] = {}

    def bucket_counts(index: int, scale: np.ndarray) -> np.ndarray:
        key = (index, scale.tobytes())
        if key not in counted:
            score = held_out[members[index]] * scale
            score[:, normal] = -1.0
            decided = score.argmax(axis=1)
            counted[key] = pair_counts(moving_truth[members[index]], decided, n_classes, n_classes)
        return counted[key]

    def seen_macro_f1(scales: np.ndarray) -> float:
        by_bucket = scales.reshape(len(SEEN_MIN_ROWS), n_classes)
        confusion = fixed + sum(bucket_counts(index, scale) for index, scale in enumerate(by_bucket))
        return confusion_macro_f1(confusion)

    shared, _ = coordinate_ascent(
        lambda scale: seen_macro_f1(np.tile(scale, len(SEEN_MIN_ROWS))), ones[0], SEEN_SCALE_GRID
    )
    scales, _ = coordinate_ascent(seen_macro_f1, np.tile(shared, len(SEEN_MIN_ROWS)), SEEN_SCALE_GRID)
    return SeenRule(prior, scales.reshape(len(SEEN_MIN_ROWS), n_classes), SEEN_MIN_ROWS)


@dataclasses.dataclass(frozen=True, eq=False)
class GroupedPredictions:
    """Unscaled attack_cat probabilities of every training row by models that never saw its vector, and
    which model made each.

    Attributes
    ----------
    raw : ndarray of shape (n_samples, n_classes), dtype=float64
    fold : ndarray of shape (n_samples,), dtype=intp
        The fold whose model predicted the row (fitted on the `fitted` rows outside that fold); -1 for
        the model fitted on every `fitted` row (an attack-only model's prediction of a Normal row).
    fitted : ndarray of shape (n_samples,), dtype=bool
        The rows the models were fitted on (an attack-only model: the attack rows).
    """

    raw: np.ndarray
    fold: np.ndarray
    fitted: np.ndarray


def grouped_out_of_fold(
    label: Candidate, attack_cat: Candidate, train: pd.DataFrame, seed: int
) -> tuple[OutOfFold, GroupedPredictions]:
    """The grouped held-out predictions training made for the threshold and the class scales, as one
    OutOfFold (no row is seen: its vector never was on the training side of its fold); and the class
    probabilities' provenance."""
    folds = grouped_folds(flow_groups(train), train[ATTACK_CAT].to_numpy(), HELD_OUT_FOLDS, seed)
    probability = label.held_out_attack_probability
    if probability is None:
        raise ValueError(f"{label.name}: no held-out predictions to cross-validate")
    predictions = held_out_class_probabilities(attack_cat, train, folds)
    nothing = np.zeros(len(train), dtype=np.int64)
    return OutOfFold(fold_of(folds, len(train)), probability, predictions.raw, nothing, nothing), predictions


def held_out_class_probabilities(
    candidate: Candidate, train: pd.DataFrame, folds: Sequence[tuple[np.ndarray, np.ndarray]]
) -> GroupedPredictions:
    """Unscaled attack_cat probabilities of every training row from a model that never saw its vector.
    An attack-only model with class scaling already has them for the attack rows (its scale tuning's
    grouped predictions), and never saw a Normal row at all; any other pipeline is cross-validated on
    `folds`."""
    estimator = candidate.pipeline[-1]
    inner = getattr(estimator, "estimator_", None)
    if isinstance(estimator, AttackOnlyClassifier) and isinstance(inner, ClassScaledClassifier):
        attacks = train[ATTACK_CAT].to_numpy() != estimator.normal
        raw = np.zeros((len(train), len(estimator.classes_)))
        raw[np.ix_(attacks, estimator.columns_)] = inner.held_out_probabilities_
        normal_matrix = candidate.pipeline[0].transform(train[~attacks])
        raw[np.ix_(~attacks, estimator.columns_)] = inner.estimator_.predict_proba(normal_matrix)
        fold = np.full(len(train), -1, dtype=np.intp)
        fold[attacks] = inner.held_out_fold_
        return GroupedPredictions(raw, fold, attacks)
    unscaled = fit_pipeline(
        candidate.family, ATTACK_CAT, candidate.pipeline[0].features, unscaled_params(candidate), train, 0
    )[0]
    result: np.ndarray = cross_val_predict(
        unscaled, train, train[ATTACK_CAT].to_numpy(), cv=list(folds), method="predict_proba"
    )
    return GroupedPredictions(np.nan_to_num(result), fold_of(folds, len(train)), np.ones(len(train), dtype=bool))


def unscaled_params(candidate: Candidate) -> dict[str, object]:
    return {**candidate.params, "class_scaling": False}


def vector_held_out(matrix: np.ndarray, predictions: GroupedPredictions) -> np.ndarray | None:
    """Each row's vector's held-out class probabilities (n_samples, n_classes), float32 values as
    float64 (what the seen table keeps), by `matrix` rows (the label model's, which the seen table
    keys on): a fitted row's prediction where the vector has one, since the model that predicted a
    Normal row of an attack-only model was fitted on every attack row, copies of the vector included;
    else the vector's own (a Normal-only vector, which that model never saw).

    None when some vector's rows were not held out together: its fitted rows fall in several folds, so
    the model that predicted one of them trained on another. The held-out folds group rows by the
    attack_cat model's matrix (or every feature), which can split a vector of a label model with
    other features or scaling; the seen rule then scales the model's probabilities instead."""
    _, vector = distinct_rows(matrix)
    source = np.empty(vector.max(initial=-1) + 1, dtype=np.intp)
    positions = np.arange(len(vector))
    source[vector] = positions
    fitted = positions[predictions.fitted]
    source[vector[fitted]] = fitted
    source_fold = predictions.fold[source[vector]]
    if (predictions.fitted & (predictions.fold != source_fold)).any():
        return None
    held_out: np.ndarray = predictions.raw[source[vector]].astype(np.float32).astype(np.float64)
    return held_out


def plain_out_of_fold(
    label: Candidate,
    cat: Candidate,
    train: pd.DataFrame,
    matrix: np.ndarray,
    rows: Rows,
    vector_probabilities: np.ndarray | None,
    seed: int,
) -> OutOfFold:
    """Held-out predictions on stratified random folds, with the seen counts each fold's training rows
    give its held-out rows (tables built from the fold's training rows only); `vector_probabilities`
    is each row's vector's held-out probabilities (`vector_held_out`), made by models that never saw
    the vector, so it holds for every fold (None: the seen rule scales the model's)."""
    folds = list(
        StratifiedKFold(HELD_OUT_FOLDS, shuffle=True, random_state=seed).split(matrix, train[ATTACK_CAT].to_numpy())
    )
    probability = np.empty(len(train))
    raw = np.empty((len(train), len(rows.classes)))
    vector_rows = np.zeros(len(train), dtype=np.int64)
    vector_attacks = np.zeros(len(train), dtype=np.int64)
    for fit_rows, held_out in folds:
        part, rest = train.iloc[fit_rows], train.iloc[held_out]
        label_pipeline = fit_pipeline(label.family, LABEL, label.pipeline[0].features, label.params, part, seed)[0]
        probability[held_out] = label_pipeline.predict_proba(rest)[:, list(label_pipeline.classes_).index(1)]
        cat_pipeline = fit_pipeline(cat.family, ATTACK_CAT, cat.pipeline[0].features, unscaled_params(cat), part, seed)[
            0
        ]
        raw[held_out] = align_columns(cat_pipeline.predict_proba(rest), cat_pipeline.classes_, rows.classes)
        table = SeenVectors.of(matrix[fit_rows], rows.is_attack[fit_rows])
        found = table.find(matrix[held_out])
        hit = found >= 0
        vector_rows[held_out[hit]] = table.rows[found[hit]]
        vector_attacks[held_out[hit]] = table.attacks[found[hit]]
    return OutOfFold(fold_of(folds, len(train)), probability, raw, vector_rows, vector_attacks, vector_probabilities)


def align_columns(probabilities: np.ndarray, columns: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Probabilities (n_samples, len(columns)) → (n_samples, len(classes)), zeros for a class a fold lacked."""
    aligned = np.zeros((len(probabilities), len(classes)))
    aligned[:, np.searchsorted(classes, np.asarray(columns).astype(str))] = probabilities
    return aligned


def fold_scores(rows: Rows, decided: np.ndarray, fold: np.ndarray, mask: np.ndarray) -> FoldScores:
    """Per-fold label accuracy and macro-F1 of the rows in `mask` (decided: class column per row)."""
    accuracy, f1 = [], []
    for index in np.unique(fold[mask]):
        part = mask & (fold == index)
        accuracy.append(float(np.mean((decided[part] != rows.normal) == rows.is_attack[part])))
        f1.append(macro_f1(rows.truth[part], decided[part], len(rows.classes)))
    return FoldScores(
        rows=int(mask.sum()),
        label_accuracy=tuple(accuracy),
        attack_cat_macro_f1=tuple(f1),
        label_accuracy_mean=float(np.mean(accuracy)),
        label_accuracy_std=float(np.std(accuracy)),
        attack_cat_macro_f1_mean=float(np.mean(f1)),
        attack_cat_macro_f1_std=float(np.std(f1)),
    )


def regime_scores(rows: Rows, decided: np.ndarray, fold: np.ndarray, mask: np.ndarray) -> RegimeScores:
    """Per-fold and per-class figures of the rows in `mask`; all zero when it holds none (data
    without a repeated vector has no seen rows)."""
    if not mask.any():
        return RegimeScores(FoldScores(0, (), (), 0.0, 0.0, 0.0, 0.0), {})
    per_class = class_metrics(rows.classes[rows.truth[mask]], rows.classes[decided[mask]]).per_class
    return RegimeScores(fold_scores(rows, decided, fold, mask), per_class)


def cross_fitted(rows: Rows, oof: OutOfFold, grouped: OutOfFold, with_seen_rule: bool) -> np.ndarray:
    """Each row's decided class, with every tuned number tuned on the other folds' rows."""
    decided = np.empty(len(rows.truth), dtype=np.intp)
    for index in np.unique(oof.fold):
        own, others = np.flatnonzero(oof.fold == index), np.flatnonzero(oof.fold != index)
        novel_scale = tune_novel_scale(rows, grouped, others)
        rule = tune_seen_rule(rows, oof, novel_scale, others) if with_seen_rule else None
        decided[own] = verdicts(rows, oof, novel_scale, rule, own)
    return decided


def nested_plain_decided(
    label: Candidate, attack_cat: Candidate, train: pd.DataFrame, held: HeldOut, seed: int
) -> np.ndarray:
    """Each row's decided class on plain folds, as `cross_fitted` gives it, but with the seen rule tuned
    on a plain 5-fold pass inside the other folds' rows (models refitted, seen counts from those rows
    alone), so that neither the label model's P(attack) nor the seen counts it is tuned on saw the
    fold. `cross_fitted` tunes on the other folds' plain predictions, made by models that trained on
    the fold's own copies of a vector; this says how much that flatters the seen rule (25 fits more).
    The vectors' held-out class probabilities are the same in both: each comes from grouped models
    that never saw any copy of the vector, though they did fit other vectors' rows of the fold."""
    rows, plain = held.rows, held.plain
    vector_probabilities = plain.vector_held_out
    decided = np.empty(len(rows.truth), dtype=np.intp)
    for index in np.unique(plain.fold):
        own, others = np.flatnonzero(plain.fold == index), np.flatnonzero(plain.fold != index)
        inner_rows = dataclasses.replace(rows, truth=rows.truth[others], is_attack=rows.is_attack[others])
        inner = plain_out_of_fold(
            label,
            attack_cat,
            train.iloc[others],
            held.matrix[others],
            inner_rows,
            None if vector_probabilities is None else vector_probabilities[others],
            seed,
        )
        novel_scale = tune_novel_scale(rows, held.grouped, others)
        rule = tune_seen_rule(inner_rows, inner, novel_scale, np.arange(len(others)))
        decided[own] = verdicts(rows, plain, novel_scale, rule, own)
    return decided


def model_novel_scale(attack_cat: Candidate, classes: np.ndarray) -> np.ndarray:
    """The deployed attack_cat model's class scales over `classes` (ones where it has none)."""
    scale = np.ones(len(classes))
    estimator = attack_cat.pipeline[-1]
    inner = getattr(estimator, "estimator_", None)
    if isinstance(estimator, AttackOnlyClassifier) and isinstance(inner, ClassScaledClassifier):
        scale[estimator.columns_] = inner.class_scale_
    elif isinstance(estimator, ClassScaledClassifier):
        scale = np.asarray(estimator.class_scale_, dtype=np.float64)
    return scale


def held_out_predictions(
    label: Candidate, attack_cat: Candidate, train: pd.DataFrame, threshold: float, seed: int
) -> HeldOut:
    """The training rows' held-out predictions by the pair's settings: the grouped ones training made,
    and a plain 5-fold pass."""
    classes = np.asarray(attack_cat.pipeline.classes_).astype(str).astype(object)
    truth = np.searchsorted(classes.astype(str), train[ATTACK_CAT].astype(str).to_numpy())
    rows = Rows(truth, train[LABEL].to_numpy() == 1, classes, list(classes).index(NORMAL), threshold)
    matrix = label.pipeline[0].transform(train)
    grouped, predictions = grouped_out_of_fold(label, attack_cat, train, seed)
    held_out = vector_held_out(matrix, predictions)
    if held_out is None:
        log.warning(
            "the held-out folds split some vectors of the label model's matrix: seen attacks are decided "
            "from the model's probabilities"
        )
    plain = plain_out_of_fold(label, attack_cat, train, matrix, rows, held_out, seed)
    return HeldOut(rows, matrix, grouped, plain)


def fit_regimes(
    label: Candidate, attack_cat: Candidate, train: pd.DataFrame, threshold: float, seed: int
) -> RegimeResult:
    """The seen regime of the deployed pair (its table from the training rows only) and the
    cross-validated figures of the decision with it."""
    held = held_out_predictions(label, attack_cat, train, threshold, seed)
    rows, grouped, plain = held.rows, held.grouped, held.plain
    everything = np.arange(len(rows.truth))
    rule = tune_seen_rule(rows, plain, model_novel_scale(attack_cat, rows.classes), everything)
    table = SeenVectors.of(held.matrix, rows.is_attack, plain.vector_held_out)
    seen = SeenRegime(table, rule.prior, rule.class_scale, rule.min_rows)
    grouped_decided = cross_fitted(rows, grouped, grouped, with_seen_rule=False)
    plain_decided = cross_fitted(rows, plain, grouped, with_seen_rule=True)
    plain_as_novel = cross_fitted(rows, plain, grouped, with_seen_rule=False)
    all_rows = np.ones(len(rows.truth), dtype=bool)
    cross_validation = CrossValidation(
        folds=HELD_OUT_FOLDS,
        grouped=regime_scores(rows, grouped_decided, grouped.fold, all_rows),
        plain=regime_scores(rows, plain_decided, plain.fold, all_rows),
        plain_seen=regime_scores(rows, plain_decided, plain.fold, plain.seen),
        plain_novel=regime_scores(rows, plain_decided, plain.fold, ~plain.seen),
        plain_without_seen_rule=regime_scores(rows, plain_as_novel, plain.fold, all_rows),
        plain_seen_without_seen_rule=regime_scores(rows, plain_as_novel, plain.fold, plain.seen),
        seen_share=float(plain.seen.mean()),
        method=METHOD,
    )
    return RegimeResult(seen, cross_validation, held, plain_decided)


def seen_record(seen: SeenRegime, classes: Sequence[str]) -> SeenRegimeRecord:
    by_bucket = [{str(c): float(s) for c, s in zip(classes, scale)} for scale in seen.bucket_scales]
    return SeenRegimeRecord(
        vectors=len(seen.vectors),
        bytes=seen.vectors.nbytes,
        sha256=seen.digest(),
        prior=seen.prior,
        class_scale=by_bucket[0],
        more_rows=tuple(BucketScale(min_rows=m, class_scale=s) for m, s in zip(seen.min_rows[1:], by_bucket[1:])),
        held_out=seen.vectors.held_out is not None,
    )

"""ClassScaledClassifier: per-class probability scales tuned for macro-F1 on out-of-sample predictions."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import cross_val_predict

from nids_model.folds import fold_of, grouped_folds, vector_groups

DEFAULT_GRID = (0.25, 0.35, 0.5, 0.7, 0.85, 1.0, 1.2, 1.4, 2.0, 2.8, 4.0)


class ClassScaledClassifier(ClassifierMixin, BaseEstimator):
    """Wrap a probabilistic classifier; multiply its class probabilities by `class_scale_`.

    Class weights decide how much rare classes pull on the fit; the argmax over probabilities then
    still trades their precision against recall badly for macro-F1 (UNSW-NB15's Analysis and Backdoor
    rows share feature vectors with DoS and Exploits). The scales are tuned by coordinate ascent on
    `cv`-fold cross-validated predictions of the training rows; never on the validation split. The
    folds keep identical feature vectors together (`nids_model.folds`): UNSW-NB15 repeats a third of
    its vectors, and a held-out row whose copy was fitted is scored almost in-sample, which tunes the
    scales to vectors the model has seen rather than to new traffic (for the same reason not a forest's
    out-of-bag estimates).
    """

    def __init__(
        self,
        estimator: Any,
        grid: Sequence[float] = DEFAULT_GRID,
        passes: int = 2,
        cv: int = 5,
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.grid = grid
        self.passes = passes
        self.cv = cv
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> ClassScaledClassifier:
        fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
        X, y = np.asarray(X), np.asarray(y)
        folds = grouped_folds(vector_groups(X), y, self.cv, self.random_state)
        with warnings.catch_warnings():
            # A class whose rows are all copies of a few vectors is absent from some folds' training
            # rows; its held-out probability there is 0, which is what a new vector would get.
            warnings.filterwarnings("ignore", "Number of classes in training fold", RuntimeWarning)
            held_out = cross_val_predict(
                clone(self.estimator), X, y, cv=folds, method="predict_proba", params=fit_params
            )
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", X.shape[1])
        # Training evidence, not model: training reuses it for its cross-validated figures and the seen
        # table (which needs each row's fold to know which rows the model that predicted it saw); not
        # pickled.
        self.held_out_probabilities_ = np.nan_to_num(held_out)
        self.held_out_fold_ = fold_of(folds, len(y))
        self.class_scale_, self.held_out_macro_f1_ = tune_class_scale(
            self.held_out_probabilities_, np.searchsorted(self.classes_, y), self.grid, self.passes
        )
        return self

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state.pop("held_out_probabilities_", None)
        state.pop("held_out_fold_", None)
        return state

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.rescale(self.estimator_.predict_proba(X))

    def rescale(self, probabilities: np.ndarray) -> np.ndarray:
        """The wrapped estimator's probabilities → this classifier's (scaled, renormalised)."""
        scaled = probabilities * self.class_scale_
        total = scaled.sum(axis=1, keepdims=True)
        rescaled: np.ndarray = np.divide(scaled, total, out=np.zeros_like(scaled), where=total > 0)
        return rescaled

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])


def tune_class_scale(
    probabilities: np.ndarray, truth: np.ndarray, grid: Sequence[float] = DEFAULT_GRID, passes: int = 2
) -> tuple[np.ndarray, float]:
    """(scales (n_classes,), the macro-F1 they reach): per-class factors on `probabilities`
    (n_samples, n_classes) that maximise the macro-F1 of their argmax against `truth` (n_samples,
    class codes), by coordinate ascent over `grid`."""
    n_classes = probabilities.shape[1]

    def score(scale: np.ndarray) -> float:
        return macro_f1(truth, (probabilities * scale).argmax(axis=1), n_classes)

    if np.isnan(probabilities).any():  # argmax takes the first NaN; `scaled_argmax_line` assumes none
        return coordinate_ascent(score, np.ones(n_classes), grid, passes)

    def along(scale: np.ndarray, index: int) -> Callable[[float], float]:
        decide = scaled_argmax_line(probabilities, scale, index)
        return lambda factor: macro_f1(truth, decide(factor), n_classes)

    return coordinate_ascent(score, np.ones(n_classes), grid, passes, along)


def scaled_argmax_line(probabilities: np.ndarray, scale: np.ndarray, index: int) -> Callable[[float], np.ndarray]:
    """`(probabilities * trial).argmax(axis=1)` as a function of `trial[index]`, the other entries of
    `trial` those of `scale`: bit for bit, ties to the lowest class as argmax breaks them, for
    probabilities (n_samples, n_classes) without NaN. Only whether class `index` beats the best of the
    others moves, so a trial costs one comparison per row instead of a product and an argmax over
    every class."""
    others = probabilities * scale
    others[:, index] = -np.inf
    best_other, runner_up = others.max(axis=1), others.argmax(axis=1)
    column, wins_ties = probabilities[:, index], index < runner_up

    def decide(factor: float) -> np.ndarray:
        candidate = column * factor
        beats = (candidate > best_other) | ((candidate == best_other) & wins_ties)
        decided: np.ndarray = np.where(beats, index, runner_up)
        return decided

    return decide


def coordinate_ascent(
    score: Callable[[np.ndarray], float],
    start: np.ndarray,
    grid: Sequence[float],
    passes: int = 2,
    along: Callable[[np.ndarray, int], Callable[[float], float]] | None = None,
) -> tuple[np.ndarray, float]:
    """The vector, from `start`, that `score` rates highest when each entry in turn takes the best value
    of `grid` (`passes` rounds); and its score. A change must gain more than 1e-6 to be taken.
    `along(vector, index)`, when given, returns what `score` gives for `vector` with entry `index` set
    to its argument, computed more cheaply than `score` can."""
    vector = np.asarray(start, dtype=np.float64).copy()
    best = score(vector)
    for _ in range(passes):
        for index in range(len(vector)):
            # Only entry `index` changes below, so a line through the vector of now stays valid.
            line = along(vector, index) if along is not None else _line(score, vector, index)
            for factor in grid:
                value = line(factor)
                if value > best + 1e-6:
                    best, vector = value, vector.copy()
                    vector[index] = factor
    return vector, best


def _line(score: Callable[[np.ndarray], float], vector: np.ndarray, index: int) -> Callable[[float], float]:
    def value(factor: float) -> float:
        trial = vector.copy()
        trial[index] = factor
        return score(trial)

    return value


def macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in `truth` (rows of class codes 0..n_classes-1 each); what
    f1_score(average="macro", labels=present) gives, from one bincount instead of its checks and
    sorts, since the tuning evaluates it a few hundred times."""
    return confusion_macro_f1(pair_counts(truth, predicted, n_classes, n_classes))


def confusion_macro_f1(confusion: np.ndarray) -> float:
    """`macro_f1` of a confusion matrix (n_classes, n_classes), truth along the rows."""
    f1 = class_f1(np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0))
    present = confusion.sum(axis=1) > 0
    return float(f1[present].mean())


def pair_counts(first: np.ndarray, second: np.ndarray, n_first: int, n_second: int) -> np.ndarray:
    """How many rows hold each pair of codes: (n_first, n_second) float64 from `first` and `second`
    (n_samples,) intp codes in 0..n_first-1 and 0..n_second-1; a confusion matrix when `first` is the
    truth and `second` the decision."""
    counts = np.bincount(first * n_second + second, minlength=n_first * n_second)
    return counts.reshape(n_first, n_second).astype(np.float64)


def class_f1(true_positives: np.ndarray, truth_totals: np.ndarray, decided_totals: np.ndarray) -> np.ndarray:
    """Per-class F1 (n_classes,) float64 from each class's true positives, rows of that class and rows
    decided as it (all (n_classes,)); 0 for a class with neither."""
    return ratio_or_zero(2 * true_positives, truth_totals + decided_totals)


def ratio_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator (n_classes,) float64, 0 where the denominator is 0 (scikit-learn's
    zero_division=0)."""
    ratio: np.ndarray = np.divide(numerator, denominator, out=np.zeros(len(denominator)), where=denominator > 0)
    return ratio

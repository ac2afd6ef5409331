"""ClassScaledClassifier: per-class probability scales tuned for macro-F1 on out-of-sample predictions."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import cross_val_predict

from nids_model.folds import grouped_folds, vector_groups

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
        self.class_scale_ = self._tune(np.nan_to_num(held_out), np.asarray(y))
        return self

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

    def _tune(self, probabilities: np.ndarray, y: np.ndarray) -> np.ndarray:
        truth = np.searchsorted(self.classes_, y)
        scale = np.ones(len(self.classes_))

        def score(candidate: np.ndarray) -> float:
            return macro_f1(truth, (probabilities * candidate).argmax(axis=1), len(self.classes_))

        best = score(scale)
        for _ in range(self.passes):
            for index in range(len(scale)):
                for factor in self.grid:
                    trial = scale.copy()
                    trial[index] = factor
                    value = score(trial)
                    if value > best + 1e-6:
                        best, scale = value, trial
        self.held_out_macro_f1_ = best
        return scale


def macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in `truth` (rows of class codes 0..n_classes-1 each); what
    f1_score(average="macro", labels=present) gives, from one bincount instead of its checks and
    sorts, since the tuning evaluates it a few hundred times."""
    confusion = np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    true_positive = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(n_classes), where=denominator > 0)
    present = confusion.sum(axis=1) > 0
    return float(f1[present].mean())

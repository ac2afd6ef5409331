"""AttackOnlyClassifier: an attack_cat classifier fitted on attack flows only."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from nids_common.schema import NORMAL


class AttackOnlyClassifier(ClassifierMixin, BaseEstimator):
    """Fit the wrapped classifier on the rows whose class is not `normal`; predict with a `normal`
    column of zeros, so `classes_` stays the full set.

    The detector asks the attack_cat model only about flows the label model already called attacks,
    and takes the most probable attack class. Normal rows in its training (about half of them) only
    teach it a boundary it is never asked about, and cost fitting time.
    """

    def __init__(self, estimator: Any, normal: str = NORMAL) -> None:
        self.estimator = estimator
        self.normal = normal

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> AttackOnlyClassifier:
        y = np.asarray(y)
        attacks = y != self.normal
        if not attacks.any():
            raise ValueError("attack_cat: no attack rows to fit on")
        fit_params = {} if sample_weight is None else {"sample_weight": np.asarray(sample_weight)[attacks]}
        self.estimator_ = clone(self.estimator).fit(X[attacks], y[attacks], **fit_params)
        self.classes_ = np.unique(y)
        self.n_features_in_ = X.shape[1]
        # Column of each of the wrapped estimator's classes in `classes_`.
        self.columns_ = np.searchsorted(self.classes_, self.estimator_.classes_)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.expand(self.estimator_.predict_proba(X))

    def expand(self, probabilities: np.ndarray) -> np.ndarray:
        """rows × wrapped classes → rows × `classes_`, zeros for `normal`."""
        full = np.zeros((probabilities.shape[0], len(self.classes_)), dtype=probabilities.dtype)
        full[:, self.columns_] = probabilities
        return full

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])

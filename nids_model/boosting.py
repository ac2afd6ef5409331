"""Gradient boosting whose feature bins ignore sample weights."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier


class UnweightedBinsBoostingClassifier(HistGradientBoostingClassifier):
    """HistGradientBoostingClassifier that places its bin edges at the rows' plain quantiles; the
    sample weights still weigh every row's gradient, so the fitted model honours them as before.

    Since scikit-learn 1.6 the edges are weighted quantiles, computed one percentile at a time with
    a sort of the column each: with class weights that is 2 s of a 4 s fit on 25,000 attack flows.
    The edges only decide which thresholds a split may use; the class weights act in the loss.
    """

    def _bin_data(self, X: np.ndarray, sample_weight: np.ndarray | None, is_training_data: bool) -> Any:
        return super()._bin_data(X, None, is_training_data)

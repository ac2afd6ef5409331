"""FlowPreprocessor: the one transformer between a table of flows and a model's float matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from nids_common.schema import CATEGORICAL_FEATURES, FEATURES

# A DataFrame (offline) or the detector's decoded columns: both index a column by name.
ColumnTable: TypeAlias = "pd.DataFrame | Mapping[str, np.ndarray]"


class FlowPreprocessor(TransformerMixin, BaseEstimator):
    """Select `features`, encode categoricals against the training vocabulary, impute, optionally scale.

    Takes a DataFrame or a mapping of column arrays (what the detector decodes a batch into), so the
    stream and offline scoring run the very same code. A category unseen in training (a new proto or
    service) maps to one shared 'other' code instead of failing. Missing numbers take the training
    median. With `scale` (for distance-based models) heavy-tailed counts are log1p'd and standardised.
    """

    def __init__(
        self, features: Sequence[str] = FEATURES, categorical: Sequence[str] = CATEGORICAL_FEATURES, scale: bool = False
    ) -> None:
        self.features = features
        self.categorical = categorical
        self.scale = scale

    def fit(self, X: ColumnTable, y: object = None) -> FlowPreprocessor:
        self.feature_names_in_ = np.asarray(list(self.features), dtype=object)
        self.n_features_in_ = len(self.features)
        categorical = set(self.categorical)
        self.vocabularies_ = {
            name: tuple(sorted(pd.Series(np.asarray(X[name], dtype=object)).dropna().astype(str).unique()))
            for name in self.features
            if name in categorical
        }
        self.medians_ = {}
        for name in self.features:
            if name not in categorical:
                column = np.asarray(X[name], dtype=np.float64)
                finite = column[np.isfinite(column)]
                self.medians_[name] = float(np.median(finite)) if finite.size else 0.0
        if self.scale:
            matrix = self._matrix(X)
            self.mean_ = matrix.mean(axis=0)
            self.scale_ = np.where(matrix.std(axis=0) > 0, matrix.std(axis=0), 1.0)
        return self

    def transform(self, X: ColumnTable) -> np.ndarray:
        """The model matrix of a table of flows.

        Parameters
        ----------
        X : DataFrame or mapping of column name to ndarray of shape (n_samples,)
            Needs every name of `features`; other columns are ignored.

        Returns
        -------
        matrix : ndarray of shape (n_samples, len(features)), dtype=float32
            Columns in the order of `features`. A categorical column holds the index of its value in
            `vocabularies_[name]`; a value unseen in training, or missing, gets len(vocabulary). A
            missing or non-finite number gets the training median. With `scale`, numbers are
            sign(x)·log1p(|x|) and then every column is standardised.
        """
        matrix = self._matrix(X)
        if self.scale:
            matrix = ((matrix - self.mean_) / self.scale_).astype(np.float32)
        return matrix

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(list(self.features), dtype=object)

    def _matrix(self, X: ColumnTable) -> np.ndarray:
        first = X[self.features[0]]
        rows = len(first)
        matrix = np.empty((rows, len(self.features)), dtype=np.float32)
        for index, name in enumerate(self.features):
            vocabulary = self.vocabularies_.get(name)
            if vocabulary is not None:
                matrix[:, index] = self._encode(np.asarray(X[name], dtype=object), vocabulary)
                continue
            column = np.asarray(X[name], dtype=np.float64)
            bad = ~np.isfinite(column)
            if bad.any():
                column = np.where(bad, self.medians_[name], column)
            if self.scale:
                column = np.sign(column) * np.log1p(np.abs(column))
            matrix[:, index] = column
        return matrix

    @staticmethod
    def _encode(values: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
        """Codes of `values` (n_samples,), dtype=object, as float32 (n_samples,): an index into
        `vocabulary`, or len(vocabulary) for a value unseen or missing."""
        index = pd.Index(vocabulary)
        codes = index.get_indexer(values)
        misses = codes < 0
        if misses.any():
            # The training cleaner strips and lower-cases categories ('INT' → 'int'); a stream producer
            # may not, so a miss gets the same normalisation before it counts as unseen.
            normalised = pd.Series(values[misses], dtype=object).astype(str).str.strip().str.lower()
            codes[misses] = index.get_indexer(normalised)
        encoded: np.ndarray = codes.astype(np.float32)
        encoded[encoded < 0] = len(vocabulary)  # the shared 'other' code for unseen or missing values
        return encoded

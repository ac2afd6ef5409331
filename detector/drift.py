"""Drift and health: does the traffic still look like what the model was trained on?

Per batch, on the matrix the batch was scored with (rows × features, float32, after preprocessing),
against the model's reference profile (nids_model.profile):
- nids_feature_out_of_range_total{feature}: values outside the training range;
- nids_unseen_category_total{feature}: categories the training data never had;
- nids_feature_drift_psi{feature}: population stability index of the last WINDOW_ROWS rows against
  the training bins (below 0.1: stable; above 0.25: the model sees other traffic than it learned);
- nids_predicted_class_share{attack_cat} over the same window, beside nids_reference_class_share.
Bins and classes are counted on at most SAMPLE_ROWS evenly strided rows of a batch, and the detector
runs all of it on its scorer thread after scoring: the loop thread, the busier core, pays nothing.
A batch that is rewound and scored again is counted again: these are statistics, not a ledger.
"""

from __future__ import annotations

import collections

import numpy as np

from detector.metrics import DetectorMetrics
from nids_model.manifest import ReferenceProfile

WINDOW_ROWS = 100_000
SAMPLE_ROWS = 2_048
PSI_FLOOR = 1e-4  # an empty bin on either side would make the index infinite


class DriftMonitor:
    def __init__(self, profile: ReferenceProfile, metrics: DetectorMetrics) -> None:
        self.metrics = metrics
        numeric = profile.numeric
        self.names = list(numeric)
        self.columns = np.array([numeric[name].column for name in self.names], dtype=np.intp)
        width = 1 + max([*self.columns.tolist(), *(spec.column for spec in profile.categorical.values())])
        # Bounds for every column of the matrix (categorical ones unbounded): one comparison of the
        # whole matrix, without copying its numeric columns out first.
        self.low = np.full(width, -np.inf, dtype=np.float32)
        self.high = np.full(width, np.inf, dtype=np.float32)
        self.low[self.columns] = [numeric[name].min for name in self.names]
        self.feature_of = dict(zip(self.columns.tolist(), self.names, strict=True))
        self.high[self.columns] = [numeric[name].max for name in self.names]
        self.edges = [np.asarray(numeric[name].edges, dtype=np.float32) for name in self.names]
        self.reference = [np.maximum(np.asarray(numeric[name].shares), PSI_FLOOR) for name in self.names]
        self.categories = [(name, spec.column, spec.unseen_code) for name, spec in profile.categorical.items()]
        # (flows, sampled rows, bin counts, class counts) per batch; the window spans WINDOW_ROWS flows.
        self._window: collections.deque[tuple[int, int, list[np.ndarray], collections.Counter[str]]] = (
            collections.deque()
        )
        self._flows = self._rows = 0
        self._counts = [np.zeros(len(edges) + 1, dtype=np.int64) for edges in self.edges]
        self._classes: collections.Counter[str] = collections.Counter()
        metrics.set_reference_classes(profile.predicted_class_shares)

    def observe(self, matrix: np.ndarray, predicted: np.ndarray) -> None:
        """One scored batch: `matrix` rows × features (float32), `predicted` attack_cat per row."""
        # Two reductions find the columns with any value out of range (usually none); only those are
        # compared value by value.
        suspect = np.flatnonzero((matrix.min(axis=0) < self.low) | (matrix.max(axis=0) > self.high))
        for column in suspect.tolist():
            values = matrix[:, column]
            count = int(np.count_nonzero((values < self.low[column]) | (values > self.high[column])))
            self.metrics.out_of_range.labels(feature=self.feature_of[column]).inc(count)
        for name, column, unseen_code in self.categories:
            count = int(np.count_nonzero(matrix[:, column] == unseen_code))
            if count:
                self.metrics.unseen_category.labels(feature=name).inc(count)
        stride = max(1, len(matrix) // SAMPLE_ROWS)
        sample = matrix[::stride, self.columns]
        counts = [
            np.bincount(np.searchsorted(edges, sample[:, index], side="right"), minlength=len(edges) + 1)
            for index, edges in enumerate(self.edges)
        ]
        classes = collections.Counter(predicted[::stride].tolist())
        self._add(len(matrix), len(sample), counts, classes)
        self._publish()

    def _add(self, flows: int, rows: int, counts: list[np.ndarray], classes: collections.Counter[str]) -> None:
        self._window.append((flows, rows, counts, classes))
        self._flows += flows
        self._rows += rows
        for total, added in zip(self._counts, counts, strict=True):
            total += added
        self._classes.update(classes)
        while self._flows > WINDOW_ROWS and len(self._window) > 1:
            old_flows, old_rows, old_counts, old_classes = self._window.popleft()
            self._flows -= old_flows
            self._rows -= old_rows
            for total, removed in zip(self._counts, old_counts, strict=True):
                total -= removed
            self._classes.subtract(old_classes)

    def _publish(self) -> None:
        for name, counts, reference in zip(self.names, self._counts, self.reference, strict=True):
            observed = np.maximum(counts / max(self._rows, 1), PSI_FLOOR)
            psi = float(np.sum((observed - reference) * np.log(observed / reference)))
            self.metrics.drift_psi.labels(feature=name).set(psi)
        for name, count in self._classes.items():
            self.metrics.predicted_share.labels(attack_cat=name).set(count / max(self._rows, 1))

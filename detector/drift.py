"""Drift and health: does the traffic still look like what the model was trained on?

Per batch, on the matrix the batch was scored with (rows × features, float32, after preprocessing),
against the model's reference profile (nids_model.profile):
- nids_feature_out_of_range_total{feature}: values outside the training range;
- nids_unseen_category_total{feature}: categories the training data never had;
- nids_feature_drift_psi{feature}: population stability index of the last WINDOW_ROWS rows against
  the training bins (below 0.1: stable; above 0.25: the model sees other traffic than it learned);
- nids_predicted_class_share{attack_cat} over the same window, beside nids_reference_class_share.
Bins and classes are counted on at most SAMPLE_ROWS evenly strided rows of a batch, every column in
one GIL-free call, and the gauges are set at most every PUBLISH_EVERY_S: the detector runs all of it
on its scorer thread after scoring, and whatever holds the GIL there is time the loop thread waits.
A batch that is rewound and scored again is counted again: these are statistics, not a ledger.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable

import numpy as np

from detector.metrics import DetectorMetrics
from nids_model.compiled import gil_free_kernel
from nids_model.manifest import ReferenceProfile

WINDOW_ROWS = 100_000
SAMPLE_ROWS = 2_048
PSI_FLOOR = 1e-4  # an empty bin on either side would make the index infinite
# Prometheus scrapes every few seconds: setting every gauge for every batch (ten a second) only
# holds the GIL.
PUBLISH_EVERY_S = 1.0


class DriftMonitor:
    def __init__(
        self,
        profile: ReferenceProfile,
        metrics: DetectorMetrics,
        publish_every_s: float = PUBLISH_EVERY_S,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics, self.publish_every_s, self.now = metrics, publish_every_s, now
        self._published_at = -np.inf
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
        # Every column's edges end to end, and where each column's start: one kernel call bins them all.
        self._flat_edges = np.concatenate([np.empty(0, np.float32), *self.edges]).astype(np.float32)
        self._edge_starts = np.cumsum([0, *(len(edges) for edges in self.edges)]).astype(np.intp)
        # Column i's len(edges_i) + 1 bins in the kernel's output: from edge_starts[i] + i.
        self._bins = [
            slice(start + index, stop + index + 1)
            for index, (start, stop) in enumerate(itertools.pairwise(self._edge_starts.tolist()))
        ]
        # Compiled (or loaded from numba's cache) now, not on the first live batch.
        _bin_counts(
            np.zeros((1, len(self.edges)), np.float32),
            self._flat_edges,
            self._edge_starts,
            np.zeros(len(self._flat_edges) + len(self.edges), np.int64),
        )
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
        sample = np.ascontiguousarray(matrix[::stride, self.columns])
        flat = np.zeros(len(self._flat_edges) + len(self.edges), dtype=np.int64)
        _bin_counts(sample, self._flat_edges, self._edge_starts, flat)
        counts = [flat[bins] for bins in self._bins]
        classes = collections.Counter(predicted[::stride].tolist())
        self._add(len(matrix), len(sample), counts, classes)
        if self.now() - self._published_at >= self.publish_every_s:
            self._published_at = self.now()
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


@gil_free_kernel
def _bin_counts(
    sample: np.ndarray, flat_edges: np.ndarray, edge_starts: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Count each column's values per bin, as np.searchsorted(edges, values, side="right") bins them.

    Parameters
    ----------
    sample : ndarray of shape (n_samples, n_columns), dtype=float32
    flat_edges : ndarray of shape (n_edges,), dtype=float32
        Each column's ascending inner edges, end to end.
    edge_starts : ndarray of shape (n_columns + 1,), dtype=intp
        Where each column's edges start in `flat_edges` (and where the last ends).
    out : ndarray of shape (n_edges + n_columns,), dtype=int64
        Column i's bins at edge_starts[i] + i … edge_starts[i + 1] + i; counts are added.
    """
    for column in range(sample.shape[1]):
        start, stop = edge_starts[column], edge_starts[column + 1]
        edges = flat_edges[start:stop]
        base = start + column
        for row in range(sample.shape[0]):
            out[base + np.searchsorted(edges, sample[row, column], side="right")] += 1

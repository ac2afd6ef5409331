"""Compiled scoring: a fitted HistGradientBoosting model's or RandomForest's trees walked in one
native, GIL-free call.

scikit-learn predicts an ensemble one tree at a time from Python (a call, an allocation and a pass
over the batch per tree: hundreds of them for the deployed pair), taking the GIL back between trees.
Here all trees are flattened into a few arrays and walked in one numba-compiled call that never
holds the GIL, so another thread decodes and produces meanwhile.

The results are bit-identical to `predict_proba`: a boosted class score starts at the same baseline
and adds the same leaf values in the same order, and the link function is the model's own; a forest
adds each tree's leaf class fractions in the order of its trees and divides by their count, as
scikit-learn does with one job.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numba
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from nids_model.attack_only import AttackOnlyClassifier
from nids_model.reweighting import ClassScaledClassifier

ProbabilityFunction = Callable[[np.ndarray], np.ndarray]


def _compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """nopython, GIL-free, cached on disk when a cache directory is writable (next to this file,
    NUMBA_CACHE_DIR or the user's cache); otherwise compiled at each start (~4 s)."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


# Below this many rows per thread, handing work to a second thread costs more than it saves.
_MIN_ROWS_PER_THREAD = 2_000


@numba.njit(nogil=True, inline="always")
def _leaf(
    matrix: np.ndarray,
    row: int,
    node: int,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    missing_left: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """The leaf `matrix[row]` reaches from `node`, the tree's root (inlined into each kernel).
    Branchy on purpose: a predicted branch lets the CPU run ahead into the next row; a select chains
    every level's loads."""
    while True:
        f = feature[node]
        if f < 0:
            return node
        value = matrix[row, f]
        if value <= threshold[node]:
            node = left[node]
        elif np.isnan(value):  # the side the tree learned for missing values
            node = left[node] if missing_left[node] else right[node]
        else:
            node = right[node]


@_compiled
def _raw_scores(
    matrix: np.ndarray,
    tree_class: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    missing_left: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # Tree by tree, as sklearn does: one tree's nodes stay in L1 while the rows stream past, and
    # each class's sum takes its leaf values in sklearn's order.
    for tree in range(roots.shape[0]):
        k = tree_class[tree]
        root = roots[tree]
        for row in range(matrix.shape[0]):
            node = _leaf(matrix, row, root, feature, threshold, left, right, missing_left)
            out[row, k] += threshold[node]


@_compiled
def _forest_sums(
    matrix: np.ndarray,
    roots: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    missing_left: np.ndarray,
    leaf_values: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # matrix: rows × features (float32); leaf_values: nodes × classes (float64); out: rows × classes.
    for tree in range(roots.shape[0]):
        root = roots[tree]
        for row in range(matrix.shape[0]):
            node = _leaf(matrix, row, root, feature, threshold, left, right, missing_left)
            for k in range(out.shape[1]):
                out[row, k] += leaf_values[node, k]


class _RowSplitter:
    """Runs a walk over a batch on up to `threads` threads, each on its own rows."""

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="nids-score") if self.threads > 1 else None

    def run(self, walk: Callable[[np.ndarray, np.ndarray], None], matrix: np.ndarray, out: np.ndarray) -> None:
        parts = min(self.threads, matrix.shape[0] // _MIN_ROWS_PER_THREAD)
        if self._pool is None or parts < 2:
            walk(matrix, out)
            return
        bounds = np.linspace(0, matrix.shape[0], parts + 1).astype(int)
        slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        for done in [self._pool.submit(walk, matrix[s], out[s]) for s in slices]:
            done.result()


class CompiledForest:
    """The trees of a fitted RandomForestClassifier as flat arrays; `predict_proba` as the forest's."""

    def __init__(self, model: RandomForestClassifier, threads: int = 1) -> None:
        if getattr(model, "n_outputs_", 1) != 1:
            raise NotCompilable("multi-output forests are not compiled")
        features, thresholds, lefts, rights, missing, values, roots = [], [], [], [], [], [], []
        offset = 0
        for estimator in model.estimators_:
            tree = estimator.tree_
            leaf = tree.children_left < 0
            features.append(np.where(leaf, -1, tree.feature).astype(np.intp))
            thresholds.append(tree.threshold.astype(np.float64))
            lefts.append(np.where(leaf, -1, tree.children_left + offset).astype(np.intp))
            rights.append(np.where(leaf, -1, tree.children_right + offset).astype(np.intp))
            missing.append(np.asarray(getattr(tree, "missing_go_to_left", np.zeros(tree.node_count)), dtype=np.bool_))
            values.append(np.asarray(tree.value[:, 0, :], dtype=np.float64))
            roots.append(offset)
            offset += tree.node_count
        self.n_features = int(model.n_features_in_)
        self.n_trees = len(model.estimators_)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.feature = np.concatenate(features)
        self.threshold = np.concatenate(thresholds)
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.missing_left = np.concatenate(missing)
        self.leaf_values = np.ascontiguousarray(np.concatenate(values))
        self._rows = _RowSplitter(threads)
        probe = np.zeros((2, self.n_features), dtype=np.float32)
        self.predict_proba(probe)

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} features, got shape {matrix.shape}")
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        out = np.zeros((matrix.shape[0], self.leaf_values.shape[1]), dtype=np.float64)
        self._rows.run(self._walk, matrix, out)
        out /= self.n_trees
        return out

    def _walk(self, matrix: np.ndarray, out: np.ndarray) -> None:
        _forest_sums(
            matrix,
            self.roots,
            self.feature,
            self.threshold,
            self.left,
            self.right,
            self.missing_left,
            self.leaf_values,
            out,
        )


class CompiledBoosting:
    """The trees of a fitted HistGradientBoostingClassifier as flat arrays; `predict_proba` as the model's."""

    def __init__(self, model: HistGradientBoostingClassifier, threads: int = 1) -> None:
        features, thresholds, lefts, rights, missing, roots, classes = [], [], [], [], [], [], []
        offset = 0
        for predictors_of_iteration in model._predictors:
            for k, predictor in enumerate(predictors_of_iteration):
                nodes = predictor.nodes
                if nodes["is_categorical"].any():
                    raise NotCompilable("native categorical splits are not compiled")
                leaf = nodes["is_leaf"].astype(bool)
                features.append(np.where(leaf, -1, nodes["feature_idx"]).astype(np.intp))
                # A leaf's value rides in the threshold slot: one array fewer to touch per tree.
                thresholds.append(np.where(leaf, nodes["value"], nodes["num_threshold"]).astype(np.float64))
                lefts.append((nodes["left"] + offset).astype(np.intp))
                rights.append((nodes["right"] + offset).astype(np.intp))
                missing.append(nodes["missing_go_to_left"].astype(np.bool_))
                roots.append(offset)
                classes.append(k)
                offset += len(nodes)
        self.n_features = int(model.n_features_in_)
        self.baseline = np.ascontiguousarray(model._baseline_prediction.ravel(), dtype=np.float64)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.tree_class = np.asarray(classes, dtype=np.intp)
        self.feature = np.concatenate(features)
        self.threshold = np.concatenate(thresholds)
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.missing_left = np.concatenate(missing)
        self.link = model._loss.predict_proba
        self._rows = _RowSplitter(threads)
        # Compile (or load from numba's cache) both array layouts the walk sees now, not on a live batch.
        probe = np.zeros((2, self.n_features), dtype=np.float32)
        self._walk(probe, np.zeros((2, len(self.baseline)), order="F"))
        self._walk(probe[:1], np.zeros((2, len(self.baseline)), order="F")[:1])

    def raw_predict(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} features, got shape {matrix.shape}")
        matrix = np.ascontiguousarray(matrix)
        # Column-major like sklearn's: the link's row sums then add in the same order, bit for bit.
        out = np.empty((matrix.shape[0], self.baseline.shape[0]), dtype=np.float64, order="F")
        out[:] = self.baseline
        self._rows.run(self._walk, matrix, out)
        return out

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.link(self.raw_predict(matrix)))

    def _walk(self, matrix: np.ndarray, out: np.ndarray) -> None:
        _raw_scores(
            matrix,
            self.tree_class,
            self.roots,
            self.feature,
            self.threshold,
            self.left,
            self.right,
            self.missing_left,
            out,
        )


class NotCompilable(ValueError):
    """The estimator has a part the compiled walk does not reproduce; sklearn's own predict is used."""


def probability_function(estimator: Any, threads: int = 1) -> ProbabilityFunction:
    """The fastest exact `predict_proba` for a pipeline's final estimator: compiled for gradient
    boosting and random forests (also inside ClassScaledClassifier and AttackOnlyClassifier), the
    estimator's own method otherwise."""
    if isinstance(estimator, ClassScaledClassifier):
        scaled = probability_function(estimator.estimator_, threads)
        return lambda matrix: estimator.rescale(scaled(matrix))
    if isinstance(estimator, AttackOnlyClassifier):
        attacks = probability_function(estimator.estimator_, threads)
        return lambda matrix: estimator.expand(attacks(matrix))
    if isinstance(estimator, HistGradientBoostingClassifier):
        try:
            return CompiledBoosting(estimator, threads).predict_proba
        except NotCompilable:
            pass
    if isinstance(estimator, RandomForestClassifier):
        try:
            return CompiledForest(estimator, threads).predict_proba
        except NotCompilable:
            pass
    return cast(ProbabilityFunction, estimator.predict_proba)


def distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse): the first row of each distinct row of `matrix`, and for every row the index
    of its distinct row in `first`, so `matrix[first][inverse]` equals `matrix` byte for byte."""
    rows = np.ascontiguousarray(matrix)
    if rows.shape[0] == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    words = rows.view(np.uint8).reshape(rows.shape[0], -1)
    if words.shape[1] % 4 == 0:
        words = words.view(np.uint32)
    first, inverse = _group_rows(words, _row_hashes(words))
    return first, inverse


@_compiled
def _row_hashes(words: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    hashes = np.empty(words.shape[0], dtype=np.uint64)
    for row in range(words.shape[0]):
        h = np.uint64(14695981039346656037)  # FNV-1a over the row's words; equal hashes are compared
        for j in range(words.shape[1]):
            h = (h ^ np.uint64(words[row, j])) * np.uint64(1099511628211)
        hashes[row] = h
    return hashes


@_compiled
def _group_rows(words: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    n, width = words.shape
    order = np.argsort(hashes, kind="mergesort")  # stable: a group's first row is its earliest
    inverse = np.empty(n, dtype=np.intp)
    first = np.empty(n, dtype=np.intp)
    count = 0
    start = 0
    while start < n:
        stop = start
        while stop < n and hashes[order[stop]] == hashes[order[start]]:
            stop += 1
        group_first = count
        for position in range(start, stop):
            row = order[position]
            match = -1
            for candidate in range(group_first, count):
                other = first[candidate]
                same = True
                for j in range(width):
                    if words[row, j] != words[other, j]:
                        same = False
                        break
                if same:
                    match = candidate
                    break
            if match < 0:
                first[count] = row
                match = count
                count += 1
            inverse[row] = match
        start = stop
    return first[:count].copy(), inverse


def precompile() -> None:
    """Fill numba's on-disk cache for every kernel and array layout scoring uses (an image build runs
    this so that containers start without the ~4 s compile)."""
    rows = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    # Two classes give a one-column output (numba types it C-contiguous), three a Fortran-ordered one.
    for labels in ((rows[:, 0] > 0).astype(int), np.digitize(rows[:, 0], [-0.5, 0.5])):
        CompiledBoosting(HistGradientBoostingClassifier(max_iter=2).fit(rows, labels))
        CompiledForest(RandomForestClassifier(n_estimators=2).fit(rows, labels))
    distinct_rows(rows)

"""Duplicate-aware splits: rows with identical feature vectors always land on the same side.

A third of UNSW-NB15's rows repeat an earlier feature vector, and some identical vectors carry
different classes. A plain random split puts copies of one vector on both sides, so a model is
scored (and tuned) partly on vectors it was trained on. Here every split assigns whole groups of
identical vectors, stratified by each group's most common class and balanced by rows, so that a
hold-out of 20% holds about 20% of every class's rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nids_model.preprocess import ColumnTable, FlowPreprocessor


def vector_groups(matrix: np.ndarray) -> np.ndarray:
    """Group id per row (rows × features matrix → rows, intp): equal ids exactly for byte-equal rows."""
    rows = np.ascontiguousarray(matrix)
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, inverse = np.unique(as_bytes, return_inverse=True)
    result: np.ndarray = inverse.ravel()
    return result


def flow_groups(flows: ColumnTable) -> np.ndarray:
    """Group id per flow: equal for flows whose feature vectors the model cannot tell apart (every
    feature, categories encoded and missing values imputed as the preprocessing does)."""
    return vector_groups(FlowPreprocessor().fit(flows).transform(flows))


def grouped_positions(groups: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """A position in [0, 1) per row, equal within a group (groups: rows, any dtype; y: rows).

    Within each class (a group's most common one) the groups are shuffled and laid end to end by
    their row counts; a group's position is its midpoint on that line. Cutting the line at `f`
    therefore takes about a fraction `f` of the class's rows, whole groups only.
    """
    _, group_of_row = np.unique(groups, return_inverse=True)
    _, class_of_row = np.unique(y, return_inverse=True)
    n_groups = int(group_of_row.max()) + 1 if len(group_of_row) else 0
    counts = np.zeros((n_groups, int(class_of_row.max(initial=0)) + 1), dtype=np.int64)
    np.add.at(counts, (group_of_row, class_of_row), 1)
    sizes = counts.sum(axis=1)
    majority = counts.argmax(axis=1)
    rng = np.random.default_rng(seed)
    position = np.empty(n_groups, dtype=np.float64)
    for cls in range(counts.shape[1]):
        members = rng.permutation(np.flatnonzero(majority == cls))
        if members.size == 0:
            continue
        ends = np.cumsum(sizes[members])
        position[members] = (ends - sizes[members] / 2) / ends[-1]
    result: np.ndarray = position[group_of_row]
    return result


def grouped_holdout(groups: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, hold-out rows) as sorted indices; about `fraction` of each class held out."""
    held_out = grouped_positions(groups, y, seed) < fraction
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def fold_of(folds: Sequence[tuple[np.ndarray, np.ndarray]], n_rows: int) -> np.ndarray:
    """The fold (intp, n_rows) in which each row is held out, from (train rows, test rows) pairs."""
    fold = np.empty(n_rows, dtype=np.intp)
    for index, (_, held_out) in enumerate(folds):
        fold[held_out] = index
    return fold


def grouped_folds(groups: np.ndarray, y: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n_folds` (train rows, test rows) pairs, as sklearn's `cv=` takes them; each row tested once."""
    fold = np.minimum((grouped_positions(groups, y, seed) * n_folds).astype(np.intp), n_folds - 1)
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_folds)]

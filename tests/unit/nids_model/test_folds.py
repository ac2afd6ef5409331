"""Duplicate-aware splits: no feature vector on both sides, classes kept in proportion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nids_common.schema import ATTACK_CAT, FEATURES
from nids_model.folds import flow_groups, grouped_folds, grouped_holdout, vector_groups
from nids_model.reweighting import ClassScaledClassifier
from tests.fixtures import FAST_TRAINING, flows_with_identity
from training.train import split


def _with_copies(rows: int, seed: int) -> pd.DataFrame:
    """Synthetic flows where a third of the rows repeat an earlier one, some under another class."""
    frame = flows_with_identity(rows, seed=seed)
    rng = np.random.default_rng(seed)
    copies = frame.iloc[rng.integers(0, rows, rows // 3)].copy()
    relabel = rng.random(len(copies)) < 0.3
    copies.loc[relabel, ATTACK_CAT] = rng.choice(frame[ATTACK_CAT].unique(), relabel.sum())
    return pd.concat([frame, copies], ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _vectors(frame: pd.DataFrame) -> set[tuple[str, ...]]:
    return {tuple(row) for row in frame[list(FEATURES)].astype(str).to_numpy()}


def test_the_validation_split_keeps_every_feature_vector_on_one_side() -> None:
    frame = _with_copies(3000, seed=5)
    train, val = split(frame, FAST_TRAINING)
    assert _vectors(frame) == _vectors(train) | _vectors(val)
    assert not _vectors(train) & _vectors(val)
    assert len(val) / len(frame) == pytest.approx(FAST_TRAINING.validation_fraction, abs=0.03)
    share = val[ATTACK_CAT].value_counts() / frame[ATTACK_CAT].value_counts()
    big = frame[ATTACK_CAT].value_counts() >= 200
    assert share[big].between(0.12, 0.28).all(), share


def test_a_plain_split_would_have_shared_vectors() -> None:
    """The fixture has copies to separate: otherwise the test above could not fail."""
    frame = _with_copies(3000, seed=5)
    groups = flow_groups(frame)
    half = np.arange(len(frame)) % 2 == 0
    assert set(groups[half]) & set(groups[~half])


@pytest.mark.parametrize("folds", [3, 5])
def test_folds_test_every_row_once_and_never_split_a_vector(folds: int) -> None:
    rng = np.random.default_rng(1)
    matrix = rng.integers(0, 4, size=(2000, 3)).astype(np.float32)  # 64 distinct vectors, many copies
    y = rng.choice(["a", "b", "c"], size=2000)
    groups = vector_groups(matrix)
    tested = np.zeros(len(y), dtype=int)
    for train_rows, test_rows in grouped_folds(groups, y, folds, seed=0):
        tested[test_rows] += 1
        assert not set(groups[train_rows]) & set(groups[test_rows])
        assert len(train_rows) + len(test_rows) == len(y)
    assert (tested == 1).all()


def test_vector_groups_are_equal_exactly_for_equal_rows() -> None:
    matrix = np.array([[1.0, np.nan], [1.0, np.nan], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    groups = vector_groups(matrix)
    assert groups[0] == groups[1] and groups[2] == groups[4]
    assert len({groups[0], groups[2], groups[3]}) == 3


def test_holdout_is_reproducible_and_seeded() -> None:
    groups = np.arange(1000) % 300
    y = np.where(groups % 3 == 0, "x", "y")
    first = grouped_holdout(groups, y, 0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, grouped_holdout(groups, y, 0.2, seed=4)))
    assert not np.array_equal(first[1], grouped_holdout(groups, y, 0.2, seed=5)[1])


def test_class_scaling_tunes_on_folds_that_keep_copies_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scales are tuned on held-out predictions; a held-out row's copy must not have been fitted."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from nids_model import reweighting

    seen: list[list[tuple[np.ndarray, np.ndarray]]] = []
    real = reweighting.grouped_folds

    def recording(*args: object, **kwargs: object) -> list[tuple[np.ndarray, np.ndarray]]:
        folds = real(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(folds)
        return folds

    monkeypatch.setattr(reweighting, "grouped_folds", recording)
    rng = np.random.default_rng(2)
    X = rng.integers(0, 5, size=(1500, 4)).astype(np.float32)
    y = np.where(X[:, 0] + rng.normal(0, 1, 1500) > 2, "attack", "other")
    ClassScaledClassifier(HistGradientBoostingClassifier(max_iter=5), cv=3).fit(X, y)
    groups = vector_groups(X)
    (folds,) = seen
    for train_rows, test_rows in folds:
        assert not set(groups[train_rows]) & set(groups[test_rows])

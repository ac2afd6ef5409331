"""The seen-flow ceiling: the assignment is a true local optimum of macro-F1 (its bookkeeping checked
against a plain recount), finds the brute-force optimum where that is clear, and the oracles and the
counts rule change only the rows they say."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nids_model.reweighting import macro_f1
from training.regimes import HeldOut, OutOfFold, Rows
from training.seen_ceiling import best_assignment, file_oracle, fold_oracle, from_training_counts

N_CLASSES = 4


def macro_f1_of(counts: np.ndarray, fixed: np.ndarray, choice: np.ndarray) -> float:
    """Macro-F1 recounted from rows: each group's rows decided as its choice, plus `fixed`'s rows."""
    truth, decided = [], []
    for (true_class, decided_class), rows in np.ndenumerate(fixed):
        truth += [true_class] * int(rows)
        decided += [decided_class] * int(rows)
    for group, chosen in enumerate(choice):
        for true_class, rows in enumerate(counts[group]):
            truth += [true_class] * int(rows)
            decided += [int(chosen)] * int(rows)
    return macro_f1(np.asarray(truth), np.asarray(decided), N_CLASSES)


@pytest.mark.parametrize("seed", range(8))
def test_no_single_group_can_move_and_gain(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, (12, N_CLASSES)).astype(np.float64)
    fixed = rng.integers(0, 20, (N_CLASSES, N_CLASSES)).astype(np.float64)
    choice = best_assignment(counts, fixed)
    reached = macro_f1_of(counts, fixed, choice)
    assert reached >= macro_f1_of(counts, fixed, counts.argmax(axis=1)) - 1e-12
    for group, other in itertools.product(range(len(counts)), range(N_CLASSES)):
        moved = choice.copy()
        moved[group] = other
        assert macro_f1_of(counts, fixed, moved) <= reached + 1e-9


def test_a_mixed_group_goes_to_the_class_that_lives_only_in_it() -> None:
    fixed = np.diag([50.0, 40.0, 30.0, 0.0])
    counts = np.array([[6.0, 0.0, 0.0, 2.0], [0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]])
    choice = best_assignment(counts, fixed)
    best = max(
        itertools.product(range(N_CLASSES), repeat=len(counts)), key=lambda c: macro_f1_of(counts, fixed, np.asarray(c))
    )
    # Class 3's two rows share a group with six of class 0: deciding it 3 makes class 3 count at all.
    assert choice.tolist() == [3, 1, 2] == list(best)


@pytest.fixture
def held() -> HeldOut:
    """300 rows over 60 vectors in five folds; class 0 is Normal; a row is seen when another fold
    holds its vector."""
    rng = np.random.default_rng(3)
    vector = rng.integers(0, 60, 300)
    truth = np.where(rng.random(300) < 0.7, vector % N_CLASSES, rng.integers(0, N_CLASSES, 300))
    fold = rng.integers(0, 5, 300)
    in_other_fold = np.array([np.any((vector == v) & (fold != f)) for v, f in zip(vector, fold, strict=True)])
    rows = Rows(truth, truth != 0, np.array(["Normal", "a", "b", "c"], dtype=object), 0, 0.5)
    plain = OutOfFold(
        fold, np.zeros(300), np.zeros((300, N_CLASSES)), in_other_fold.astype(np.int64), np.zeros(300, np.int64)
    )
    return HeldOut(rows, vector[:, None].astype(np.float32), plain, plain)


def test_the_file_oracle_decides_each_seen_vector_once_and_leaves_novel_rows(held: HeldOut) -> None:
    vector = held.matrix[:, 0].astype(np.intp)
    decided = np.random.default_rng(5).integers(0, N_CLASSES, len(vector))
    result = file_oracle(held, decided, vector)
    seen = held.plain.seen
    assert held.plain.seen.any() and (~seen).any()
    assert (result[~seen] == decided[~seen]).all()
    assert all(len(set(result[seen & (vector == v)])) == 1 for v in np.unique(vector[seen]))
    assert macro_f1(held.rows.truth, result, N_CLASSES) >= macro_f1(held.rows.truth, decided, N_CLASSES)
    assert (file_oracle(held, decided, vector, min_rows=10_000) == decided).all()


def test_the_fold_oracle_may_decide_a_vector_differently_per_fold_but_never_a_novel_row(held: HeldOut) -> None:
    vector = held.matrix[:, 0].astype(np.intp)
    decided = np.random.default_rng(6).integers(0, N_CLASSES, len(vector))
    result = fold_oracle(held, decided, vector)
    seen = held.plain.seen
    assert (result[~seen] == decided[~seen]).all()
    for fold in range(5):
        own = held.plain.fold == fold
        for v in np.unique(vector[own & seen]):
            assert len(set(result[own & seen & (vector == v)])) == 1


def test_the_training_counts_rule_changes_only_attack_classes_of_seen_attacks(held: HeldOut) -> None:
    vector = held.matrix[:, 0].astype(np.intp)
    decided = np.random.default_rng(7).integers(0, N_CLASSES, len(vector))
    result = from_training_counts(held, decided, vector, min_rows=1)
    changed = result != decided
    assert changed.any()
    assert (held.plain.seen[changed]).all()
    assert (decided[changed] != 0).all() and (result[changed] != 0).all()
    assert (from_training_counts(held, decided, vector, min_rows=10_000) == decided).all()

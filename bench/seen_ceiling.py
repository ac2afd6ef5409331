"""How far a rule for seen flows could lift plain cross-validation, and how far the training rows take it.

A deployed rule for seen flows, whatever it weighs, decides all copies of one vector alike. The best
such rule gives each seen vector the one class that serves macro-F1 best, and could choose it
perfectly only knowing how the vector's held-out copies over the whole file divide into classes (an
oracle: no rule can know them; with the novel rows as decided, that is the ceiling). Made with the
vector's training class counts instead, the same choice is what the training rows alone can tell.
`python -m bench.model_quality --ceiling` prints both next to the deployed rule.
"""

from __future__ import annotations

import numpy as np

from nids_model.compiled import distinct_rows
from nids_model.reweighting import macro_f1
from training.regimes import HeldOut


def best_assignment(counts: np.ndarray, fixed: np.ndarray, passes: int = 3) -> np.ndarray:
    """One class per group that maximises the macro-F1 of `fixed` plus the groups, by coordinate ascent.

    Parameters
    ----------
    counts : ndarray of shape (n_groups, n_classes), dtype=float64
        The true-class counts of each group's rows.
    fixed : ndarray of shape (n_classes, n_classes), dtype=float64
        The confusion matrix (truth × decided) of the rows outside the groups.

    Returns
    -------
    choice : ndarray of shape (n_groups,), dtype=intp
        The class each group's rows are decided as; it starts at the group's majority class.
    """
    choice = counts.argmax(axis=1)
    rows = fixed.sum(axis=1) + counts.sum(axis=0)
    present = rows > 0
    sizes = counts.sum(axis=1)
    true_positive = np.diag(fixed) + np.bincount(
        choice, weights=counts[np.arange(len(choice)), choice], minlength=len(rows)
    )
    columns = fixed.sum(axis=0) + np.bincount(choice, weights=sizes, minlength=len(rows))
    for _ in range(passes):
        changed = 0
        for group in np.argsort(-sizes, kind="stable"):
            current = choice[group]
            true_positive[current] -= counts[group, current]
            columns[current] -= sizes[group]
            before = f1(true_positive, rows, columns)
            after = f1(true_positive + counts[group], rows, columns + sizes[group])
            gain = np.where(present, after - before, 0.0)
            best = int(gain.argmax())
            if gain[best] <= gain[current] + 1e-12:
                best = current
            true_positive[best] += counts[group, best]
            columns[best] += sizes[group]
            changed += best != current
            choice[group] = best
        if not changed:
            break
    chosen: np.ndarray = choice
    return chosen


def f1(true_positive: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Per-class F1 (n_classes,) from true positives, true-class totals and decided-class totals."""
    total = rows + columns
    scores: np.ndarray = np.divide(2 * true_positive, total, out=np.zeros(len(total)), where=total > 0)
    return scores


def pair_counts(first: np.ndarray, second: np.ndarray, n_first: int, n_second: int) -> np.ndarray:
    """(n_first, n_second) float64: how many rows have each pair of codes (a confusion matrix when
    `first` is the truth and `second` the decision)."""
    counts = np.bincount(first * n_second + second, minlength=n_first * n_second)
    return counts.reshape(n_first, n_second).astype(np.float64)


def oracle_ceiling(held: HeldOut, decided: np.ndarray) -> np.ndarray:
    """Per plain fold (n_folds,), the macro-F1 with the novel rows as `decided` and every seen vector
    decided the one class that its held-out copies over all folds make best for the whole file."""
    rows, plain = held.rows, held.plain
    n_classes = len(rows.classes)
    vector = distinct_rows(held.matrix)[1]
    seen = plain.seen
    groups, at = np.unique(vector[seen], return_inverse=True)
    counts = pair_counts(at, rows.truth[seen], len(groups), n_classes)
    choice = best_assignment(counts, pair_counts(rows.truth[~seen], decided[~seen], n_classes, n_classes))
    result = decided.copy()
    result[seen] = choice[at]
    return fold_macro_f1(held, result)


def from_training_counts(held: HeldOut, decided: np.ndarray, min_rows: int) -> np.ndarray:
    """Per plain fold (n_folds,), the macro-F1 when each held-out seen flow the label step calls an
    attack takes the class chosen for its vector from the other folds' rows (its training rows): the
    best assignment of the training vectors with at least `min_rows` rows, the other training rows
    as `decided`. A vector chosen Normal, or with fewer rows, keeps `decided`."""
    rows, plain = held.rows, held.plain
    n_classes = len(rows.classes)
    vector = distinct_rows(held.matrix)[1]
    result = decided.copy()
    for fold in np.unique(plain.fold):
        own, others = plain.fold == fold, plain.fold != fold
        groups, at = np.unique(vector[others], return_inverse=True)
        counts = pair_counts(at, rows.truth[others], len(groups), n_classes)
        large = counts.sum(axis=1) >= min_rows
        rest = np.flatnonzero(others)[~large[at]]
        choice = np.full(len(groups), rows.normal)
        choice[large] = best_assignment(
            counts[large], pair_counts(rows.truth[rest], decided[rest], n_classes, n_classes)
        )
        held_out_seen = np.flatnonzero(own & plain.seen)
        chosen = choice[np.searchsorted(groups, vector[held_out_seen])]
        take = (decided[held_out_seen] != rows.normal) & (chosen != rows.normal)
        result[held_out_seen[take]] = chosen[take]
    return fold_macro_f1(held, result)


def fold_macro_f1(held: HeldOut, decided: np.ndarray) -> np.ndarray:
    """(n_folds,) macro-F1 of each plain fold's rows as `decided`."""
    truth, fold = held.rows.truth, held.plain.fold
    n_classes = len(held.rows.classes)
    return np.asarray([macro_f1(truth[fold == index], decided[fold == index], n_classes) for index in np.unique(fold)])

"""How far a rule for seen flows could lift plain cross-validation, and how far the training rows take it.

One deployed rule decides all copies of one vector alike. The best such rule gives each seen vector
the one class that serves macro-F1 most; it could choose perfectly only by knowing how the vector's
copies divide into classes, which the training rows merely sample. So with the novel rows as decided,
three figures frame the deployed rule (`python -m bench.model_quality --ceiling`):

- `file_oracle`: every seen vector decided knowing the classes of its held-out copies over the
  whole file (the shares a rule estimates from its training rows, known exactly);
- `fold_oracle`: the same per fold, knowing also which copies fell in that fold. This measures the
  folds' sampling more than any rule: a rule never sees the fold it is scored on;
- `from_training_counts`: the attack class of seen flows decided as attacks, chosen the same way
  from the vector's training class counts instead: what the training rows alone can tell.

Both oracles come from coordinate ascent (a local optimum), so they estimate their ceiling from below.
"""

from __future__ import annotations

import numpy as np

from nids_model.reweighting import class_f1, pair_counts
from training.regimes import HeldOut

MAX_PASSES = 100


def best_assignment(counts: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """One class per group of rows that maximises the macro-F1 of the rows of `fixed` and of the
    groups, by coordinate ascent from each group's majority class until no group moves.

    Parameters
    ----------
    counts : ndarray of shape (n_groups, n_classes), dtype=float64
        The rows of each group per true class.
    fixed : ndarray of shape (n_classes, n_classes), dtype=float64
        The confusion matrix (truth × decided) of the rows outside the groups.

    Returns
    -------
    choice : ndarray of shape (n_groups,), dtype=intp
        The class each group's rows are decided as: a local optimum, where moving any one group
        lowers macro-F1 or leaves it.
    """
    choice = counts.argmax(axis=1)
    sizes = counts.sum(axis=1)
    truth_totals = fixed.sum(axis=1) + counts.sum(axis=0)
    present = truth_totals > 0
    own_class = counts[np.arange(len(choice)), choice]
    true_positives = np.diag(fixed) + np.bincount(choice, weights=own_class, minlength=len(truth_totals))
    decided_totals = fixed.sum(axis=0) + np.bincount(choice, weights=sizes, minlength=len(truth_totals))
    for _ in range(MAX_PASSES):
        moved = False
        for group in np.argsort(-sizes, kind="stable"):
            current = choice[group]
            true_positives[current] -= counts[group, current]
            decided_totals[current] -= sizes[group]
            # Only the F1 of the class the group joins changes, so its gain ranks the classes.
            before = class_f1(true_positives, truth_totals, decided_totals)
            after = class_f1(true_positives + counts[group], truth_totals, decided_totals + sizes[group])
            gain = np.where(present, after - before, 0.0)
            best = int(gain.argmax())
            # A move must gain strictly, or two equal classes could trade a group forever.
            if gain[best] <= gain[current] + 1e-12:
                best = current
            true_positives[best] += counts[group, best]
            decided_totals[best] += sizes[group]
            moved |= best != current
            choice[group] = best
        if not moved:
            break
    chosen: np.ndarray = choice
    return chosen


def decided_by_oracle(
    truth: np.ndarray, decided: np.ndarray, vector: np.ndarray, groups_at: np.ndarray, n_classes: int
) -> np.ndarray:
    """`decided` (n_samples,) intp with the rows where `groups_at` (bool, n_samples) decided one class
    per `vector` (n_samples,) intp, by `best_assignment` on their own `truth` (n_samples,) intp."""
    groups, group_of_row = np.unique(vector[groups_at], return_inverse=True)
    counts = pair_counts(group_of_row, truth[groups_at], len(groups), n_classes)
    outside = pair_counts(truth[~groups_at], decided[~groups_at], n_classes, n_classes)
    result = decided.copy()
    result[groups_at] = best_assignment(counts, outside)[group_of_row]
    return result


def file_oracle(held: HeldOut, decided: np.ndarray, vector: np.ndarray, min_rows: int = 1) -> np.ndarray:
    """Each row's class (n_samples,) intp: `decided`, but every seen vector with at least `min_rows`
    rows in the file decided the one class its held-out copies over all folds make best for the
    whole file. `vector` (n_samples,) intp numbers the distinct feature vectors."""
    seen = held.plain.seen & (np.bincount(vector)[vector] >= min_rows)
    return decided_by_oracle(held.rows.truth, decided, vector, seen, len(held.rows.classes))


def fold_oracle(held: HeldOut, decided: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Each row's class (n_samples,) intp: `decided`, but each fold's seen vectors decided the one
    class their copies in that fold make best for that fold."""
    result = decided.copy()
    for fold in np.unique(held.plain.fold):
        own = held.plain.fold == fold
        result[own] = decided_by_oracle(
            held.rows.truth[own], decided[own], vector[own], held.plain.seen[own], len(held.rows.classes)
        )
    return result


def from_training_counts(held: HeldOut, decided: np.ndarray, vector: np.ndarray, min_rows: int) -> np.ndarray:
    """Each row's class (n_samples,) intp: `decided`, but a held-out seen flow decided as an attack
    takes the attack class chosen for its vector from the other folds' rows (its training rows),
    where the vector has at least `min_rows` of them: the best assignment of those vectors, with
    every other training row as `decided`."""
    rows, plain = held.rows, held.plain
    n_classes = len(rows.classes)
    result = decided.copy()
    for fold in np.unique(plain.fold):
        own, others = plain.fold == fold, np.flatnonzero(plain.fold != fold)
        groups, group_of_row = np.unique(vector[others], return_inverse=True)
        counts = pair_counts(group_of_row, rows.truth[others], len(groups), n_classes)
        large = counts.sum(axis=1) >= min_rows
        rest = others[~large[group_of_row]]
        choice = np.full(len(groups), -1)
        choice[large] = best_assignment(
            counts[large], pair_counts(rows.truth[rest], decided[rest], n_classes, n_classes)
        )
        held_out_seen = np.flatnonzero(own & plain.seen)
        chosen = choice[np.searchsorted(groups, vector[held_out_seen])]
        # The label step stays as decided: the counts choose among attack classes only.
        take = (chosen >= 0) & (chosen != rows.normal) & (decided[held_out_seen] != rows.normal)
        result[held_out_seen[take]] = chosen[take]
    return result

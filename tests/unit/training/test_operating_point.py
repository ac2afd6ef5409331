"""The false-positive budget rule on constructed scores."""

from __future__ import annotations

import numpy as np
import pytest

from training.operating_point import rates, threshold_for_budget

# Ten Normal flows scoring 0.05 … 0.95 and ten attacks scoring 0.50 … 0.98.
NORMAL_SCORES = np.array([0.05, 0.10, 0.15, 0.20, 0.30, 0.40, 0.45, 0.60, 0.80, 0.95])
ATTACK_SCORES = np.array([0.50, 0.55, 0.65, 0.70, 0.75, 0.85, 0.90, 0.92, 0.96, 0.98])
IS_ATTACK = np.r_[np.zeros(10, bool), np.ones(10, bool)]
SCORES = np.r_[NORMAL_SCORES, ATTACK_SCORES]


def test_a_budget_of_one_normal_in_ten_keeps_the_highest_normal_only() -> None:
    point = threshold_for_budget(IS_ATTACK, SCORES, 0.1)
    # 0.95 may alert; 0.80 must not: the lowest score above 0.80 is the attack at 0.85.
    assert point.threshold == 0.85
    assert point.false_positive_rate == 0.1
    assert point.recall == 0.5
    assert point.precision == pytest.approx(5 / 6)


def test_a_budget_of_two_in_ten_lowers_the_threshold_to_the_next_normal() -> None:
    point = threshold_for_budget(IS_ATTACK, SCORES, 0.2)
    assert point.threshold == 0.65  # above the Normal at 0.60, below the one at 0.80
    assert (point.false_positive_rate, point.recall) == (0.2, 0.8)


def test_the_threshold_is_the_lowest_within_budget() -> None:
    for budget in (0.0, 0.1, 0.2, 0.3, 0.5, 0.9):
        point = threshold_for_budget(IS_ATTACK, SCORES, budget)
        assert point.false_positive_rate <= budget
        lower = SCORES[point.threshold > SCORES]
        if lower.size:  # any lower threshold breaks the budget
            assert rates(IS_ATTACK, SCORES, lower.max()).false_positive_rate > budget


def test_a_zero_budget_alerts_above_every_normal_flow() -> None:
    point = threshold_for_budget(IS_ATTACK, SCORES, 0.0)
    assert point.threshold == 0.96
    assert point.false_positive_rate == 0.0 and point.recall == 0.2


def test_ties_at_the_boundary_are_kept_out() -> None:
    scores = np.array([0.7, 0.7, 0.1, 0.1, 0.9, 0.8])
    truth = np.array([False, False, False, False, True, True])
    point = threshold_for_budget(truth, scores, 0.25)  # one Normal may alert, but two share 0.7
    assert point.threshold == 0.8 and point.false_positive_rate == 0.0


def test_an_out_of_range_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_false_positive_rate"):
        threshold_for_budget(IS_ATTACK, SCORES, 1.0)

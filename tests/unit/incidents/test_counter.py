"""The bounded counter: exact while small, bounded and keeping the frequent values when not."""

from __future__ import annotations

from incidents.counter import count, top
from nids_common.contract import Counted


def test_exact_while_under_capacity_and_ties_ranked_by_value() -> None:
    counts: dict[str, int] = {}
    for value in ["b", "a", "c", "a", "b", "a"]:
        count(counts, value, capacity=8)
    assert counts == {"a": 3, "b": 2, "c": 1}
    assert top(counts, 2) == (Counted("a", 3), Counted("b", 2))
    assert top({"y": 1, "x": 1}, 5) == (Counted("x", 1), Counted("y", 1))


def test_bounded_and_keeps_the_frequent_values() -> None:
    counts: dict[str, int] = {}
    for i in range(10_000):
        count(counts, "heavy" if i % 3 == 0 else f"rare-{i}", capacity=16)
        assert len(counts) <= 16
    assert top(counts, 1) == (Counted("heavy", 3334),)

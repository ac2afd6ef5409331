"""A bounded frequency count: an incident's top destinations and ports in constant memory.

A plain dict (it goes into the changelog as it is) holding at most CAPACITY values. When a new value
finds it full, the less frequent half is dropped. Counts are exact while an incident has seen at most
CAPACITY distinct values; beyond, the values kept are the frequent ones and their counts are lower
bounds (a value dropped and seen again starts over).
"""

from __future__ import annotations

from nids_common.contract import Counted

CAPACITY = 64


def count(counts: dict[str, int], value: str, capacity: int = CAPACITY) -> None:
    current = counts.get(value)
    if current is not None:
        counts[value] = current + 1
        return
    if len(counts) >= capacity:
        kept = _ranked(counts)[: capacity // 2]
        counts.clear()
        counts.update(kept)
    counts[value] = 1


def top(counts: dict[str, int], n: int) -> tuple[Counted, ...]:
    """The `n` most frequent values, ties by value (deterministic across runs)."""
    return tuple(Counted(value, times) for value, times in _ranked(counts)[:n])


def _ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    if len(counts) < 2:  # most incidents' records: skip the sort
        return list(counts.items())
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

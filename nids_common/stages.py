"""Where a stream service's time goes: seconds per named stage, added up by the thread doing the work.

A `StageTimes` is written by one thread only (the loop's, or a scorer's for one batch), so it needs
no lock; the loop adds a finished batch's scorer times to its own. Two perf_counter() calls per stage
and batch: nothing next to a batch of thousands of records.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping


class StageTimes:
    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self.now = now
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        """Adds the time the block takes to `stage` (a stage entered twice adds up)."""
        started = self.now()
        try:
            yield
        finally:
            self.add(stage, self.now() - started)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def merge(self, other: Mapping[str, float]) -> None:
        for stage, seconds in other.items():
            self.add(stage, seconds)

    def take(self) -> dict[str, float]:
        """The seconds so far, and start again from zero."""
        taken, self.seconds = self.seconds, {}
        return taken

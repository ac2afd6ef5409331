"""The detector's counts and the one live status line it shows on a terminal."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import TextIO


@dataclasses.dataclass
class Counts:
    consumed: int = 0
    scored: int = 0
    alerts: int = 0
    invalid: int = 0


class StatusLine:
    """flows/s, alerts/s, lag: redrawn at most once a second."""

    def __init__(self, group: str, out: TextIO = sys.stderr) -> None:
        self.group, self.out = group, out
        self.last_time = time.monotonic()
        self.last = Counts()

    def show(self, counts: Counts, lag: float) -> None:
        now = time.monotonic()
        if now - self.last_time < 1.0:
            return
        span = now - self.last_time
        self.out.write(
            f"\r{self.group}: {(counts.consumed - self.last.consumed) / span:9,.0f} flows/s  "
            f"{(counts.alerts - self.last.alerts) / span:8,.0f} alerts/s  lag {lag:9,.0f}  "
            f"scored {counts.scored:,}  invalid {counts.invalid:,}   "
        )
        self.out.flush()
        self.last_time, self.last = now, dataclasses.replace(counts)

    def done(self) -> None:
        self.out.write("\n")

"""The one live status line the detector shows on a terminal."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import TextIO

from detector.metrics import Totals


class StatusLine:
    """flows/s, alerts/s, lag: redrawn at most once a second, from the totals the metrics keep."""

    def __init__(self, group: str, out: TextIO = sys.stderr) -> None:
        self.group, self.out = group, out
        self.last_time = time.monotonic()
        self.last = Totals()

    def show(self, totals: Totals, lag: float) -> None:
        now = time.monotonic()
        if now - self.last_time < 1.0:
            return
        span = now - self.last_time
        self.out.write(
            f"\r{self.group}: {(totals.consumed - self.last.consumed) / span:9,.0f} flows/s  "
            f"{(totals.alerts - self.last.alerts) / span:8,.0f} alerts/s  lag {lag:9,.0f}  "
            f"scored {totals.scored:,}  invalid {totals.invalid:,}   "
        )
        self.out.flush()
        self.last_time, self.last = now, dataclasses.replace(totals)

    def done(self) -> None:
        self.out.write("\n")

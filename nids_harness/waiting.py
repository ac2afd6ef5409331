"""Polling for a condition with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], timeout: float, poll: float = 0.2) -> bool:
    """Whether `condition` held within `timeout` seconds, checked every `poll` seconds and once more
    at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()

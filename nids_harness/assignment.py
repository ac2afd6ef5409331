"""Waiting until a detector has partitions: traffic sent before would measure its start-up, not the stream."""

from __future__ import annotations

import subprocess
import time

from nids_harness.errors import HarnessError
from nids_harness.metrics import Samples, scrape

ASSIGNMENT_TIMEOUT_S = 60.0


def has_partitions(samples: Samples) -> bool:
    """Whether the detector has loaded its model and been assigned partitions: its consumer lag has a
    sample per partition only then."""
    return any(name == "nids_consumer_lag" and dict(labels).get("partition") for name, labels in samples)


def wait_for_assignment(
    port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = ASSIGNMENT_TIMEOUT_S
) -> None:
    """Until the detector serving /metrics on `port` has partitions; HarnessError if its `process`
    exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise HarnessError(f"nids-detect exited ({process.returncode}) before it was assigned partitions")
        try:
            if has_partitions(scrape(port, timeout=1.0)):
                return
        except OSError:
            pass  # not serving /metrics yet: still loading its model
        time.sleep(0.2)
    raise HarnessError(f"nids-detect was assigned no partitions within {timeout:.0f} s")

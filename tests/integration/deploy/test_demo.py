"""`make demo`'s script end to end against the real broker: a model (trained if missing), detector and
replay processes, alerts within the run, a clean stop with a summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from bench.common import free_port
from tests.integration.helpers import REPO


def test_demo_runs_the_pipeline_and_stops_cleanly(kafka_bootstrap: str) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap, "NIDS_METRICS_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--duration", "25", "--rate", "2000"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = re.search(
        r"nids demo finished after \d+ s: consumed ([\d,]+) flows, alerts ([\d,]+), invalid 0; "
        r"detector exit code 0",
        result.stdout,
    )
    assert summary, result.stdout[-2000:]
    consumed, alerts = (int(group.replace(",", "")) for group in summary.groups())
    assert consumed > 10_000 and 0 < alerts < consumed
    # Not a terminal here: plain status lines instead of the live view.
    assert "scored" in result.stdout and "latency p99" in result.stdout

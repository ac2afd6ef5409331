"""`make demo`'s script end to end against the real broker: a model (trained if missing), detector and
replay processes, alerts within the run, a clean stop with a summary of what the run did, whether it
ends by --duration or by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

from nids_harness.checkout import REPO
from nids_harness.ports import free_port

SUMMARY = (
    r"nids demo {how} after \d+ s: consumed ([\d,]+) flows, alerts ([\d,]+), incident records ([\d,]+)"
    r"(?: \([\d,]+ alerts per incident record\))?, invalid 0; detector exit code 0"
)
STATUS = re.compile(r"scored ([\d,]+), alerts ([\d,]+)")


def start_demo(kafka_bootstrap: str, *options: str) -> subprocess.Popen[str]:
    """The demo as a CI step or a background shell job starts it: with SIGINT ignored, which Ctrl-C's
    test must still stop."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "NIDS_METRICS_PORT": str(free_port()),
        "DEMO_INCIDENTS_PORT": str(free_port()),
    }
    return subprocess.Popen(
        [
            "sh",
            "-c",
            'trap "" INT; exec "$@"',
            "sh",
            sys.executable,
            str(REPO / "scripts" / "demo.py"),
            "--rate",
            "2000",
            *options,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def numbers(match: re.Match[str]) -> tuple[int, ...]:
    return tuple(int(group.replace(",", "")) for group in match.groups())


def test_demo_runs_the_pipeline_and_stops_cleanly(kafka_bootstrap: str) -> None:
    demo = start_demo(kafka_bootstrap, "--duration", "25")
    stdout, stderr = demo.communicate(timeout=300)
    assert demo.returncode == 0, stdout[-2000:] + stderr[-2000:]
    summary = re.search(SUMMARY.format(how="finished"), stdout)
    assert summary, stdout[-2000:]
    consumed, alerts, records = numbers(summary)
    assert consumed > 10_000 and 0 < alerts < consumed
    assert 0 < records < alerts  # incidents: fewer records to read than alerts
    # Not a terminal here: plain status lines instead of the live view.
    assert "scored" in stdout and "latency p99" in stdout


def test_ctrl_c_stops_the_demo_with_a_summary_of_the_run(kafka_bootstrap: str) -> None:
    demo = start_demo(kafka_bootstrap)
    assert demo.stdout is not None
    # A demo that never shows traffic is killed, which ends the loop below.
    deadline = threading.Timer(300, demo.kill)
    deadline.start()
    lines = []
    try:
        for line in demo.stdout:
            lines.append(line)
            status = STATUS.search(line)
            # The first status line with alerts: the run has numbers the summary must carry.
            if status and numbers(status)[1] > 0:
                break
        else:
            raise AssertionError("".join(lines)[-2000:] + (demo.stderr.read() if demo.stderr else "")[-2000:])
    finally:
        deadline.cancel()
    scored, alerts_seen = numbers(status)
    demo.send_signal(signal.SIGINT)
    stdout, stderr = demo.communicate(timeout=120)
    assert demo.returncode == 0, stdout[-2000:] + stderr[-2000:]
    summary = re.search(SUMMARY.format(how="interrupted"), stdout)
    assert summary, stdout[-2000:]
    consumed, alerts, _records = numbers(summary)
    # The counters only grow: the summary, taken when the replay stopped, holds at least what the
    # last status line showed.
    assert consumed >= scored > 0 and alerts >= alerts_seen > 0

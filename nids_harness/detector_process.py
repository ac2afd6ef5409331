"""nids-detect in its own process, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nids_common.contract import Topics
from nids_harness.assignment import wait_for_assignment
from nids_harness.checkout import REPO
from nids_harness.topics import topics_env


def start_detector(
    bootstrap: str,
    topics: Topics,
    group: str,
    port: int,
    model: Path,
    log: Path | None = None,
    **settings: object,
) -> subprocess.Popen[bytes]:
    """nids-detect on `topics` and `group` with `model`, its metrics on `port`, its log appended to
    `log`; `settings` are detector settings (NIDS_DETECTOR_<NAME>), e.g. delivery="exactly_once"."""
    env = {
        **os.environ,
        "NIDS_KAFKA_BOOTSTRAP": bootstrap,
        **topics_env(topics),
        **{f"NIDS_DETECTOR_{name.upper()}": str(value) for name, value in settings.items()},
    }
    command = [sys.executable, "-m", "detector.cli", "--model", str(model), "--group", group]
    with open(log or os.devnull, "ab") as sink:
        return subprocess.Popen(
            [*command, "--metrics-port", str(port)], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=sink
        )


def start_ready_detector(
    bootstrap: str,
    topics: Topics,
    group: str,
    port: int,
    model: Path,
    log: Path | None = None,
    **settings: object,
) -> subprocess.Popen[bytes]:
    """`start_detector`, returning once it has loaded its model and been assigned partitions (a
    larger model takes longer to load); killed, and HarnessError, if it never is."""
    detector = start_detector(bootstrap, topics, group, port, model, log, **settings)
    try:
        wait_for_assignment(port, detector)
    except BaseException:
        detector.kill()
        detector.wait()
        raise
    return detector

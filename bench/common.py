"""What only the benchmarks share: the broker they use, their topics, the dev data when present, the
deployed model. What tests and the demo need too lives in nids_harness."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd

from nids_common.contract import DEFAULT_PARTITIONS, Topics
from nids_dataset.synthetic import synthetic_frame
from nids_dataset.unsw import load_flows
from nids_harness.checkout import KAFKA_LOCAL, REPO
from nids_harness.topics import make_topics

DEV_DATA = REPO.parent / "shared" / "data" / "unsw-nb15" / "unsw_nb15_dev.csv"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def ensure_broker() -> str:
    if "KAFKA_BOOTSTRAP" not in os.environ:
        subprocess.run([KAFKA_LOCAL, "start"], check=True, stdout=subprocess.DEVNULL)
    return BOOTSTRAP


def fresh_topics(prefix: str, partitions: int = DEFAULT_PARTITIONS) -> Topics:
    return make_topics(BOOTSTRAP, f"bench.{prefix}.{uuid.uuid4().hex[:6]}", partitions)


def flows_frame(rows: int) -> tuple[pd.DataFrame, str]:
    """The dev file (repeated to `rows`) when ../shared has it, else synthetic flows."""
    if DEV_DATA.exists():
        frame = load_flows([DEV_DATA])
        repeats = -(-rows // len(frame))
        return pd.concat([frame] * repeats, ignore_index=True).iloc[:rows], f"UNSW-NB15 dev file ({DEV_DATA.name})"
    return synthetic_frame(rows, seed=1), "synthetic flows (../shared absent)"


def model_path() -> Path:
    path = REPO / "models" / "latest"
    if not path.exists():
        raise SystemExit("no model: run `nids-train --data …` (or `make demo`) first")
    return path


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def replay_command(topic: str, *options: str) -> list[str]:
    """nids-replay as a user runs it, on the benchmark source: the dev file, looped, or synthetic flows."""
    source = ["--data", str(DEV_DATA), "--loop"] if DEV_DATA.exists() else ["--synthetic", "--loop"]
    return [sys.executable, "-m", "producer.cli", *source, *options, "--topic", topic]

"""Shared set-up for benchmarks: the broker, topics, the dev data when present, a model."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd

from nids_common.kafka import ensure_topics
from nids_dataset.synthetic import synthetic_frame
from nids_dataset.unsw import load_flows

REPO = Path(__file__).resolve().parents[1]
DEV_DATA = REPO.parent / "shared" / "data" / "unsw-nb15" / "unsw_nb15_dev.csv"
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def ensure_broker() -> str:
    if "KAFKA_BOOTSTRAP" not in os.environ:
        subprocess.run([str(REPO / "scripts" / "kafka-local"), "start"], check=True, stdout=subprocess.DEVNULL)
    return BOOTSTRAP


def fresh_topics(prefix: str, partitions: int = 6) -> dict[str, str]:
    name = f"bench.{prefix}.{uuid.uuid4().hex[:6]}"
    topics = {
        "flows": f"{name}.flows",
        "alerts": f"{name}.alerts",
        "dead_letter": f"{name}.dlq",
        "verdicts": f"{name}.verdicts",
    }
    ensure_topics(
        {"bootstrap.servers": BOOTSTRAP},
        {topics["flows"]: partitions, topics["alerts"]: 6, topics["dead_letter"]: 1, topics["verdicts"]: 6},
    )
    return topics


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


def start_detector(bootstrap: str, topics: dict[str, str], group: str, port: int) -> subprocess.Popen[bytes]:
    """nids-detect as a user runs it, in its own process, on the benchmark's topics and `group`."""
    env = {
        **os.environ,
        "NIDS_KAFKA_BOOTSTRAP": bootstrap,
        "NIDS_TOPICS_FLOWS": topics["flows"],
        "NIDS_TOPICS_ALERTS": topics["alerts"],
        "NIDS_TOPICS_DEAD_LETTER": topics["dead_letter"],
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "detector.cli",
            "--model",
            str(model_path()),
            "--group",
            group,
            "--metrics-port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

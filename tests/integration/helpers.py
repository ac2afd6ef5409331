"""What only the integration tests share: a component that is not there, replaying flows with checks,
a real Prometheus, the project's console scripts. What benches and the demo need too is in nids_harness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import pytest
from confluent_kafka import Producer

from nids_dataset.synthetic import synthetic_frame
from nids_harness.payloads import at_sensor_precision
from producer.replay import replay


def unavailable(reason: str) -> NoReturn:
    """A component the test needs is missing: under CI=true that fails the test, elsewhere it skips."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def replay_synthetic(
    bootstrap: str, topic: str, rows: int, seed: int, run_id: str, decimals: int | None = None
) -> pd.DataFrame:
    """`rows` synthetic flows replayed to `topic` as nids-replay sends them; the frame with their flow
    ids. With `decimals`, numbers carry a sensor's precision (UNSW-NB15's have 6 decimals or fewer)
    instead of a double's 17 digits."""
    frame = synthetic_frame(rows, seed=seed)
    if decimals is not None:
        frame = at_sensor_precision(frame, decimals)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    summary = replay([frame], producer, topic, run_id=run_id)
    assert summary.failed == 0 and summary.delivered == rows
    return frame.assign(flow_id=[f"{run_id}-{i}" for i in range(rows)])


# -- Prometheus ----------------------------------------------------------------------------------
def start_prometheus(binary: str, config: Path, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """A real Prometheus with `config`, its data under `workdir`, its API on 127.0.0.1:`port`."""
    return subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def prometheus_ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def scraped_total(base: str, expr: str = "sum(nids_flows_consumed_total)") -> float:
    try:
        result = query(base, expr)
    except OSError:
        return 0.0
    return float(result[0]["value"][1]) if result else 0.0


def tool(name: str) -> str:
    """A console script of this project's environment (nids-replay, nids-detect, …)."""
    return str(Path(sys.executable).parent / name)

"""Replay producer throughput, unthrottled, into the local broker (target ≥ 100,000 flows/s).

    .venv/bin/python -m bench.producer_throughput [--flows 500000]

Runs nids-replay as a user would; also times the encoder alone, to show where the time goes.
"""

from __future__ import annotations

import argparse
import subprocess
import time

import numpy as np

from bench.common import ensure_broker, flows_frame, fresh_topics, replay_command
from nids_harness.checkout import REPO
from producer.encode import encode_chunk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=500_000)
    args = parser.parse_args()
    ensure_broker()
    frame, source = flows_frame(50_000)
    ids = np.char.add("b-", np.arange(len(frame)).astype(str))
    started = time.perf_counter()
    encode_chunk(frame, ids, np.zeros(len(frame)))
    print(f"encoder alone: {len(frame) / (time.perf_counter() - started):,.0f} flows/s ({source})")
    topics = fresh_topics("producer")
    result = subprocess.run(
        replay_command(topics.flows, "--limit", str(args.flows)), capture_output=True, text=True, cwd=REPO
    )
    print(result.stdout.strip() or result.stderr.strip()[-500:])


if __name__ == "__main__":
    main()

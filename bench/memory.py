"""Detector memory over a long run at a steady rate: RSS sampled every 10 s.

    .venv/bin/python -m bench.memory [--rate 20000] [--seconds 600]

Flat means: after a one-minute warm-up (model, librdkafka buffers and allocator arenas settling),
every sample lies within ±10 % of the RSS at the end of the warm-up. The warm-up ramp is printed too.
"""

from __future__ import annotations

import argparse
import subprocess
import time

import numpy as np

from bench.common import ensure_broker, fresh_topics, model_path, replay_command, rss_bytes
from nids_harness.checkout import REPO
from nids_harness.detector_process import start_ready_detector
from nids_harness.ports import free_port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warm-up", type=float, default=60, help="seconds excluded from the flatness check")
    args = parser.parse_args()
    bootstrap = ensure_broker()
    topics = fresh_topics("memory")
    detector = start_ready_detector(bootstrap, topics, f"bench-memory-{time.monotonic_ns()}", free_port(), model_path())
    replay = subprocess.Popen(
        replay_command(topics.flows, "--rate", str(args.rate), "--limit", str(int(args.rate * args.seconds))),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    samples = []
    started = time.monotonic()
    while replay.poll() is None:
        time.sleep(10)
        samples.append((time.monotonic() - started, rss_bytes(detector.pid) / 2**20))
        print(f"t={samples[-1][0]:5.0f} s  detector RSS {samples[-1][1]:7.1f} MiB", flush=True)
    print(replay.stdout.read().strip() if replay.stdout else "")
    detector.terminate()
    detector.wait(30)
    print(summarise(np.array(samples), args.warm_up))


def summarise(samples: np.ndarray, warm_up: float = 60.0) -> str:
    times, rss = samples.T
    baseline = rss[times <= warm_up][-1]
    later = rss[times > warm_up]
    low, high = (later.min() / baseline - 1) * 100, (later.max() / baseline - 1) * 100
    return (
        f"RSS {rss[0]:.1f} MiB at {times[0]:.0f} s, {baseline:.1f} MiB after the {warm_up:.0f} s warm-up; afterwards "
        f"min {later.min():.1f}, max {later.max():.1f} MiB ({low:+.1f}% .. {high:+.1f}%), last {rss[-1]:.1f} MiB; "
        f"target within ±10%: {'met' if max(abs(low), abs(high)) <= 10 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

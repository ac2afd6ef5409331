"""What the drift metrics cost per batch, next to scoring the same batch (both on the scorer thread).

    .venv/bin/python -m bench.drift [--rows 20000] [--repeats 50]

The deployed model (models/latest) and its reference profile; the dev file's flows when ../shared has
them, else synthetic ones.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry

from bench.common import flows_frame, model_path
from detector.drift import DriftMonitor
from detector.metrics import DetectorMetrics
from nids_model.artifact import load_checked


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    model, manifest, _ = load_checked(model_path())
    frame, source = flows_frame(args.rows)
    features = model.features({name: frame[name].to_numpy() for name in frame.columns})
    scores = model.score_features(features)
    drift = DriftMonitor(manifest.reference_profile, DetectorMetrics(CollectorRegistry()))

    def timed(work: Callable[[], object], repeats: int) -> np.ndarray:
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            work()
            seconds.append(time.perf_counter() - started)
        return np.array(seconds)

    timed(lambda: drift.observe(features.label, scores.attack_cat), 3)
    observe = timed(lambda: drift.observe(features.label, scores.attack_cat), args.repeats)
    score = timed(lambda: model.score_features(features), max(3, args.repeats // 10))
    print(
        f"{source}, batches of {args.rows:,}: drift metrics {np.median(observe) * 1000:.2f} ms per batch "
        f"(p90 {np.percentile(observe, 90) * 1000:.2f}), scoring {np.median(score) * 1000:.1f} ms: "
        f"{np.median(observe) / np.median(score):.1%} of the scorer thread's work"
    )


if __name__ == "__main__":
    main()

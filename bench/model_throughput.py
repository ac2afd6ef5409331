"""Deployed model batch prediction, batches of 10,000 rows (target ≥ 50,000 rows/s).

    .venv/bin/python -m bench.model_throughput

Prints, side by side in one run: the cascade on real traffic (the attack_cat model only scores the
flows the label model flags), the worst case where every flow is an attack, one and two OpenMP
threads, and a single pipeline's predict_proba for scale.
"""
from __future__ import annotations

import dataclasses

from threadpoolctl import threadpool_limits

from bench.common import flows_frame, model_path
from training.artifact import load_model
from training.evaluation import rows_per_second

BATCH = 10_000


def main() -> None:
    model, manifest = load_model(model_path())
    frame, source = flows_frame(50_000)
    batch = frame.sample(n=BATCH, random_state=0)
    flood = dataclasses.replace(model, threshold=0.0)
    print(f"model {manifest['version']} ({model.describe()['label']} + {model.describe()['attack_cat']}), {source}, "
          f"batches of {BATCH:,}; attack share in the batch {model.score(batch).is_attack.mean():.0%}")
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="openmp"):
            real = rows_per_second(model.score, batch, BATCH, repeats=5)
            worst = rows_per_second(flood.score, batch, BATCH, repeats=5)
            label_only = rows_per_second(model.label_pipeline.predict_proba, batch, BATCH, repeats=5)
        print(f"{threads} thread(s): cascade {real:9,.0f} rows/s | every flow an attack {worst:9,.0f} rows/s | "
              f"label pipeline alone {label_only:9,.0f} rows/s")


if __name__ == "__main__":
    main()

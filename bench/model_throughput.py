"""Deployed model batch prediction, batches of 10,000 rows (target ≥ 50,000 rows/s).

    .venv/bin/python -m bench.model_throughput [--models models/latest OTHER_MODEL_DIR ...] [--parts]

Prints, side by side in one run: the cascade on real traffic (the attack_cat model only scores the
flows the label model flags), every flow an attack, the worst case where every flow is a novel attack
(a batch of rows whose vector the model's training never held: the attack_cat model scores all of
them, where a seen attack's class comes from the seen table; the dev file holds the training rows,
so most of its rows are seen), one and two scoring threads, and the same cascade through
scikit-learn's own predict_proba (what the compiled scorer replaces) for scale. With several
--models, each row of figures for each model, alternating. With --parts, also each compiled forest
or boosting model of the cascade alone, one thread, on the batch's distinct rows: where a batch's
time goes.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from threadpoolctl import threadpool_limits

from bench.common import flows_frame, model_path
from nids_model.artifact import load_model
from nids_model.compiled import distinct_rows, probability_function
from nids_model.detection import DetectionModel, estimators_within
from training.evaluation import rows_per_second

BATCH = 10_000


def sklearn_cascade(model: DetectionModel, batch: pd.DataFrame) -> None:
    """The cascade with scikit-learn's predict_proba, every row scored (no de-duplication)."""
    positive = list(model.label_pipeline.classes_).index(1)
    flagged = model.label_pipeline.predict_proba(batch)[:, positive] >= model.threshold
    if flagged.any():
        model.attack_cat_pipeline.predict_proba(batch[flagged])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=Path, help="model directories (default: models/latest)")
    parser.add_argument("--parts", action="store_true", help="also time each tree ensemble of the cascade alone")
    args = parser.parse_args(argv)
    loaded = [load_model(path) for path in args.models or [model_path()]]
    frame, source = flows_frame(50_000)
    batch = frame.sample(n=BATCH, random_state=0)
    novel_batches = []
    for model, manifest in loaded:
        matrix = model.features(batch).label
        novel = novel_rows(model, frame)
        novel_batches.append(novel)
        described = model.describe()
        print(
            f"model {manifest.version} ({described['label']} + {described['attack_cat']}), {source}, "
            f"batches of {BATCH:,}; attack share {model.score(batch).is_attack.mean():.0%}; "
            f"distinct feature vectors {len(np.unique(matrix, axis=0)) / BATCH:.0%}; "
            f"seen in training {(model.regime(matrix) >= 0).mean():.0%}; novel batch {len(novel):,} rows"
        )
    for threads in (1, 2):
        for (model, manifest), novel in zip(loaded, novel_batches):
            measure(model, manifest.version, batch, novel, threads)
    if args.parts:
        for model, manifest in loaded:
            measure_parts(model, manifest.version, batch)
    return 0


def measure_parts(model: DetectionModel, version: str, batch: pd.DataFrame) -> None:
    """Each forest or boosting model inside the two pipelines' wrappers, compiled, on one thread."""
    features = model.features(batch)
    first, _ = distinct_rows(features.label)
    for target, pipeline, matrix in (
        ("label", model.label_pipeline, features.label[first]),
        ("attack_cat", model.attack_cat_pipeline, features.attack_cat[first]),
    ):
        for estimator in estimators_within(pipeline[-1]):
            if not isinstance(estimator, HistGradientBoostingClassifier | RandomForestClassifier):
                continue
            rate = rows_per_second(probability_function(estimator), matrix, len(matrix), repeats=5)
            print(
                f"{version} {target} {type(estimator).__name__} ({_size(estimator)}): "
                f"{rate:9,.0f} rows/s on the batch's {len(matrix):,} distinct rows"
            )


def _size(estimator: HistGradientBoostingClassifier | RandomForestClassifier) -> str:
    if isinstance(estimator, RandomForestClassifier):
        return f"{len(estimator.estimators_)} trees, {sum(e.tree_.node_count for e in estimator.estimators_):,} nodes"
    trees = [tree for iteration in estimator._predictors for tree in iteration]
    return f"{len(trees)} trees of at most {max(tree.get_n_leaf_nodes() for tree in trees)} leaves"


def novel_rows(model: DetectionModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Up to BATCH distinct rows of `frame` whose vector the model's seen table does not hold."""
    matrix = model.features(frame).label
    first, _ = distinct_rows(matrix)
    novel = first[model.regime(matrix[first]) < 0]
    return frame.iloc[np.sort(novel)[:BATCH]]


def measure(model: DetectionModel, version: str, batch: pd.DataFrame, novel: pd.DataFrame, threads: int) -> None:
    flood = dataclasses.replace(model, threshold=0.0)
    novel_only = dataclasses.replace(model, seen=None)  # the seen regime's lookup cost, side by side
    for scorer in (model, flood, novel_only):
        scorer.use_threads(threads)
    with threadpool_limits(limits=threads, user_api="openmp"):
        real = rows_per_second(model.score, batch, BATCH, repeats=5)
        worst = rows_per_second(flood.score, batch, BATCH, repeats=5)
        novel_worst = rows_per_second(flood.score, novel, len(novel), repeats=5)
        without_seen = rows_per_second(novel_only.score, batch, BATCH, repeats=5)
        reference = rows_per_second(lambda b: sklearn_cascade(model, b), batch, BATCH, repeats=3)
        reference_worst = rows_per_second(lambda b: sklearn_cascade(flood, b), batch, BATCH, repeats=3)
    print(
        f"{version} {threads} thread(s): compiled cascade {real:9,.0f} rows/s, every flow an attack {worst:9,.0f}, "
        f"every flow a novel attack {novel_worst:9,.0f}, without the seen regime {without_seen:9,.0f} | "
        f"scikit-learn cascade {reference:9,.0f}, every flow an attack {reference_worst:9,.0f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())

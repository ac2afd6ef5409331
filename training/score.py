"""nids-score: score a CSV of flows offline with a verified model; print metrics when it has labels."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nids_common.cli import EXIT_CODES_HELP, run, setup_logging
from nids_common.errors import EXIT_OK, UsageError
from nids_common.progress import progress
from nids_common.schema import ATTACK_CAT, LABEL
from nids_dataset.unsw import DEFAULT_CHUNK_ROWS, iter_flows, load_flows
from nids_model.artifact import load_model
from nids_model.detection import DetectionModel
from nids_model.manifest import Manifest, SplitRecipe, ValidationMetrics
from training.config import TrainingConfig
from training.evaluation import evaluate, format_report
from training.train import split


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-score", description=__doc__, epilog=EXIT_CODES_HELP)
    p.add_argument("--model", default="models/latest", help="model folder (default: models/latest)")
    p.add_argument("--input", required=True, help="UNSW-NB15 CSV, either format")
    p.add_argument(
        "--output",
        required=True,
        help="scored CSV: the input columns plus pred_label, pred_attack_cat, attack_probability",
    )
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: INFO)")
    p.add_argument(
        "--validation-split",
        action="store_true",
        help="score only the validation rows of the split the model was trained with (same seed and fraction)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: score_command(args), "nids-score")


def score_command(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    model, manifest = load_model(args.model)
    metrics: ValidationMetrics | None
    if args.validation_split:
        metrics = score_validation_split(model, manifest, args.input, args.output)
    else:
        metrics = score_file(model, args.input, args.output, args.chunk_rows)
    print(f"scored {args.input} with model {manifest.version} → {args.output}")
    if metrics is not None:
        print(format_report(metrics))
    return EXIT_OK


def score_frame(model: DetectionModel, frame: pd.DataFrame) -> pd.DataFrame:
    scores = model.score(frame)
    return frame.assign(
        pred_label=scores.is_attack.astype(np.int8),
        pred_attack_cat=scores.attack_cat,
        attack_probability=np.round(scores.attack_probability, 6),
    )


def score_validation_split(
    model: DetectionModel,
    manifest: Manifest,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
) -> ValidationMetrics:
    """Re-derive the validation rows of the model's own training split and score them."""
    recipe = manifest.validation_data
    if not isinstance(recipe, SplitRecipe):
        raise UsageError(f"model {manifest.version}: it was validated on separate files, not a split")
    config = TrainingConfig(seed=recipe.seed, validation_fraction=recipe.fraction)
    _, validation = split(load_flows([input_path]), config)
    scored = score_frame(model, validation)
    with atomic_output(output_path) as staging:
        scored.to_csv(staging, index=False)
    return evaluate(
        validation[LABEL].to_numpy(),
        validation[ATTACK_CAT].to_numpy(dtype=object),
        scored["pred_label"].to_numpy(),
        scored["pred_attack_cat"].to_numpy(dtype=object),
    ).metrics


@contextlib.contextmanager
def atomic_output(output_path: str | os.PathLike[str]) -> Iterator[Path]:
    """A staging path renamed onto `output_path` when the block succeeds, removed when it fails:
    a reader never sees a half-written scored file."""
    output = Path(output_path)
    staging = output.with_name(f".{output.name}.partial")
    try:
        yield staging
        os.replace(staging, output)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def score_file(
    model: DetectionModel,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ValidationMetrics | None:
    """Score chunk by chunk into a temporary file renamed at the end; return metrics when labelled."""
    truth_label, truth_cat, pred_label, pred_cat = [], [], [], []
    with atomic_output(output_path) as staging, progress() as bar, open(staging, "w", newline="") as sink:
        # The row count is unknown until the end: an indeterminate bar with the rows done so far.
        task = bar.add_task("scoring", total=None, info="")
        rows = 0
        for index, chunk in enumerate(iter_flows(input_path, chunk_rows)):
            scored = score_frame(model, chunk)
            scored.to_csv(sink, header=index == 0, index=False)
            rows += len(scored)
            if LABEL in chunk.columns and ATTACK_CAT in chunk.columns:
                truth_label.append(chunk[LABEL].to_numpy())
                truth_cat.append(chunk[ATTACK_CAT].to_numpy(dtype=object))
                pred_label.append(scored["pred_label"].to_numpy())
                pred_cat.append(scored["pred_attack_cat"].to_numpy(dtype=object))
            bar.update(task, completed=rows, info=f"{rows:,} rows")
    if not truth_label:
        return None
    return evaluate(
        np.concatenate(truth_label), np.concatenate(truth_cat), np.concatenate(pred_label), np.concatenate(pred_cat)
    ).metrics


if __name__ == "__main__":
    sys.exit(main())

"""nids-score: score a CSV of flows offline with a verified model; print metrics when it has labels."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nids_common.cli import EXIT_CODES_HELP, run
from nids_common.errors import EXIT_OK
from nids_common.progress import progress
from nids_common.schema import ATTACK_CAT, LABEL
from training.artifact import load_model
from training.data import DEFAULT_CHUNK_ROWS, iter_flows
from training.detection import DetectionModel
from training.evaluation import evaluate, format_report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-score", description=__doc__, epilog=EXIT_CODES_HELP)
    p.add_argument("--model", default="models/latest", help="model folder (default: models/latest)")
    p.add_argument("--input", required=True, help="UNSW-NB15 CSV, either format")
    p.add_argument("--output", required=True, help="scored CSV: the input columns plus pred_label, pred_attack_cat, attack_probability")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: score_command(args), "nids-score")


def score_command(args: argparse.Namespace) -> int:
    model, manifest = load_model(args.model)
    metrics = score_file(model, args.input, args.output, args.chunk_rows)
    print(f"scored {args.input} with model {manifest['version']} → {args.output}")
    if metrics is not None:
        print(format_report(metrics))
    return EXIT_OK


def score_frame(model: DetectionModel, frame: pd.DataFrame) -> pd.DataFrame:
    scores = model.score(frame)
    return frame.assign(pred_label=scores.is_attack.astype(np.int8), pred_attack_cat=scores.attack_cat,
                        attack_probability=np.round(scores.attack_probability, 6))


def score_file(model: DetectionModel, input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> dict | None:
    """Score chunk by chunk into a temporary file renamed at the end; return metrics when labelled."""
    output = Path(output_path)
    staging = output.with_name(f".{output.name}.partial")
    truth_label, truth_cat, pred_label, pred_cat = [], [], [], []
    try:
        with progress() as bar, open(staging, "w", newline="") as sink:
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
        os.replace(staging, output)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    if not truth_label:
        return None
    return evaluate(np.concatenate(truth_label), np.concatenate(truth_cat), np.concatenate(pred_label), np.concatenate(pred_cat))


if __name__ == "__main__":
    sys.exit(main())

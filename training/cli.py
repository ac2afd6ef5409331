"""nids-train: train the detector's model on UNSW-NB15 files (or synthetic flows) and write an artifact."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from nids_common.cli import EXIT_CODES_HELP, run, setup_logging
from nids_common.config import describe_json
from nids_common.errors import EXIT_OK, ArtifactError, InputError
from nids_dataset.synthetic import synthetic_frame
from nids_model import artifact
from training.config import DEFAULT_PATH, load
from training.evaluation import format_report
from training.train import run_training

log = logging.getLogger("nids.train")
DATA_DIR = Path("data")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-train", description=__doc__, epilog=EXIT_CODES_HELP)
    p.add_argument(
        "--data", action="append", default=[], metavar="PATH", help="UNSW-NB15 CSV, either format (repeatable)"
    )
    p.add_argument(
        "--test", action="append", default=[], metavar="PATH", help="validate on these files instead of an 80/20 split"
    )
    p.add_argument("--out", default="models", help="models folder (default: models)")
    p.add_argument("--config", default=str(DEFAULT_PATH), help=f"training config (default: {DEFAULT_PATH})")
    p.add_argument("--compare", action="store_true", help="train and tune every family and write the comparison table")
    p.add_argument(
        "--synthetic", type=int, metavar="ROWS", help="train on this many synthetic flows (no dataset needed)"
    )
    p.add_argument(
        "--max-false-positive-rate",
        type=float,
        metavar="RATE",
        help="choose the label threshold with the highest recall that calls at most RATE of Normal flows attacks "
        "(e.g. 0.01); overrides max_false_positive_rate in the config",
    )
    p.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when OUT/latest exists; else train on data/*.csv, or synthetic flows when there are none",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: train_command(args), "nids-train")


def train_command(args: argparse.Namespace) -> int:
    config = load(args.config)
    if args.max_false_positive_rate is not None:
        config = dataclasses.replace(config, max_false_positive_rate=args.max_false_positive_rate)
    setup_logging(config.log_level)
    log.info("effective config: %s", describe_json(config))
    if args.if_missing:
        try:
            artifact.resolve(args.out)
            log.info("%s/latest exists: nothing to train", args.out)
            return EXIT_OK
        except ArtifactError:
            pass  # no model yet: train one
        if not args.data and args.synthetic is None:
            args.data = [str(p) for p in sorted(DATA_DIR.glob("*.csv"))]
            if not args.data:
                args.synthetic = 60_000
    if args.synthetic is not None:
        log.info("training on %d synthetic flows (no dataset given)", args.synthetic)
        frame = synthetic_frame(args.synthetic, seed=config.seed)
        result = run_training(
            [],
            args.out,
            config,
            test=args.test,
            compare=args.compare,
            frame=frame,
            data_description={"synthetic_rows": args.synthetic, "seed": config.seed},
        )
    else:
        if not args.data:
            raise InputError("no training data: give --data PATH (or --synthetic ROWS)")
        result = run_training(args.data, args.out, config, test=args.test, compare=args.compare)
    print(f"model {result.manifest.version} written to {result.path}")
    print(format_report(result.manifest.validation_metrics))
    print(
        f"prediction: {result.manifest.rows_per_second:,.0f} rows/s "
        f"in batches of {result.manifest.throughput_batch_rows:,}; "
        f"trained in {result.manifest.training_seconds} s"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

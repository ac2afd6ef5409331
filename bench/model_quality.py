"""The deployed settings cross-validated on every row of a data file (not only the training split):
grouped and plain 5-fold figures, per regime, as `nids-train` reports them for its training rows.

    python -m bench.model_quality [--data ../shared/data/unsw-nb15/unsw_nb15_dev.csv] [--seed 42]
        [--label hgb] [--attack-cat rf+hgb] [--ceiling] [--nested] [--set hgb.max_iter=80 ...]

Without --data and without the dev file, 60,000 synthetic flows (which repeat no vector: no seen rows).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import DEV_DATA
from nids_common.schema import ATTACK_CAT, FEATURES, LABEL
from nids_dataset.synthetic import synthetic_frame
from nids_dataset.unsw import load_flows
from nids_model.compiled import distinct_rows
from training.candidates import fit_candidate, held_out_scores
from training.config import TrainingConfig
from training.models import DEFAULT_PARAMS, with_settings
from training.regimes import HeldOut, fit_regimes, fold_scores, nested_plain_decided
from training.seen_ceiling import file_oracle, fold_oracle, from_training_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEV_DATA) if DEV_DATA.exists() else None)
    parser.add_argument("--label", default="hgb", choices=("hgb", "rf"))
    parser.add_argument("--attack-cat", default="rf+hgb", choices=("hgb", "rf", "rf+hgb"))
    parser.add_argument("--seed", type=int, default=TrainingConfig.seed, help="of the folds and the models")
    parser.add_argument(
        "--ceiling", action="store_true", help="also what a rule for seen flows could reach (training/seen_ceiling.py)"
    )
    parser.add_argument(
        "--nested",
        action="store_true",
        help="also plain macro-F1 with the seen rule tuned in nested folds (training.regimes.nested_plain_decided)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[MEMBER.]PARAM=VALUE",
        help="an attack_cat setting other than the default (a member's, as hgb.max_iter=80, in an average)",
    )
    args = parser.parse_args(argv)
    try:
        attack_cat_params = with_settings(args.attack_cat, DEFAULT_PARAMS[(args.attack_cat, ATTACK_CAT)], args.set)
    except ValueError as error:
        parser.error(f"--set {error}")
    config = TrainingConfig(seed=args.seed)
    flows = load_flows([args.data], config.chunk_rows) if args.data else synthetic_frame(60_000, seed=config.seed)
    started = time.perf_counter()
    label, attack_cat = (
        held_out_scores(
            fit_candidate(family, target, "all", FEATURES, params, flows, flows.iloc[:2000], config), flows, config
        )
        for family, target, params in (
            (args.label, LABEL, DEFAULT_PARAMS[(args.label, LABEL)]),
            (args.attack_cat, ATTACK_CAT, attack_cat_params),
        )
    )
    regimes = fit_regimes(label, attack_cat, flows, config.decision_threshold, config.seed)
    cv = regimes.cross_validation
    print(
        f"{args.data}: {len(flows):,} rows, label {args.label}, attack_cat {args.attack_cat}, seed {args.seed}, "
        f"{time.perf_counter() - started:.0f} s; seen share of plain folds {cv.seen_share:.3f}"
    )
    for name in (
        "grouped",
        "plain",
        "plain_seen",
        "plain_novel",
        "plain_without_seen_rule",
        "plain_seen_without_seen_rule",
    ):
        folds = getattr(cv, name).folds
        print(
            f"{name:>30}: label accuracy {folds.label_accuracy_mean:.4f} ± {folds.label_accuracy_std:.4f}, "
            f"macro-F1 {folds.attack_cat_macro_f1_mean:.4f} ± {folds.attack_cat_macro_f1_std:.4f} "
            f"(folds {', '.join(f'{f:.3f}' for f in folds.attack_cat_macro_f1)})"
        )
    print(
        f"{'class':>16} "
        + " ".join(
            f"{r + ' P/R':>19}" for r in ("grouped", "plain seen", "plain novel", "plain all", "plain all before")
        )
    )
    for cls in cv.plain.per_class:
        cells = []
        for scores in (cv.grouped, cv.plain_seen, cv.plain_novel, cv.plain, cv.plain_without_seen_rule):
            m = scores.per_class.get(cls)
            cells.append(f"{m.precision:.3f}/{m.recall:.3f}" if m and m.support else "—")
        print(f"{cls:>16} " + " ".join(f"{c:>19}" for c in cells))
    if args.nested:
        nested = nested_plain_decided(label, attack_cat, flows, regimes.held, config.seed)
        every_row = np.ones(len(nested), dtype=bool)
        nested_scores = fold_scores(regimes.held.rows, nested, regimes.held.plain.fold, every_row)
        print(
            f"plain macro-F1, the seen rule tuned in nested folds: {nested_scores.attack_cat_macro_f1_mean:.4f} "
            f"± {nested_scores.attack_cat_macro_f1_std:.4f} "
            f"(cross-fitted, as reported: {cv.plain.folds.attack_cat_macro_f1_mean:.4f})"
        )
    if args.ceiling:
        print_ceiling(regimes.held, regimes.plain_decided)
    return 0


def print_ceiling(held: HeldOut, decided: np.ndarray) -> None:
    vector = distinct_rows(held.matrix)[1]
    figures = {
        "the deployed rule": decided,
        "oracle: seen vectors decided knowing their held-out copies' classes over the file": file_oracle(
            held, decided, vector
        ),
        "the same oracle, only vectors with >= 20 rows in the file": file_oracle(held, decided, vector, min_rows=20),
        "oracle per fold, knowing also which copies fell in it": fold_oracle(held, decided, vector),
    }
    for min_rows in (1, 5, 20):
        figures[f"attack class of seen attacks by training counts, vectors with >= {min_rows} training rows"] = (
            from_training_counts(held, decided, vector, min_rows)
        )
    every_row = np.ones(len(decided), dtype=bool)
    for name, result in figures.items():
        scores = fold_scores(held.rows, result, held.plain.fold, every_row)
        print(f"plain macro-F1, {name}: {scores.attack_cat_macro_f1_mean:.4f} ± {scores.attack_cat_macro_f1_std:.4f}")


if __name__ == "__main__":
    raise SystemExit(main())

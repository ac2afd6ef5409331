"""nids-train's phases: the phase clock, and what a trained artifact records of its run."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from nids_common.progress import progress
from nids_common.schema import ATTACK_CAT, FEATURES, LABEL
from nids_dataset.synthetic import synthetic_frame
from nids_model import artifact
from tests.fixtures import FAST_TRAINING
from training.train import PhaseClock, fit_and_select, load_and_split

PHASES = {
    "load and split",
    "feature analysis",
    "models",
    "operating point, regimes, cross-validation",
    "measure, canary, profile",
}


def test_a_phase_entered_twice_adds_up() -> None:
    ticks = iter([0.0, 1.0, 3.0, 10.0, 14.0, 20.0])
    clock = PhaseClock(now=lambda: next(ticks))
    with clock.phase("models"):
        pass
    with clock.phase("models"):
        pass
    assert clock.seconds == {"models": 6.0}
    assert clock.total() == 20.0


def test_a_failing_phase_is_still_timed() -> None:
    ticks = iter([0.0, 2.0, 5.0])
    clock = PhaseClock(now=lambda: next(ticks))
    try:
        with clock.phase("load and split"):
            raise ValueError("bad file")
    except ValueError:
        pass
    assert clock.seconds == {"load and split": 3.0}


def test_the_manifest_times_every_phase_of_the_run(trained_model: Path) -> None:
    manifest = artifact.read_manifest(trained_model)
    assert set(manifest.training_seconds_by_phase) == PHASES
    assert sum(manifest.training_seconds_by_phase.values()) <= manifest.training_seconds + 0.05 * len(PHASES)
    assert manifest.training_seconds_by_phase["models"] > 0


def test_the_fallback_families_are_fitted_only_when_the_preferred_pair_is_too_slow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = dataclasses.replace(FAST_TRAINING, deploy_candidates=("rf+hgb", "hgb"))
    with caplog.at_level(logging.INFO, logger="nids.train"), progress(enabled=False) as bar:
        splits = load_and_split([], [], config, synthetic_frame(1500, seed=4))
        fitted, selection = fit_and_select(splits, {"all": FEATURES}, False, config, bar)
    assert [(c.family, c.target) for c in fitted.candidates] == [("rf+hgb", ATTACK_CAT), ("hgb", LABEL)]
    assert (selection.chosen.label.family, selection.chosen.attack_cat.family) == ("hgb", "rf+hgb")
    assert "training on" in caplog.text and "fitting" not in caplog.text
    caplog.clear()

    too_slow = dataclasses.replace(config, min_rows_per_second=1e12)
    with caplog.at_level(logging.INFO, logger="nids.train"), progress(enabled=False) as bar:
        fitted, selection = fit_and_select(splits, {"all": FEATURES}, False, too_slow, bar)
    assert [(c.family, c.target) for c in fitted.candidates] == [
        ("rf+hgb", ATTACK_CAT),
        ("hgb", LABEL),
        ("hgb", ATTACK_CAT),
    ]
    assert [(p.label.family, p.attack_cat.family) for p in selection.pairs] == [("hgb", "rf+hgb"), ("hgb", "hgb")]
    # No pair is fast enough: the fastest is deployed, and every pair was scored on held-out folds.
    assert selection.chosen is max(selection.pairs, key=lambda p: p.worst_case_rows_per_second)
    assert all(c.held_out_score is not None for c in selection.candidates if c.target == LABEL)
    assert "below 1000000000000: fitting hgb/attack_cat too" in caplog.text


def test_the_report_counts_the_validation_rows_by_regime(trained_model: Path) -> None:
    manifest = artifact.read_manifest(trained_model)
    report = (trained_model / "report.md").read_text()
    # A grouped split keeps every training vector out of the validation rows: the seen regime decides none.
    assert (
        f"- its rows by regime: 0 seen (0.0%: training held their exact vector, so the seen regime decided them), "
        f"{manifest.rows.validation:,} novel (the grouped split keeps every full feature vector on one side)."
    ) in report
    metrics = manifest.validation_metrics
    assert f"| novel | {metrics.rows} | {metrics.label_accuracy:.4f} | {metrics.attack_cat_macro_f1:.4f} |" in report

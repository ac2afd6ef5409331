"""nids-train's phases: the phase clock, and what a trained artifact records of its run."""

from __future__ import annotations

from pathlib import Path

from nids_model import artifact
from training.train import PhaseClock

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

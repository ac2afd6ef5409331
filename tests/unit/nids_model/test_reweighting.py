import numpy as np
import pytest

from nids_model.reweighting import DEFAULT_GRID, coordinate_ascent, macro_f1, scaled_argmax_line, tune_class_scale


def tied_probabilities(seed: int, rows: int = 3000, classes: int = 6) -> np.ndarray:
    """Probabilities on a coarse grid, so that scaled classes often tie exactly."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5, size=(rows, classes)).astype(np.float64) / 4


def argmax_ascent(probabilities: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, float]:
    """Coordinate ascent that scores every trial by a full product and argmax: the reference."""

    def brute_force(scale: np.ndarray) -> float:
        return macro_f1(truth, (probabilities * scale).argmax(axis=1), probabilities.shape[1])

    return coordinate_ascent(brute_force, np.ones(probabilities.shape[1]), DEFAULT_GRID)


@pytest.mark.parametrize("seed", [0, 1])
def test_scaled_argmax_line_is_argmax_bit_for_bit(seed: int) -> None:
    probabilities = tied_probabilities(seed)
    scale = np.array([1.0, 0.5, 2.0, 1.0, 4.0, 0.25])
    for index in range(probabilities.shape[1]):
        decide = scaled_argmax_line(probabilities, scale, index)
        for factor in (*DEFAULT_GRID, 0.0, 8.0):
            trial = scale.copy()
            trial[index] = factor
            expected = (probabilities * trial).argmax(axis=1)
            assert np.array_equal(decide(factor), expected), (index, factor)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tune_class_scale_is_coordinate_ascent_over_argmax(seed: int) -> None:
    probabilities = tied_probabilities(seed)
    truth = np.random.default_rng(seed + 10).integers(0, probabilities.shape[1], len(probabilities))
    # Half the rows follow other scales than ones: a signal the tuning should find.
    hidden = np.array([1.0, 2.8, 0.5, 1.0, 1.4, 0.7])
    truth[: len(truth) // 2] = (probabilities[: len(truth) // 2] * hidden).argmax(axis=1)

    expected_scale, expected_score = argmax_ascent(probabilities, truth)
    scale, score = tune_class_scale(probabilities, truth)
    assert np.array_equal(scale, expected_scale)
    assert score == expected_score
    assert not np.array_equal(scale, np.ones(probabilities.shape[1]))  # the tuning moved something


def test_tune_class_scale_with_nan_decides_as_argmax_does() -> None:
    probabilities = tied_probabilities(3)
    probabilities[::7, 2] = np.nan
    truth = np.random.default_rng(4).integers(0, probabilities.shape[1], len(probabilities))

    expected = argmax_ascent(probabilities, truth)
    scale, score = tune_class_scale(probabilities, truth)
    assert np.array_equal(scale, expected[0]) and score == expected[1]

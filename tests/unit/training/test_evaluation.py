import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from training.evaluation import class_metrics, evaluate, evaluate_by_regime


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_metrics_are_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = np.array(["Normal", "Generic", "Exploits", "DoS", "Worms", "Novel"], dtype=object)
    truth = names[rng.integers(0, 5, 500)]  # "Novel" only ever predicted: no support
    predicted = names[rng.integers(0, 6, 500)]
    predicted[predicted == "Worms"] = "DoS"  # Worms has support and is never called: precision 0 by zero_division
    result = class_metrics(truth, predicted)

    classes = list(result.classes)
    assert classes == ["Normal", "Generic", "Exploits", "DoS", "Worms", "Novel"]
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=classes, zero_division=0)
    for position, name in enumerate(classes):
        row = result.per_class[name]
        assert row.precision == pytest.approx(precision[position], abs=1e-15)
        assert row.recall == pytest.approx(recall[position], abs=1e-15)
        assert row.f1 == pytest.approx(f1[position], abs=1e-15)
        assert row.support == support[position]
    present = [c for c, s in zip(classes, support) if s > 0]
    assert result.macro_f1 == pytest.approx(f1_score(truth, predicted, labels=present, average="macro"), abs=1e-15)
    assert result.accuracy == pytest.approx(accuracy_score(truth, predicted), abs=1e-15)
    assert np.array_equal(np.array(result.confusion_matrix), confusion_matrix(truth, predicted, labels=classes))


def test_class_metrics_of_label_text() -> None:
    result = class_metrics(np.array(["0", "1", "1", "0"]), np.array(["0", "1", "0", "0"]))
    assert result.accuracy == 0.75
    assert result.per_class["1"].precision == 1.0 and result.per_class["1"].recall == 0.5
    assert result.confusion_matrix == ((2, 0), (1, 1))


def test_each_regime_is_scored_on_its_own_rows() -> None:
    y_label = np.array([1, 0, 1, 1, 0])
    y_cat = np.array(["DoS", "Normal", "Worms", "DoS", "Normal"])
    pred_label = np.array([1, 1, 0, 1, 0])
    pred_cat = np.array(["DoS", "Exploits", "Normal", "DoS", "Normal"])
    regime = np.array([0, 7, -1, -1, -1])  # the first two rows' vectors are the seen table's 0 and 7

    by_regime = evaluate_by_regime(y_label, y_cat, pred_label, pred_cat, regime)

    assert list(by_regime) == ["seen", "novel"]
    assert by_regime["seen"] == evaluate(y_label[:2], y_cat[:2], pred_label[:2], pred_cat[:2])
    assert by_regime["novel"] == evaluate(y_label[2:], y_cat[2:], pred_label[2:], pred_cat[2:])


def test_a_regime_without_rows_is_left_out() -> None:
    truth = np.array([1, 0])
    cats = np.array(["DoS", "Normal"])

    assert list(evaluate_by_regime(truth, cats, truth, cats, np.array([-1, -1]))) == ["novel"]
    assert list(evaluate_by_regime(truth, cats, truth, cats, np.array([0, 1]))) == ["seen"]

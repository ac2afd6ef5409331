import numpy as np
import pandas as pd

from nids_model.manifest import ClassMetrics, ValidationMetrics
from training.evaluation import evaluate
from training.report import candidate_table, per_class_table, validation_regimes


def test_the_validation_table_prints_support_as_a_count() -> None:
    metrics = ValidationMetrics(
        rows=5193,
        label_accuracy=0.98,
        label_f1=0.97,
        attack_cat_accuracy=0.9,
        attack_cat_macro_f1=0.7,
        per_class={
            "Normal": ClassMetrics(precision=0.97, recall=0.985, f1=0.9775, support=5181),
            "Worms": ClassMetrics(precision=0.8, recall=0.6667, f1=0.7273, support=12),
        },
        classes=("Normal", "Worms"),
    )

    lines = per_class_table(metrics).splitlines()

    assert lines[0] == "| class | precision | recall | f1 | support |"
    assert lines[2] == "| Normal | 0.970 | 0.985 | 0.978 | 5181 |"
    assert lines[3] == "| Worms | 0.800 | 0.667 | 0.727 | 12 |"


def test_the_candidate_table_prints_scores_to_four_places_and_fit_seconds_to_one() -> None:
    frame = pd.DataFrame([{"model": "HistGradientBoosting", "macro-F1": 0.642513, "fit s": 28.4, "rows/s": 47136}])

    lines = candidate_table(frame).splitlines()

    assert lines[2] == "| HistGradientBoosting | 0.6425 | 28.4 | 47136 |"


def test_the_report_says_which_regime_decided_the_validation_rows() -> None:
    seen = evaluate(np.array([1, 0]), np.array(["DoS", "Normal"]), np.array([1, 0]), np.array(["DoS", "Normal"]))
    novel = evaluate(
        np.array([1, 1, 0]),
        np.array(["DoS", "Worms", "Normal"]),
        np.array([1, 0, 0]),
        np.array(["DoS", "Normal", "Normal"]),
    )

    lines = "\n".join(validation_regimes({"seen": seen, "novel": novel}, grouped_split=True)).splitlines()

    assert lines[0].startswith(
        "- its rows by regime: 2 seen (40.0%: training held their exact vector, so the seen regime decided "
        "them), 3 novel. Each regime's macro-F1 averages the classes present in its own rows"
    )
    assert lines[1:5] == [
        "",
        "| regime | rows | label accuracy | attack_cat macro-F1 |",
        "|---|---|---|---|",
        f"| seen | 2 | 1.0000 | {seen.metrics.attack_cat_macro_f1:.4f} |",
    ]
    assert lines[5:] == [
        f"| novel | 3 | 0.6667 | {novel.metrics.attack_cat_macro_f1:.4f} |",
        "",
        "Per class, all validation rows:",
    ]


def test_a_grouped_split_without_seen_rows_says_why() -> None:
    novel = evaluate(np.array([1, 0]), np.array(["DoS", "Normal"]), np.array([1, 0]), np.array(["DoS", "Normal"]))

    grouped = validation_regimes({"novel": novel}, grouped_split=True)[0]
    from_test_files = validation_regimes({"novel": novel}, grouped_split=False)[0]

    assert grouped.startswith("- its rows by regime: 0 seen (0.0%") and (
        "2 novel (the grouped split keeps every full feature vector on one side)." in grouped
    )
    assert from_test_files.endswith("2 novel.")

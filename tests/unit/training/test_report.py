from nids_model.manifest import ClassMetrics, ValidationMetrics
from training.report import per_class_table


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

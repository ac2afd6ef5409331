"""Metrics for the two targets and the throughput measurement shared by training, scoring and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from nids_common.schema import ATTACK_CLASSES
from nids_model.manifest import ClassMetrics, ValidationMetrics
from nids_model.reweighting import class_f1, confusion_macro_f1, pair_counts, ratio_or_zero

ConfusionMatrix = tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted, in `classes` order


class TargetMetrics(msgspec.Struct, frozen=True):
    """One target's figures (label or attack_cat)."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    classes: tuple[str, ...]
    confusion_matrix: ConfusionMatrix


class Evaluation(msgspec.Struct, frozen=True):
    """The cascade's figures, and its attack_cat confusion matrix (in `metrics.classes` order)."""

    metrics: ValidationMetrics
    confusion_matrix: ConfusionMatrix


def class_order(labels: Sequence[str]) -> list[str]:
    """Known classes in their canonical order, then any others the data brings."""
    present = set(labels)
    return [c for c in ATTACK_CLASSES if c in present] + sorted(present - set(ATTACK_CLASSES))


def class_metrics(truth: np.ndarray, predicted: np.ndarray) -> TargetMetrics:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix of one target:
    scikit-learn's figures (zero_division=0), counted from one confusion matrix of class codes, since
    its metric functions each re-encode the text labels (0.6 s a call on 46,000 rows)."""
    classes = class_order(list(np.unique(truth)) + list(np.unique(predicted)))
    index = pd.Index(classes)
    confusion = pair_counts(index.get_indexer(truth), index.get_indexer(predicted), len(classes), len(classes))
    hits, support, called = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    precision, recall, f1 = ratio_or_zero(hits, called), ratio_or_zero(hits, support), class_f1(hits, support, called)
    return TargetMetrics(
        accuracy=float(hits.sum() / max(len(truth), 1)),
        # Macro-F1 over the classes that occur in the truth, as classification_report computes it.
        macro_f1=confusion_macro_f1(confusion) if len(truth) else 0.0,
        per_class={
            c: ClassMetrics(precision=float(p), recall=float(r), f1=float(f), support=int(s))
            for c, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        classes=tuple(classes),
        confusion_matrix=tuple(tuple(row) for row in confusion.astype(np.int64).tolist()),
    )


def evaluate(y_label: np.ndarray, y_cat: np.ndarray, pred_label: np.ndarray, pred_cat: np.ndarray) -> Evaluation:
    attack_cat = class_metrics(y_cat, pred_cat)
    metrics = ValidationMetrics(
        rows=len(y_label),
        label_accuracy=float(accuracy_score(y_label, pred_label)),
        label_f1=float(f1_score(y_label, pred_label, zero_division=0)),
        attack_cat_accuracy=attack_cat.accuracy,
        attack_cat_macro_f1=attack_cat.macro_f1,
        per_class=attack_cat.per_class,
        classes=attack_cat.classes,
    )
    return Evaluation(metrics, attack_cat.confusion_matrix)


def evaluate_by_regime(
    y_label: np.ndarray, y_cat: np.ndarray, pred_label: np.ndarray, pred_cat: np.ndarray, regime: np.ndarray
) -> dict[str, Evaluation]:
    """`evaluate` of the rows the seen regime decided ("seen") and of the rest ("novel"); a regime
    without rows is left out. `regime` is `DetectionModel.regime`'s: per row the seen table's index of
    its vector (0 included), -1 for a novel one."""
    seen = np.asarray(regime) >= 0
    return {
        name: evaluate(y_label[rows], y_cat[rows], pred_label[rows], pred_cat[rows])
        for name, rows in (("seen", seen), ("novel", ~seen))
        if rows.any()
    }


def format_report(metrics: ValidationMetrics) -> str:
    lines = [
        f"label accuracy {metrics.label_accuracy:.4f}   attack_cat macro-F1 {metrics.attack_cat_macro_f1:.4f}   "
        f"attack_cat accuracy {metrics.attack_cat_accuracy:.4f}   rows {metrics.rows}",
        f"{'class':>16} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
    ]
    for cls, row in metrics.per_class.items():
        lines.append(f"{cls:>16} {row.precision:9.3f} {row.recall:9.3f} {row.f1:9.3f} {row.support:8d}")
    return "\n".join(lines)


def rows_per_second(predict: Callable[[Any], Any], batch: Any, rows: int, repeats: int = 3) -> float:
    """Best of `repeats` timed calls on one batch (after a warm-up): the steady-state batch rate."""
    predict(batch)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        predict(batch)
        best = min(best, time.perf_counter() - started)
    return rows / best

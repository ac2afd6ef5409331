"""DetectionModel: the two per-target pipelines and the alert rule that keeps their verdicts consistent."""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
from sklearn.pipeline import Pipeline

from nids_common.schema import NORMAL
from training.features import ColumnTable


@dataclasses.dataclass(frozen=True)
class Scores:
    attack_probability: np.ndarray  # P(label = 1) from the label pipeline
    is_attack: np.ndarray  # attack_probability >= threshold
    attack_cat: np.ndarray  # Normal exactly where is_attack is False
    class_probabilities: np.ndarray  # rows × classes from the attack_cat pipeline; NaN rows where not an attack


@dataclasses.dataclass
class DetectionModel:
    """The alert rule: the label pipeline decides *whether* a flow is an attack (probability ≥ threshold),
    the attack_cat pipeline decides *which*, taking its most probable non-Normal class. So an attack
    verdict never says Normal, and a Normal verdict never names an attack."""

    label_pipeline: Pipeline
    attack_cat_pipeline: Pipeline
    threshold: float = 0.5

    def __post_init__(self) -> None:
        self.classes = tuple(str(c) for c in self.attack_cat_pipeline.classes_)
        self._positive_column = list(self.label_pipeline.classes_).index(1)
        self._normal_index = self.classes.index(NORMAL)
        label_pre, cat_pre = self.label_pipeline[0], self.attack_cat_pipeline[0]
        # Both pipelines usually see the same features with the same fitted vocabulary: transform once.
        self._shared_matrix = (
            tuple(label_pre.features) == tuple(cat_pre.features) and label_pre.scale == cat_pre.scale
            and label_pre.vocabularies_ == cat_pre.vocabularies_ and label_pre.medians_ == cat_pre.medians_
        )

    def score(self, flows: ColumnTable) -> Scores:
        """A cascade: the attack_cat pipeline runs only on the rows the label pipeline calls attacks,
        since a Normal verdict needs no class. Its cost is paid in full only under a flood of attacks."""
        label_matrix = self.label_pipeline[0].transform(flows)
        label_model = self.label_pipeline[-1]
        attack_probability = label_model.predict_proba(label_matrix)[:, self._positive_column]
        attacks = np.flatnonzero(attack_probability >= self.threshold)
        class_probabilities = np.full((len(attack_probability), len(self.classes)), np.nan)
        if attacks.size:
            if self._shared_matrix:
                cat_matrix = label_matrix[attacks]
            else:
                cat_matrix = self.attack_cat_pipeline[0].transform(_take_rows(flows, attacks))
            class_probabilities[attacks] = self.attack_cat_pipeline[-1].predict_proba(cat_matrix)
        return self.decide(attack_probability, class_probabilities)

    def decide(self, attack_probability: np.ndarray, class_probabilities: np.ndarray) -> Scores:
        is_attack = attack_probability >= self.threshold
        attack_only = np.nan_to_num(class_probabilities, nan=0.0)
        attack_only[:, self._normal_index] = -1.0
        names = np.asarray(self.classes, dtype=object)
        attack_cat = np.where(is_attack, names[attack_only.argmax(axis=1)], NORMAL)
        return Scores(attack_probability, is_attack, attack_cat, class_probabilities)

    def describe(self) -> Mapping[str, object]:
        return {
            "label": type(self.label_pipeline[-1]).__name__,
            "attack_cat": type(self.attack_cat_pipeline[-1]).__name__,
            "threshold": self.threshold,
            "classes": list(self.classes),
        }


def _take_rows(flows: ColumnTable, rows: np.ndarray) -> ColumnTable:
    if isinstance(flows, Mapping):
        return {name: np.asarray(values)[rows] for name, values in flows.items()}
    return flows.iloc[rows]

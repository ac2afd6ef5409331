"""Training configuration (config/training.yaml)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Literal

from nids_common.config import load_config

DEFAULT_PATH = Path("config/training.yaml")
ModelFamily = Literal["hgb", "rf", "knn", "rf+hgb"]
MODEL_FAMILIES: tuple[ModelFamily, ...] = typing.get_args(ModelFamily)
ATTACK_CAT_ONLY_FAMILIES: tuple[ModelFamily, ...] = ("rf+hgb",)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    seed: int = 42
    validation_fraction: float = 0.2
    # The deployed model must score at least this many rows/s in batches of `throughput_batch_rows`.
    min_rows_per_second: float = 50_000
    throughput_batch_rows: int = 10_000
    # Families trained for deployment without --compare, in order of preference: per target the first
    # that has a model of it (rf+hgb, the average of a forest and boosting, has an attack_cat model
    # only), the others only when that pair scores below min_rows_per_second. --compare trains every
    # family and deploys the best fast-enough pair.
    deploy_candidates: tuple[ModelFamily, ...] = ("rf+hgb", "hgb")
    # Bounded hyper-parameter search: this many sampled settings per model and target (--compare only).
    search_iterations: int = 4
    # Rows sampled from the training split for feature analysis (RFE, mutual information).
    analysis_rows: int = 12_000
    rfe_feature_counts: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 36)
    selection_tolerance: float = 0.005
    chunk_rows: int = 200_000
    # P(attack) at or above which a flow is an attack; the attack_cat pipeline then names the class.
    decision_threshold: float = 0.5
    # An operator's budget: when set, the threshold becomes the lowest (highest recall) that calls at
    # most this share of Normal flows attacks, and decision_threshold is not used.
    max_false_positive_rate: float | None = None
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not 0.05 <= self.validation_fraction <= 0.5:
            raise ValueError("validation_fraction: must be within 0.05..0.5")
        if not set(self.deploy_candidates) - set(ATTACK_CAT_ONLY_FAMILIES):
            label_families = ", ".join(f for f in MODEL_FAMILIES if f not in ATTACK_CAT_ONLY_FAMILIES)
            raise ValueError(f"deploy_candidates: name at least one of {label_families} (a label model)")
        if self.search_iterations < 1:
            raise ValueError("search_iterations: must be >= 1")
        if not 0 < self.decision_threshold < 1:
            raise ValueError("decision_threshold: must be within (0, 1)")
        if self.max_false_positive_rate is not None and not 0 <= self.max_false_positive_rate < 1:
            raise ValueError("max_false_positive_rate: must be within [0, 1)")
        if self.min_rows_per_second <= 0:
            raise ValueError("min_rows_per_second: must be > 0")


def load(path: str | Path = DEFAULT_PATH) -> TrainingConfig:
    return load_config(TrainingConfig, path)

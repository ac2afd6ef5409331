"""The artifact's manifest (manifest.json) as typed records: what training recorded, what writing the
artifact added, and what every loader reads. Unknown fields are refused: a manifest of another format
is not guessed at.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from nids_common.errors import ArtifactError


class DataFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    sha256: str


class SyntheticData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    synthetic_rows: int
    seed: int


class SplitRecipe(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the validation rows were split off the training data: enough to split them off again."""

    split: str
    fraction: float
    seed: int


class RowCounts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    train: int
    validation: int


class Rates(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one label threshold does on a set of flows."""

    threshold: float  # a flow is an attack when P(attack) >= threshold
    false_positive_rate: float  # share of Normal flows called attacks
    recall: float  # share of attacks called attacks (detection rate)
    precision: float  # share of alerts that are attacks
    normal_flows: int
    attack_flows: int


class OperatingPoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The deployed label threshold, the budget it was chosen for, and its rates."""

    threshold: float
    max_false_positive_rate: float | None
    expected: Rates | None  # out-of-fold on the training rows, when a budget chose the threshold
    expected_from: str | None
    validation: Rates


class ModelSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    family: str
    feature_set: str
    params: dict[str, Any]
    features: tuple[str, ...]


class DeployedModels(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    label: ModelSpec
    attack_cat: ModelSpec


class ClassMetrics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    precision: float
    recall: float
    f1: float
    support: int


class ValidationMetrics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The cascade's figures on a validation set (label, then attack_cat per class)."""

    rows: int
    label_accuracy: float
    label_f1: float
    attack_cat_accuracy: float
    attack_cat_macro_f1: float
    per_class: dict[str, ClassMetrics]
    classes: tuple[str, ...]


class FoldScores(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One figure per cross-validation fold, with their mean and (population) standard deviation."""

    rows: int
    label_accuracy: tuple[float, ...]
    attack_cat_macro_f1: tuple[float, ...]
    label_accuracy_mean: float
    label_accuracy_std: float
    attack_cat_macro_f1_mean: float
    attack_cat_macro_f1_std: float


class RegimeScores(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Cross-validated figures of one kind of row: per fold, and per class over all folds' rows."""

    folds: FoldScores
    per_class: dict[str, ClassMetrics]


class CrossValidation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The deployed settings cross-validated on the training rows (`training.regimes`)."""

    folds: int
    grouped: RegimeScores  # identical vectors on one side: every validation row is novel
    plain: RegimeScores  # random rows, as live traffic brings them
    plain_seen: RegimeScores  # the plain folds' rows whose vector the fold's training rows held
    plain_novel: RegimeScores
    # The same plain folds decided as if every row were novel: what the seen rule changes.
    plain_without_seen_rule: RegimeScores
    plain_seen_without_seen_rule: RegimeScores
    seen_share: float  # of the plain folds' rows
    method: str


class BucketScale(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The class scales of the seen vectors with at least `min_rows` training rows (up to the next)."""

    min_rows: int
    class_scale: dict[str, float]


class SeenRegimeRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The seen regime the model carries (`nids_model.seen_regime`); loading checks `sha256`.
    `class_scale` is that of the vectors below the first of `more_rows` (of every seen vector in
    formats 6 and 7, which have no `more_rows`). `held_out`: the scales apply to each vector's
    held-out class probabilities (`SeenVectors.held_out`, format 9), else to the model's."""

    vectors: int
    bytes: int
    sha256: str
    prior: float
    class_scale: dict[str, float]
    more_rows: tuple[BucketScale, ...] = ()
    held_out: bool = False


class CanaryOutputs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    attack_probability: tuple[float, ...]
    attack_cat: tuple[str, ...]


class Canary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The canary file (nids_model.canary) and the outputs the model gave its flows at training time."""

    file: str
    sha256: str
    rows: int
    expected: CanaryOutputs


class NumericProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    column: int  # in the model's matrix
    edges: tuple[float, ...]  # inner quantile bin edges
    shares: tuple[float, ...]  # training rows per bin, len(edges) + 1
    min: float
    max: float


class CategoricalProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    column: int
    unseen_code: int  # the code a category the training data never had becomes


class ReferenceProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The training data's profile for drift metrics (nids_model.profile)."""

    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    predicted_class_shares: dict[str, float]  # attack_cat predicted on the validation rows


class Libraries(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    python: str
    sklearn: str
    numpy: str
    pandas: str
    joblib: str


class TrainingRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What training knows about the model it hands to `artifact.write_artifact`."""

    features: tuple[str, ...]
    feature_dtypes: dict[str, str]
    category_vocabularies: dict[str, tuple[str, ...]]
    classes: tuple[str, ...]
    decision_threshold: float
    operating_point: OperatingPoint
    models: DeployedModels
    training_data: tuple[DataFile, ...] | SyntheticData
    validation_data: tuple[DataFile, ...] | SplitRecipe
    rows: RowCounts
    validation_metrics: ValidationMetrics
    cross_validation: CrossValidation
    seen_regime: SeenRegimeRecord | None  # None: every flow is decided as novel
    rows_per_second: float
    worst_case_rows_per_second: float
    throughput_batch_rows: int
    selected_features: tuple[str, ...]
    canary: Canary
    reference_profile: ReferenceProfile
    training_seconds: float
    training_seconds_by_phase: dict[str, float]


class Manifest(TrainingRecord, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """manifest.json: the training record and what writing the artifact adds."""

    artifact_format: int
    version: str
    created: str
    libraries: Libraries
    model_file: str
    model_sha256: str
    model_hmac_sha256: str | None = None  # only when NIDS_MODEL_KEY signed it

    def training_record(self) -> TrainingRecord:
        """The part training wrote, e.g. to write the same model again as another artifact."""
        return TrainingRecord(**{name: getattr(self, name) for name in TrainingRecord.__struct_fields__})


def encode(manifest: Manifest) -> str:
    """manifest.json's text: indented, keys sorted, for people reading and diffing it."""
    return json.dumps(msgspec.to_builtins(manifest), indent=2, sort_keys=True) + "\n"


def decode(document: object, source: Path) -> Manifest:
    """The Manifest of a parsed manifest.json; ArtifactError naming the field when it does not fit."""
    try:
        return msgspec.convert(document, Manifest)
    except msgspec.ValidationError as exc:
        raise ArtifactError(f"{source}: {exc}: retrain the model with nids-train") from None

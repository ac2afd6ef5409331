"""Model families (RandomForest, KNN, gradient boosting), their bounded search spaces and class weighting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES
from nids_model.attack_only import AttackOnlyClassifier
from nids_model.boosting import UnweightedBinsBoostingClassifier
from nids_model.preprocess import FlowPreprocessor
from nids_model.reweighting import ClassScaledClassifier

WRAPPER_PARAMS = ("weight_exponent", "class_scaling", "attack_only")
ATTACK_CAT_ONLY_PARAMS = ("class_scaling", "attack_only")
FAMILY_NAMES = {"rf": "RandomForest", "knn": "KNN", "hgb": "HistGradientBoosting"}

# Defaults found by the bounded search on the development split (nids-train --compare); the search
# space brackets each of them.
DEFAULT_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("rf", "label"): {"n_estimators": 40, "max_features": "sqrt", "min_samples_leaf": 1, "weight_exponent": 0.0},
    ("rf", "attack_cat"): {
        "n_estimators": 60,
        "max_features": "sqrt",
        "min_samples_leaf": 1,
        "weight_exponent": 0.5,
        "class_scaling": True,
        "attack_only": True,
    },
    ("hgb", "label"): {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "weight_exponent": 0.0},
    ("hgb", "attack_cat"): {
        "max_iter": 40,
        "learning_rate": 0.25,
        "max_leaf_nodes": 15,
        "weight_exponent": 0.75,
        "class_scaling": True,
        "attack_only": True,
    },
    ("knn", "label"): {"n_neighbors": 5, "weights": "distance"},
    ("knn", "attack_cat"): {"n_neighbors": 5, "weights": "distance"},
}

SEARCH_SPACES: dict[str, dict[str, Sequence[Any]]] = {
    "rf": {
        "n_estimators": (30, 40, 60, 80),
        "max_features": ("sqrt", 0.3),
        "min_samples_leaf": (1, 2, 3),
        "weight_exponent": (0.0, 0.5, 0.75, 1.0),
        "class_scaling": (True, False),
        "attack_only": (True,),
    },
    "hgb": {
        "max_iter": (40, 50, 60),
        "learning_rate": (0.15, 0.2, 0.25),
        "max_leaf_nodes": (15, 31),
        "weight_exponent": (0.0, 0.5, 0.75, 1.0),
        "class_scaling": (True, False),
        "attack_only": (True,),
    },
    "knn": {"n_neighbors": (1, 3, 5, 9, 15), "weights": ("uniform", "distance")},
}


def build_pipeline(family: str, features: Sequence[str], params: Mapping[str, Any], seed: int) -> Pipeline:
    """Preprocessing and classifier as one Pipeline. Three params shape the classifier rather than
    configure it: `weight_exponent` (consumed by `class_sample_weight`), `class_scaling` (tuned class
    scales, `ClassScaledClassifier`) and `attack_only` (fitted on attack rows, `AttackOnlyClassifier`)."""
    model_params = {k: v for k, v in params.items() if k not in WRAPPER_PARAMS}
    categorical = tuple(c for c in CATEGORICAL_FEATURES if c in features)
    if family == "rf":
        model = RandomForestClassifier(n_jobs=-1, random_state=seed, **model_params)
    elif family == "hgb":
        model = UnweightedBinsBoostingClassifier(early_stopping=False, random_state=seed, **model_params)
    elif family == "knn":
        model = KNeighborsClassifier(n_jobs=-1, **model_params)
    else:
        raise ValueError(f"unknown model family {family!r}")
    if params.get("class_scaling"):
        model = ClassScaledClassifier(model, random_state=seed)
    if params.get("attack_only"):
        model = AttackOnlyClassifier(model)
    preprocess = FlowPreprocessor(features=tuple(features), categorical=categorical, scale=family == "knn")
    return Pipeline([("preprocess", preprocess), ("model", model)])


def class_sample_weight(y: np.ndarray, exponent: float) -> np.ndarray | None:
    """Per-row weights (n_max / n_class) ** exponent: 0 is unweighted, 1 fully balanced, 0.5 in between.

    Fully balanced weights over-reward the 25-row Worms class at the cost of the large ones; a root
    balances macro-F1 against accuracy better on UNSW-NB15.
    """
    if exponent == 0:
        return None
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    weights: np.ndarray = ((counts.max() / counts) ** exponent)[inverse]
    return weights


def supports_sample_weight(family: str) -> bool:
    return family in ("rf", "hgb")


def sample_params(family: str, rng: np.random.Generator, count: int, target: str) -> list[dict[str, Any]]:
    """The default setting first, then `count - 1` distinct random draws from the family's space."""
    space = {
        name: values
        for name, values in SEARCH_SPACES[family].items()
        if target == ATTACK_CAT or name not in ATTACK_CAT_ONLY_PARAMS
    }
    draws = [dict(DEFAULT_PARAMS[(family, target)])]
    seen = {tuple(sorted(draws[0].items(), key=lambda kv: kv[0]))}
    attempts = 0
    while len(draws) < count and attempts < 200:
        attempts += 1
        params = {name: values[int(rng.integers(len(values)))] for name, values in space.items()}
        key = tuple(sorted(params.items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            draws.append(params)
    return draws

"""Model families (RandomForest, KNN, gradient boosting), their bounded search spaces, class weighting and
settings other than the defaults (`with_settings`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES
from nids_model.attack_only import AttackOnlyClassifier
from nids_model.averaging import ProbabilityAverage
from nids_model.boosting import UnweightedBinsBoostingClassifier
from nids_model.preprocess import FlowPreprocessor
from nids_model.reweighting import ClassScaledClassifier

WRAPPER_PARAMS = ("weight_exponent", "class_scaling", "attack_only")
ATTACK_CAT_ONLY_PARAMS = ("class_scaling", "attack_only")
FAMILY_NAMES = {
    "rf": "RandomForest",
    "knn": "KNN",
    "hgb": "HistGradientBoosting",
    "rf+hgb": "RandomForest + HistGradientBoosting (averaged)",
}
# An average of other families' models: `params` holds each member's own, keyed by family.
AVERAGED_FAMILIES = {"rf+hgb": ("rf", "hgb")}


def member_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A family's params as a member of an average: its own model's and its class weighting, without
    the wrappers (class scaling, attack only) that go around the average instead."""
    return {k: v for k, v in params.items() if k not in ATTACK_CAT_ONLY_PARAMS}


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

# attack_cat only (a label model averaged so would cost a second label fit for no measured gain): each
# member with its own attack_cat settings, the wrappers around their average.
DEFAULT_PARAMS[("rf+hgb", ATTACK_CAT)] = {
    "weight_exponent": 1.0,  # balanced weights, which each member takes to its own exponent
    "rf": member_params(DEFAULT_PARAMS[("rf", ATTACK_CAT)]),
    # Twice the steps at a lower rate than boosting alone: +0.008 plain and nested macro-F1 at three
    # seeds in the average (docs/benchmarks.md), affordable since boosting is scored by QuickScorer.
    "hgb": {**member_params(DEFAULT_PARAMS[("hgb", ATTACK_CAT)]), "max_iter": 80, "learning_rate": 0.15},
    "class_scaling": True,
    "attack_only": True,
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
    configure it: `weight_exponent` (consumed by `class_sample_weight`; an averaged family's members
    each have their own, in their own params), `class_scaling` (tuned class
    scales, `ClassScaledClassifier`) and `attack_only` (fitted on attack rows, `AttackOnlyClassifier`)."""
    categorical = tuple(c for c in CATEGORICAL_FEATURES if c in features)
    if family in AVERAGED_FAMILIES:
        if params.get("weight_exponent") != 1.0:
            # The average takes balanced weights to each member's own exponent; any other weights
            # would weigh each member with an exponent nobody chose.
            raise ValueError(f"{family}: weight_exponent must be 1.0 (balanced), got {params.get('weight_exponent')!r}")
        members = AVERAGED_FAMILIES[family]
        model = ProbabilityAverage(
            [(member, base_estimator(member, params[member], seed)) for member in members],
            [float(params[member].get("weight_exponent", 0.0)) for member in members],
        )
    else:
        model = base_estimator(family, params, seed)
    if params.get("class_scaling"):
        model = ClassScaledClassifier(model, random_state=seed)
    if params.get("attack_only"):
        model = AttackOnlyClassifier(model)
    preprocess = FlowPreprocessor(features=tuple(features), categorical=categorical, scale=family == "knn")
    return Pipeline([("preprocess", preprocess), ("model", model)])


def base_estimator(family: str, params: Mapping[str, Any], seed: int) -> Any:
    """One family's classifier without the wrappers (`WRAPPER_PARAMS` in `params` are left out)."""
    model_params = {k: v for k, v in params.items() if k not in WRAPPER_PARAMS}
    if family == "rf":
        return RandomForestClassifier(n_jobs=-1, random_state=seed, **model_params)
    if family == "hgb":
        return UnweightedBinsBoostingClassifier(early_stopping=False, random_state=seed, **model_params)
    if family == "knn":
        return KNeighborsClassifier(n_jobs=-1, **model_params)
    raise ValueError(f"unknown model family {family!r}")


def supports_sample_weight(family: str) -> bool:
    return family in ("rf", "hgb", *AVERAGED_FAMILIES)


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


def with_settings(family: str, params: Mapping[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """`params` with each `[MEMBER.]PARAM=VALUE` of `assignments` set (VALUE read as YAML: 80, 0.15,
    sqrt); only settings `params` already has, so a misspelt one is refused rather than ignored."""
    changed = {key: dict(value) if isinstance(value, Mapping) else value for key, value in params.items()}
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        member, _, key = name.rpartition(".")
        target = changed.get(member) if member else changed
        if not equals or not isinstance(target, dict) or key not in target:
            members = ", ".join(AVERAGED_FAMILIES.get(family, ()))
            raise ValueError(
                f"{assignment}: not a setting of {family}"
                + (f" (name a member's as MEMBER.PARAM, members {members})" if members else "")
            )
        target[key] = yaml.safe_load(text)
    return changed

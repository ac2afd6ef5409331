"""Model families: the averaged forest and boosting is built from its members' own settings, and only
for the target it has a model of."""

from __future__ import annotations

import dataclasses

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from nids_common.schema import ATTACK_CAT, FEATURES, LABEL
from nids_model.attack_only import AttackOnlyClassifier
from nids_model.averaging import ProbabilityAverage
from nids_model.reweighting import ClassScaledClassifier
from training.config import TrainingConfig
from training.models import DEFAULT_PARAMS, build_pipeline, with_settings
from training.train import candidate_jobs


def test_the_averaged_family_wraps_its_members_with_their_own_attack_cat_settings() -> None:
    params = DEFAULT_PARAMS[("rf+hgb", ATTACK_CAT)]
    model = build_pipeline("rf+hgb", FEATURES, params, seed=7)[-1]
    assert isinstance(model, AttackOnlyClassifier)
    assert isinstance(model.estimator, ClassScaledClassifier)
    average = model.estimator.estimator
    assert isinstance(average, ProbabilityAverage)
    (_, forest), (_, boosting) = average.estimators
    assert isinstance(forest, RandomForestClassifier)
    assert isinstance(boosting, HistGradientBoostingClassifier)
    assert list(average.weight_exponents) == [
        DEFAULT_PARAMS[("rf", ATTACK_CAT)]["weight_exponent"],
        DEFAULT_PARAMS[("hgb", ATTACK_CAT)]["weight_exponent"],
    ]
    assert forest.n_estimators == DEFAULT_PARAMS[("rf", ATTACK_CAT)]["n_estimators"]
    assert (boosting.max_iter, boosting.learning_rate) == (params["hgb"]["max_iter"], params["hgb"]["learning_rate"])
    assert boosting.max_leaf_nodes == DEFAULT_PARAMS[("hgb", ATTACK_CAT)]["max_leaf_nodes"]
    assert forest.random_state == boosting.random_state == 7
    # Balanced weights reach the average, which takes them to each member's exponent.
    assert params["weight_exponent"] == 1.0
    unscaled = build_pipeline("rf+hgb", FEATURES, {**params, "class_scaling": False}, seed=7)[-1]
    assert isinstance(unscaled.estimator, ProbabilityAverage)
    with pytest.raises(ValueError, match=r"rf\+hgb: weight_exponent must be 1.0 \(balanced\), got 0.5"):
        build_pipeline("rf+hgb", FEATURES, {**params, "weight_exponent": 0.5}, seed=7)


def test_a_family_is_fitted_only_for_the_targets_it_has_a_model_of_and_in_order_of_preference() -> None:
    config = TrainingConfig(deploy_candidates=("rf+hgb", "hgb"))
    assert candidate_jobs(config, compare=False, feature_sets=["all"]) == (
        [("rf+hgb", ATTACK_CAT, "all"), ("hgb", LABEL, "all")],
        [("hgb", ATTACK_CAT, "all")],
    )
    assert candidate_jobs(dataclasses.replace(config, deploy_candidates=("hgb", "rf+hgb")), False, ["all"]) == (
        [("hgb", LABEL, "all"), ("hgb", ATTACK_CAT, "all")],
        [("rf+hgb", ATTACK_CAT, "all")],
    )
    # --compare fits every compared family and still the deployable ones, once each, all at once.
    compared, fallbacks = candidate_jobs(config, compare=True, feature_sets=["all", "selected"])
    assert fallbacks == []
    assert len(compared) == len(set(compared))
    assert {f for f, _, _ in compared} == {"rf", "knn", "hgb", "rf+hgb"}
    assert ("rf+hgb", LABEL, "selected") not in compared
    assert candidate_jobs(dataclasses.replace(config, deploy_candidates=("rf",)), False, ["all"]) == (
        [("rf", LABEL, "all"), ("rf", ATTACK_CAT, "all")],
        [],
    )


def test_a_setting_changes_one_member_and_leaves_the_defaults_alone() -> None:
    defaults = DEFAULT_PARAMS[("rf+hgb", ATTACK_CAT)]
    before = {"hgb": dict(defaults["hgb"]), "rf": dict(defaults["rf"])}
    changed = with_settings("rf+hgb", defaults, ["hgb.max_iter=60", "hgb.learning_rate=0.2", "rf.max_features=sqrt"])
    assert changed["hgb"] == {**before["hgb"], "max_iter": 60, "learning_rate": 0.2}
    assert changed["hgb"] != before["hgb"]
    assert changed["rf"] == before["rf"]
    assert {k: v for k, v in changed.items() if k not in before} == {
        k: v for k, v in defaults.items() if k not in before
    }
    assert defaults["hgb"] == before["hgb"]


def test_a_family_s_own_setting_is_named_without_a_member() -> None:
    assert with_settings("rf", DEFAULT_PARAMS[("rf", ATTACK_CAT)], ["n_estimators=100"])["n_estimators"] == 100


@pytest.mark.parametrize("assignment", ["hgb.max_iters=80", "max_iter=80", "knn.n_neighbors=3", "hgb.max_iter"])
def test_a_setting_the_family_does_not_have_is_refused(assignment: str) -> None:
    with pytest.raises(ValueError, match=r".*: not a setting of rf\+hgb \(name a member's as MEMBER.PARAM"):
        with_settings("rf+hgb", DEFAULT_PARAMS[("rf+hgb", ATTACK_CAT)], [assignment])

"""ProbabilityAverage: each member fitted with its own class weights; the mean of their probabilities,
the same bits through the compiled scorer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import cross_val_predict

from nids_model.attack_only import AttackOnlyClassifier
from nids_model.averaging import ProbabilityAverage, class_sample_weight
from nids_model.compiled import probability_function
from nids_model.reweighting import ClassScaledClassifier

CLASSES = np.asarray(["Normal", "DoS", "Exploits", "Worms"])


def _data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 6)).astype(np.float32)
    column = np.digitize(X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.4, size=rows), [-0.5, 0.8, 1.8])
    return X, CLASSES[column]  # Worms the rarest, as in UNSW-NB15


def _members() -> list[tuple[str, object]]:
    return [
        ("rf", RandomForestClassifier(n_estimators=15, n_jobs=1, random_state=0)),
        ("hgb", HistGradientBoostingClassifier(max_iter=15, random_state=0)),
    ]


def test_the_average_is_the_mean_of_members_fitted_with_their_own_class_weights() -> None:
    X, y = _data(2000, seed=1)
    average = ProbabilityAverage(_members(), weight_exponents=(0.5, 0.0))
    assert average.fit(X, y) is average
    forest = clone(_members()[0][1]).fit(X, y, sample_weight=class_sample_weight(y, 0.5))
    boosting = clone(_members()[1][1]).fit(X, y)  # exponent 0: unweighted
    test, _ = _data(500, seed=2)
    expected = (forest.predict_proba(test) + boosting.predict_proba(test)) / 2
    assert np.allclose(average.predict_proba(test), expected, rtol=0, atol=1e-15)
    assert list(average.classes_) == sorted(set(y))
    assert np.array_equal(average.predict(test), average.classes_[expected.argmax(axis=1)])


def test_given_balanced_weights_each_member_takes_them_to_its_exponent() -> None:
    # Cross-validation slices the whole training set's weights; weights recomputed from a fold's own
    # rows would differ, and the members would no longer be the ones fitted alone.
    X, y = _data(1500, seed=3)
    balanced = class_sample_weight(y[:300], 1.0)  # the counts of other rows than those fitted
    assert balanced is not None
    partial = np.ones(len(y))
    partial[:300] = balanced
    average = ProbabilityAverage(_members()[:1], weight_exponents=(0.5,)).fit(X, y, sample_weight=partial)
    forest = clone(_members()[0][1]).fit(X, y, sample_weight=partial**0.5)
    own = clone(_members()[0][1]).fit(X, y, sample_weight=class_sample_weight(y, 0.5))
    assert np.array_equal(average.predict_proba(X), forest.predict_proba(X))
    assert not np.array_equal(average.predict_proba(X), own.predict_proba(X))


def test_cross_validated_it_averages_its_members_cross_validated() -> None:
    X, y = _data(1500, seed=4)
    folds = 3
    weights = class_sample_weight(y, 1.0)
    average = ProbabilityAverage(_members(), weight_exponents=(0.5, 0.75))
    held_out = cross_val_predict(average, X, y, cv=folds, method="predict_proba", params={"sample_weight": weights})
    members = [
        cross_val_predict(member, X, y, cv=folds, method="predict_proba", params={"sample_weight": weights**exponent})
        for (_, member), exponent in zip(_members(), (0.5, 0.75), strict=True)
    ]
    assert np.allclose(held_out, (members[0] + members[1]) / 2, rtol=0, atol=1e-15)


def test_one_exponent_per_member_is_required() -> None:
    X, y = _data(200, seed=5)
    with pytest.raises(ValueError, match="2 estimators and 1 weight exponents; give one exponent per estimator"):
        ProbabilityAverage(_members(), weight_exponents=(0.5,)).fit(X, y)
    with pytest.raises(ValueError, match="no estimators to average; give at least one"):
        ProbabilityAverage([], weight_exponents=()).fit(X, y)


def test_compiled_scoring_gives_the_same_bits_inside_the_deployed_wrappers() -> None:
    X, y = _data(2000, seed=6)
    X[np.random.default_rng(6).random(X.shape) < 0.05] = np.nan
    average = ProbabilityAverage(_members(), weight_exponents=(0.5, 0.75))
    deployed = AttackOnlyClassifier(ClassScaledClassifier(average, cv=3)).fit(X, y)
    test, _ = _data(3000, seed=7)
    assert np.array_equal(probability_function(deployed)(test), deployed.predict_proba(test))
    assert np.array_equal(probability_function(deployed, threads=2)(test), deployed.predict_proba(test))
    fitted = deployed.estimator_.estimator_
    assert isinstance(fitted, ProbabilityAverage)
    assert np.array_equal(probability_function(fitted)(test), fitted.predict_proba(test))

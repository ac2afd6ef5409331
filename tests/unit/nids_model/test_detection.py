"""The detection cascade of a trained model: leakage, consistent verdicts, unseen categories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nids_common.schema import NEVER_FEATURES, NORMAL
from nids_model.artifact import load_model
from nids_model.detection import Features
from tests.fixtures import flows_with_identity


@pytest.fixture(scope="module")
def scored_flows() -> pd.DataFrame:
    return flows_with_identity(600, seed=21)


def test_never_features_do_not_change_any_prediction(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    model, _ = load_model(trained_model)
    baseline = model.score(scored_flows)
    rng = np.random.default_rng(0)
    changed = scored_flows.copy()
    for column in NEVER_FEATURES:
        if column in changed.columns and column != "attack_cat":
            changed[column] = rng.permutation(changed[column].to_numpy())
    changed["attack_cat"] = "Worms"
    changed["label"] = 1 - changed["label"]
    changed["srcip"] = "10.0.0.1"
    after = model.score(changed)
    np.testing.assert_array_equal(baseline.attack_probability, after.attack_probability)
    np.testing.assert_array_equal(baseline.attack_cat, after.attack_cat)
    assert set(NEVER_FEATURES).isdisjoint(json.loads((trained_model / "manifest.json").read_text())["features"])


def test_verdicts_are_consistent(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    model, _ = load_model(trained_model)
    scores = model.score(scored_flows)
    assert scores.is_attack.any() and (~scores.is_attack).any()
    np.testing.assert_array_equal(scores.is_attack, scores.attack_cat != NORMAL)
    assert np.isnan(scores.class_probabilities[~scores.is_attack]).all()
    np.testing.assert_allclose(scores.class_probabilities[scores.is_attack].sum(axis=1), 1.0, rtol=1e-6)


def test_model_learns_synthetic_classes(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    model, manifest = load_model(trained_model)
    scores = model.score(scored_flows)
    assert (scores.is_attack.astype(int) == scored_flows["label"].to_numpy()).mean() > 0.85
    assert manifest.validation_metrics.label_accuracy > 0.85


def test_unseen_categories_are_scored(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    model, _ = load_model(trained_model)
    odd = scored_flows.head(20).copy()
    odd["proto"], odd["service"], odd["state"] = "quic-new", "gopher", "ZZZ"
    scores = model.score(odd)
    assert np.isfinite(scores.attack_probability).all()
    # Every unseen value takes the one shared 'other' code: another unseen spelling scores the same.
    preprocess = model.label_pipeline[0]
    matrix = preprocess.transform(odd)
    for name in ("proto", "service", "state"):
        column = list(preprocess.features).index(name)
        assert (matrix[:, column] == len(preprocess.vocabularies_[name])).all(), name
    other = odd.assign(proto="never-seen", service="nor-this", state="XYZ")
    np.testing.assert_array_equal(model.score(other).attack_probability, scores.attack_probability)


def test_stream_categories_normalised_like_training(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    # Training cleans 'INT' to 'int'; a producer that sends the partitioned files' spelling must score the same.
    model, _ = load_model(trained_model)
    shouted = scored_flows.assign(
        state=scored_flows["state"].str.upper(), proto=" " + scored_flows["proto"].str.upper()
    )
    np.testing.assert_array_equal(model.score(shouted).attack_probability, model.score(scored_flows).attack_probability)


def test_the_attack_cat_model_is_asked_only_about_novel_attacks(trained_model: Path) -> None:
    # A seen attack's class comes from the table's held-out probabilities: asking the model about it
    # would cost a scoring and change nothing.
    model, _ = load_model(trained_model)
    assert model.seen is not None and model.seen.decides_classes and model._shared_matrix
    table = model.seen.vectors
    width = len(model.label_pipeline[0].features)
    seen_rows = np.ascontiguousarray(table.words).view(np.float32).reshape(len(table), width)[:300]
    matrix = np.vstack([seen_rows, seen_rows + np.float32(0.5)])
    label_proba, attack_cat_proba = model._probability_functions()
    asked: list[np.ndarray] = []

    def recording(rows: np.ndarray) -> np.ndarray:
        asked.append(rows.copy())
        return attack_cat_proba(rows)

    model._compiled = (label_proba, recording)
    scores = model.score_features(Features(matrix, matrix))
    seen = model.regime(matrix)
    assert (seen[:300] >= 0).all() and (seen[300:] < 0).all()
    assert (scores.is_attack[:300]).any() and (scores.is_attack[300:]).any()
    assert (model.regime(np.vstack(asked)) < 0).all()
    attacks = np.flatnonzero(scores.is_attack)
    every_attack_asked = np.full((len(matrix), len(model.classes)), np.nan)
    every_attack_asked[attacks] = attack_cat_proba(matrix[attacks])
    reference = model.decide(scores.attack_probability, model.seen.class_probabilities(seen, every_attack_asked))
    np.testing.assert_array_equal(scores.attack_cat, reference.attack_cat)
    np.testing.assert_array_equal(scores.class_probabilities, reference.class_probabilities)

"""The two regimes in training: the seen table holds training rows only, no held-out row's own label
reaches its seen counts, and the cross-validated figures are recorded per regime."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nids_common.schema import ATTACK_CAT, FEATURES, LABEL
from nids_model import artifact
from nids_model.folds import vector_groups
from nids_model.reweighting import macro_f1
from nids_model.seen_regime import SeenRegime, SeenVectors
from tests.fixtures import FAST_TRAINING, flows_with_identity
from training import regimes
from training.candidates import fit_candidate, held_out_scores
from training.regimes import (
    SEEN_MIN_ROWS,
    GroupedPredictions,
    OutOfFold,
    Rows,
    SeenRule,
    cross_fitted,
    fit_regimes,
    held_out_predictions,
    nested_plain_decided,
    plain_out_of_fold,
    tune_seen_rule,
    vector_held_out,
    verdicts,
)
from training.report import bucket_label

SMALL_HGB = {"max_iter": 10, "learning_rate": 0.3, "max_leaf_nodes": 15, "weight_exponent": 0.0}


@pytest.fixture(scope="module")
def flows_with_repeats() -> pd.DataFrame:
    """Synthetic flows with floods: 300 vectors repeated up to six times, some with another class."""
    flows = flows_with_identity(1500, seed=21)
    rng = np.random.default_rng(4)
    repeats = flows.iloc[rng.integers(0, len(flows), 300)].loc[lambda f: f.index.repeat(rng.integers(1, 6, len(f)))]
    repeats = repeats.reset_index(drop=True)
    relabel = rng.random(len(repeats)) < 0.1
    repeats.loc[relabel, ATTACK_CAT] = "Exploits"
    repeats.loc[relabel, LABEL] = 1
    return pd.concat([flows, repeats], ignore_index=True).sample(frac=1.0, random_state=2).reset_index(drop=True)


def candidates(flows: pd.DataFrame) -> tuple:  # type: ignore[type-arg]
    params = {LABEL: SMALL_HGB, ATTACK_CAT: {**SMALL_HGB, "class_scaling": True, "attack_only": True}}
    return tuple(
        held_out_scores(
            fit_candidate("hgb", target, "all", FEATURES, params[target], flows, flows.iloc[:500], FAST_TRAINING),
            flows,
            FAST_TRAINING,
        )
        for target in (LABEL, ATTACK_CAT)
    )


def test_a_held_out_rows_seen_counts_come_from_the_other_folds_only(flows_with_repeats: pd.DataFrame) -> None:
    label, attack_cat = candidates(flows_with_repeats)
    classes = np.asarray(attack_cat.pipeline.classes_).astype(str).astype(object)
    truth = np.searchsorted(classes.astype(str), flows_with_repeats[ATTACK_CAT].to_numpy())
    is_attack = flows_with_repeats[LABEL].to_numpy() == 1
    rows = Rows(truth, is_attack, classes, list(classes).index("Normal"), 0.5)
    matrix = label.pipeline[0].transform(flows_with_repeats)
    held_out = np.zeros((len(flows_with_repeats), len(classes)))
    plain = plain_out_of_fold(label, attack_cat, flows_with_repeats, matrix, rows, held_out, seed=1)
    groups = vector_groups(matrix)
    same = groups[:, None] == groups[None, :]
    other_fold = plain.fold[:, None] != plain.fold[None, :]
    assert plain.vector_rows.tolist() == (same & other_fold).sum(axis=1).tolist()
    assert plain.vector_attacks.tolist() == (same & other_fold & is_attack[None, :]).sum(axis=1).tolist()
    assert 0.2 < plain.seen.mean() < 0.7  # the repeats and their originals are seen, the rest novel


def test_the_nested_seen_rule_is_tuned_on_rows_and_predictions_that_never_saw_the_fold(
    flows_with_repeats: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    label, attack_cat = candidates(flows_with_repeats)
    held = held_out_predictions(label, attack_cat, flows_with_repeats, 0.5, seed=1)
    inner_passes: list[pd.DataFrame] = []

    def recording(label: object, cat: object, train: pd.DataFrame, *rest: object) -> OutOfFold:
        inner_passes.append(train)
        return plain_out_of_fold(label, cat, train, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(regimes, "plain_out_of_fold", recording)
    decided = nested_plain_decided(label, attack_cat, flows_with_repeats, held, seed=1)
    assert len(inner_passes) == 5
    for index, inner in enumerate(inner_passes):
        own = np.flatnonzero(held.plain.fold == index)
        assert not set(inner.index) & set(own) and len(inner) == len(flows_with_repeats) - len(own)
    assert decided.shape == held.rows.truth.shape and set(decided) <= set(range(len(held.rows.classes)))
    assert (decided == cross_fitted(held.rows, held.plain, held.grouped, True)).mean() > 0.9


def test_the_regimes_are_cross_validated_and_the_table_counts_every_training_row(
    flows_with_repeats: pd.DataFrame,
) -> None:
    label, attack_cat = candidates(flows_with_repeats)
    result = fit_regimes(label, attack_cat, flows_with_repeats, 0.5, seed=1)
    assert result.seen.vectors.rows.sum() == len(flows_with_repeats)
    assert result.seen.vectors.attacks.sum() == flows_with_repeats[LABEL].sum()
    cv = result.cross_validation
    assert cv.folds == len(cv.grouped.folds.attack_cat_macro_f1) == len(cv.plain.folds.label_accuracy) == 5
    assert cv.plain_seen.folds.rows + cv.plain_novel.folds.rows == cv.plain.folds.rows == len(flows_with_repeats)
    assert cv.seen_share == pytest.approx(cv.plain_seen.folds.rows / len(flows_with_repeats))
    for scores in (cv.grouped, cv.plain, cv.plain_seen, cv.plain_novel, cv.plain_without_seen_rule):
        folds = scores.folds
        assert 0.5 < folds.label_accuracy_mean <= 1 and 0 < folds.attack_cat_macro_f1_mean <= 1
        assert folds.attack_cat_macro_f1_mean == pytest.approx(np.mean(folds.attack_cat_macro_f1))


def test_a_vectors_held_out_probabilities_come_from_a_fitted_row_where_it_has_one() -> None:
    # Rows 0, 1 and 3 share a vector. Rows 1 and 3 (Normal) were predicted by the attack-only model
    # fitted on every attack row, row 0 among them, so the vector takes row 0's grouped prediction.
    # Row 2's vector has only Normal rows, which that model never saw: its own prediction stands.
    matrix = np.array([[1, 1], [1, 1], [2, 2], [1, 1]], dtype=np.float32)
    raw = np.array([[0.1, 0.9, 0.0], [0.7, 0.3, 0.0], [0.4, 0.6, 0.0], [0.8, 0.2, 0.0]])
    fitted = np.array([True, False, False, False])
    predictions = GroupedPredictions(raw, np.array([3, -1, -1, -1]), fitted)
    held_out = vector_held_out(matrix, predictions)
    assert held_out is not None and held_out.dtype == np.float64
    np.testing.assert_array_equal(held_out, raw[[0, 0, 2, 0]].astype(np.float32).astype(np.float64))


def test_a_vector_whose_fitted_rows_fell_in_two_folds_has_no_held_out_probabilities() -> None:
    # The model of fold 1 predicted row 0 and was fitted on row 1, a copy of the same vector (the
    # folds grouped by another matrix than the label model's): its prediction is not held out.
    matrix = np.array([[1, 1], [1, 1], [2, 2]], dtype=np.float32)
    predictions = GroupedPredictions(np.full((3, 2), 0.5), np.array([1, 2, 2]), np.ones(3, dtype=bool))
    assert vector_held_out(matrix, predictions) is None
    together = GroupedPredictions(np.full((3, 2), 0.5), np.array([2, 2, 1]), np.ones(3, dtype=bool))
    assert vector_held_out(matrix, together) is not None


def seen_rows(n: int, classes: np.ndarray, seed: int) -> tuple[np.ndarray, SeenVectors, Rows, OutOfFold]:
    """n attack rows over a few repeated vectors, every row seen, with the model's probabilities and
    (different) held-out ones of its vector."""
    rng = np.random.default_rng(seed)
    matrix = rng.integers(0, 6, size=(n, 2)).astype(np.float32)
    vector = np.unique(matrix, axis=0, return_inverse=True)[1].ravel()
    normal = list(classes).index("Normal")
    per_vector = rng.dirichlet(np.ones(len(classes)), size=vector.max() + 1)
    per_vector[:, normal] = 0.0
    table = SeenVectors.of(matrix, np.ones(n), per_vector[vector])
    vector_rows = table.rows[table.find(matrix)]
    model = rng.dirichlet(np.ones(len(classes)), size=n)
    model[:, normal] = 0.0
    rows = Rows(np.zeros(n, dtype=np.intp), np.ones(n, dtype=bool), classes, normal, 0.5)
    plain = OutOfFold(
        fold=np.zeros(n, dtype=np.intp),
        attack_probability=np.ones(n),
        raw=model,
        vector_rows=vector_rows,
        vector_attacks=vector_rows,
        vector_held_out=per_vector[vector].astype(np.float32).astype(np.float64),
    )
    return matrix, table, rows, plain


def test_training_decides_a_seen_attack_as_the_deployed_rule_does() -> None:
    classes = np.array(["A", "B", "C", "Normal"], dtype=object)
    matrix, table, rows, plain = seen_rows(200, classes, seed=3)
    rng = np.random.default_rng(5)
    rule = SeenRule(1.0, rng.uniform(0.2, 4.0, size=(len(SEEN_MIN_ROWS), len(classes))), SEEN_MIN_ROWS)
    novel_scale = np.array([3.0, 0.2, 1.5, 1.0])  # novel rows only: a seen row's class must not feel it
    trained = verdicts(rows, plain, novel_scale, rule, np.arange(len(matrix)))
    deployed = SeenRegime(table, rule.prior, rule.class_scale, rule.min_rows)
    probabilities = deployed.class_probabilities(table.find(matrix), plain.raw * novel_scale)
    probabilities[:, rows.normal] = -1.0
    np.testing.assert_array_equal(trained, probabilities.argmax(axis=1))
    assert len(set(trained)) == 3


def test_without_held_out_probabilities_the_seen_rule_scales_the_models() -> None:
    classes = np.array(["A", "B", "C", "Normal"], dtype=object)
    matrix, _, rows, plain = seen_rows(200, classes, seed=4)
    model_rule = dataclasses.replace(plain, vector_held_out=None)
    rule = SeenRule(1.0, np.tile([1.0, 2.0, 0.5, 1.0], (len(SEEN_MIN_ROWS), 1)), SEEN_MIN_ROWS)
    novel_scale = np.array([3.0, 0.2, 1.5, 1.0])
    decided = verdicts(rows, model_rule, novel_scale, rule, np.arange(len(matrix)))
    expected = plain.raw * novel_scale * rule.class_scale[0]
    expected[:, rows.normal] = -1.0
    np.testing.assert_array_equal(decided, expected.argmax(axis=1))
    tuned = tune_seen_rule(rows, model_rule, novel_scale, np.arange(len(matrix)))
    assert tuned.class_scale.shape == (len(SEEN_MIN_ROWS), len(classes))


def test_the_deployed_table_keeps_each_vectors_grouped_held_out_probabilities(
    flows_with_repeats: pd.DataFrame,
) -> None:
    label, attack_cat = candidates(flows_with_repeats)
    result = fit_regimes(label, attack_cat, flows_with_repeats, 0.5, seed=1)
    table, held = result.seen.vectors, result.held
    assert table.held_out is not None and table.held_out.shape == (len(table), len(held.rows.classes))
    attacks = held.rows.is_attack
    found = table.find(held.matrix[attacks])
    # The grouped held-out predictions of the attack rows: each by a model whose folds held out every
    # copy of the row's vector.
    grouped = attack_cat.pipeline[-1].estimator_.held_out_probabilities_
    columns = attack_cat.pipeline[-1].columns_
    np.testing.assert_array_equal(table.held_out[found][:, columns], grouped.astype(np.float32))
    assert (held.plain.vector_held_out[attacks] == table.held_out[found]).all()


def test_the_deployed_table_holds_the_training_split_only(trained_model: Path) -> None:
    model, manifest = artifact.load_model(trained_model)
    assert model.seen is not None and manifest.seen_regime is not None
    assert int(model.seen.vectors.rows.sum()) == manifest.rows.train
    assert manifest.seen_regime.bytes == model.seen.vectors.nbytes
    assert manifest.seen_regime.held_out and model.seen.vectors.held_out is not None
    report = (trained_model / "report.md").read_text()
    assert "cross-validated (5 folds" in report and "plain, seen rows" in report
    assert tuple(bucket.min_rows for bucket in manifest.seen_regime.more_rows) == model.seen.min_rows[1:] == (2, 5, 10)
    assert all(f"; {rows}: " in report for rows in ("2–4 rows", "5–9 rows", "10+ rows"))
    assert "held-out class probabilities (predicted by a model that never trained on it, on grouped folds)" in report
    assert "the class scales of its vector's number of training rows (tuned on plain folds): 1 row: " in report


def test_seen_vectors_with_few_and_many_training_rows_get_scales_of_their_own() -> None:
    # The vectors' held-out probabilities lean to A on every seen row (the model's own lean to B and
    # are not what the rule scales). Vectors held once are B, vectors held twelve times are A: one
    # scale for all can call only one of them right, a scale per bucket of rows calls both.
    n = 50
    classes = np.array(["A", "B", "Normal"], dtype=object)
    rows = Rows(np.repeat([1, 0], n), np.ones(2 * n, dtype=bool), classes, normal=2, threshold=0.5)
    vector_rows = np.repeat([1, 12], n).astype(np.int64)
    plain = OutOfFold(
        fold=np.zeros(2 * n, dtype=np.intp),
        attack_probability=np.ones(2 * n),
        raw=np.tile([0.2, 0.8, 0.0], (2 * n, 1)),
        vector_rows=vector_rows,
        vector_attacks=vector_rows,
        vector_held_out=np.tile([0.6, 0.4, 0.0], (2 * n, 1)),
    )
    every_row = np.arange(2 * n)
    rule = tune_seen_rule(rows, plain, np.ones(3), every_row)
    assert rule.class_scale.shape == (len(SEEN_MIN_ROWS), 3)
    decided = verdicts(rows, plain, np.ones(3), rule, every_row)
    assert macro_f1(rows.truth, decided, 3) == 1.0
    shared = dataclasses.replace(rule, class_scale=np.tile(rule.class_scale[0], (len(SEEN_MIN_ROWS), 1)))
    assert macro_f1(rows.truth, verdicts(rows, plain, np.ones(3), shared, every_row), 3) < 0.5


def test_the_report_names_each_bucket_by_its_training_rows() -> None:
    labels = [bucket_label(first, following) for first, following in ((1, 2), (2, 5), (5, 6), (10, None))]
    assert labels == ["1 row", "2–4 rows", "5 rows", "10+ rows"]
    assert SEEN_MIN_ROWS[0] == 1 and list(SEEN_MIN_ROWS) == sorted(set(SEEN_MIN_ROWS))

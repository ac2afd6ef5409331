"""The two regimes in training: the seen table holds training rows only, no held-out row's own label
reaches its seen counts, and the cross-validated figures are recorded per regime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nids_common.schema import ATTACK_CAT, FEATURES, LABEL
from nids_model import artifact
from nids_model.folds import vector_groups
from tests.fixtures import FAST_TRAINING, flows_with_identity
from training.candidates import fit_candidate, held_out_scores
from training.regimes import Rows, fit_regimes, plain_out_of_fold

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
    plain = plain_out_of_fold(label, attack_cat, flows_with_repeats, matrix, rows, seed=1)
    groups = vector_groups(matrix)
    same = groups[:, None] == groups[None, :]
    other_fold = plain.fold[:, None] != plain.fold[None, :]
    assert plain.vector_rows.tolist() == (same & other_fold).sum(axis=1).tolist()
    assert plain.vector_attacks.tolist() == (same & other_fold & is_attack[None, :]).sum(axis=1).tolist()
    assert 0.2 < plain.seen.mean() < 0.7  # the repeats and their originals are seen, the rest novel


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


def test_the_deployed_table_holds_the_training_split_only(trained_model: Path) -> None:
    model, manifest = artifact.load_model(trained_model)
    assert model.seen is not None and manifest.seen_regime is not None
    assert int(model.seen.vectors.rows.sum()) == manifest.rows.train
    assert manifest.seen_regime.bytes == model.seen.vectors.nbytes
    report = (trained_model / "report.md").read_text()
    assert "cross-validated (5 folds" in report and "plain, seen rows" in report

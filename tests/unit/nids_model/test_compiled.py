"""Compiled scoring: the same probabilities as scikit-learn, bit for bit; distinct rows found exactly."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier

from nids_model.artifact import load_model
from nids_model.attack_only import AttackOnlyClassifier
from nids_model.compiled import (
    _BIT_INDEX,
    NODE,
    WALK_NODE,
    CompiledBoosting,
    CompiledForest,
    FlatTrees,
    NotCompilable,
    SparseLeaves,
    ThresholdTables,
    _quick_scores,
    distinct_rows,
    probability_function,
    tree_nodes,
)
from nids_model.reweighting import ClassScaledClassifier


def _data(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 8)).astype(np.float32)
    y = (X[:, 0] * 2 + X[:, 1] ** 2 + rng.normal(scale=0.5, size=rows) > 1).astype(int)
    if classes > 2:
        y = np.digitize(X[:, 0] + X[:, 2], np.linspace(-2, 2, classes - 1))
    # Missing values in training teach each split a side for NaN, which scoring must follow.
    X[rng.random(X.shape) < 0.05] = np.nan
    return X, y


@pytest.mark.parametrize(
    ("classes", "leaves", "mask"), [(2, 15, np.uint16), (5, 15, np.uint16), (5, 31, np.uint32), (3, 63, np.uint64)]
)
def test_compiled_probabilities_are_sklearns_bit_for_bit(classes: int, leaves: int, mask: type) -> None:
    X, y = _data(3000, classes, seed=classes)
    model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=leaves, min_samples_leaf=5, random_state=0)
    model.fit(X, y)
    test, _ = _data(5000, classes, seed=99)
    expected = model.predict_proba(test)
    assert np.isnan(test).any()
    compiled = CompiledBoosting(model)
    # The largest tree's leaves fill the mask's upper half: the width is the narrowest that holds them.
    assert compiled.tables.keep.dtype == mask
    assert max(p.get_n_leaf_nodes() for it in model._predictors for p in it) > np.iinfo(mask).bits // 2
    assert np.array_equal(compiled.predict_proba(test), expected)
    assert np.array_equal(compiled.predict_proba(test.astype(np.float64)), expected)
    # Rows split over two threads land in the same places.
    assert np.array_equal(CompiledBoosting(model, threads=2).predict_proba(test), expected)


def test_boosting_is_exact_at_its_own_thresholds_and_at_infinities() -> None:
    X, y = _data(3000, 5, seed=11)
    model = HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=31, random_state=0).fit(X, y)
    thresholds = np.concatenate(
        [p.nodes["num_threshold"][p.nodes["is_leaf"] == 0] for it in model._predictors for p in it]
    )
    # A float32 copy of a float64 threshold may fall on either side of it; its neighbours straddle it.
    near = thresholds.astype(np.float32)
    values = np.concatenate([near, np.nextafter(near, np.float32(-np.inf)), np.nextafter(near, np.float32(np.inf))])
    values = np.concatenate([values, np.array([np.inf, -np.inf, np.nan, 0.0], dtype=np.float32)])
    test = np.random.default_rng(5).choice(values, size=(4000, X.shape[1])).astype(np.float32)
    assert np.array_equal(CompiledBoosting(model).predict_proba(test), model.predict_proba(test))
    assert np.array_equal(CompiledBoosting(model).predict_proba(test.astype(np.float64)), model.predict_proba(test))


def test_float64_rows_are_compared_with_the_float64_thresholds() -> None:
    X, y = _data(3000, 5, seed=15)
    model = HistGradientBoostingClassifier(max_iter=5, max_leaf_nodes=15, random_state=0).fit(X, y)
    # Move the first root's threshold just above a float32: float64 rows at it go left, float32 rows
    # cannot tell it from that float32 (which also goes left).
    root = model._predictors[0][0].nodes
    feature = int(root["feature_idx"][0])
    root["num_threshold"][0] = np.nextafter(np.float64(np.float32(root["num_threshold"][0])), np.inf)
    rows = np.nan_to_num(X[:300]).astype(np.float64)
    rows[:, feature] = root["num_threshold"][0]
    compiled = CompiledBoosting(model)
    assert np.array_equal(compiled.predict_proba(rows), model.predict_proba(rows))
    rows[:, feature] = np.nextafter(rows[:, feature], np.inf)  # and just above it, right
    assert np.array_equal(compiled.predict_proba(rows), model.predict_proba(rows))


def _chain(leaves: int) -> np.ndarray:
    """A tree of `leaves` leaves on feature 0: split 2i goes left (value <= 2i) to leaf 2i + 1 of value
    2i + 1, right to the next split; the last leaf is node 2 * leaves - 2."""
    nodes = 2 * leaves - 1
    index = np.arange(nodes)
    leaf = (index % 2 == 1) | (index == nodes - 1)
    return tree_nodes(
        leaf=leaf,
        feature=np.where(leaf, -2, 0),
        threshold=index.astype(np.float64),
        left=np.where(leaf, 0, index + 1),
        right=np.where(leaf, 0, index + 2),
        missing_left=np.zeros(nodes, dtype=np.uint8),
    )


@pytest.mark.parametrize(
    ("leaves", "mask"), [(16, np.uint16), (17, np.uint32), (32, np.uint32), (33, np.uint64), (64, np.uint64)]
)
def test_a_trees_every_leaf_is_reached_with_the_narrowest_mask_that_holds_them(leaves: int, mask: type) -> None:
    tables = ThresholdTables.of([_chain(2), _chain(leaves)], n_features=1)
    assert tables.keep.dtype == mask
    values = np.arange(-1.0, 2 * leaves)[:, None]
    out = np.zeros((len(values), 1))
    _quick_scores(values, *tables.arrays(values.dtype), np.zeros(2, dtype=np.intp), _BIT_INDEX, out)
    # The chain of 2 leaves adds 1 (value <= 0) or 2; the long one its first split at or above the value.
    small = np.where(values[:, 0] <= 0, 1.0, 2.0)
    long = np.minimum(2 * np.ceil(np.maximum(values[:, 0], 0) / 2) + 1, 2 * leaves - 2)
    assert out[:, 0].tolist() == (small + long).tolist()


# Run in a process of its own: kernels this process compiled for other tests would hide a gap.
PRECOMPILE_CHECK = """
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from nids_model.compiled import CompiledBoosting, CompiledForest, _forest_sums, _quick_scores, precompile

precompile()
compiled = (len(_quick_scores.signatures), len(_forest_sums.signatures))
rng = np.random.default_rng(0)
X = rng.normal(size=(3000, 8)).astype(np.float32)
for classes, leaves in ((2, 31), (9, 15), (3, 63)):
    y = np.digitize(X[:, 0] + rng.normal(scale=0.5, size=len(X)), np.linspace(-1.5, 1.5, classes - 1))
    boosting = HistGradientBoostingClassifier(max_iter=3, max_leaf_nodes=leaves, min_samples_leaf=5).fit(X, y)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    for model in (CompiledBoosting(boosting, threads=2), CompiledForest(forest, threads=2)):
        model.predict_proba(X[:5])  # one thread
        model.predict_proba(X)  # rows split over two
assert (len(_quick_scores.signatures), len(_forest_sums.signatures)) == compiled, "compiled on a batch"
"""


def test_precompile_covers_every_kernel_a_cascade_scores_with() -> None:
    done = subprocess.run([sys.executable, "-c", PRECOMPILE_CHECK], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_boosting_with_trees_over_64_leaves_uses_sklearns_predict() -> None:
    X, y = _data(4000, 2, seed=12)
    model = HistGradientBoostingClassifier(max_iter=2, max_leaf_nodes=80, min_samples_leaf=5, random_state=0).fit(X, y)
    assert max(p.get_n_leaf_nodes() for it in model._predictors for p in it) > 64
    with pytest.raises(NotCompilable, match="trees of more than 64 leaves are not compiled"):
        CompiledBoosting(model)
    assert probability_function(model) == model.predict_proba


def test_boosting_with_more_trees_than_16_bit_numbers_uses_sklearns_predict(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _data(500, 2, seed=14)
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    monkeypatch.setattr(ThresholdTables, "MAX_TREES", 4)
    with pytest.raises(NotCompilable, match="more than 4 trees"):
        CompiledBoosting(model)
    assert probability_function(model) == model.predict_proba


def test_threshold_tables_clear_a_splits_left_leaves_and_end_each_feature_with_a_sentinel() -> None:
    # Root: feature 1 <= 0.5 → (feature 0 <= 2.0 → leaf 10 | leaf 20) | leaf 30; NaN goes right at the root.
    tree = tree_nodes(
        leaf=np.array([False, False, True, True, True]),
        feature=np.array([1, 0, -2, -2, -2]),
        threshold=np.array([0.5, 2.0, 10.0, 20.0, 30.0]),
        left=np.array([1, 2, 0, 0, 0]),
        right=np.array([4, 3, 0, 0, 0]),
        missing_left=np.array([0, 1, 0, 0, 0], dtype=np.uint8),
    )
    tables = ThresholdTables.of([tree, tree[2:3].copy()], n_features=3)
    assert tables.feature_start.tolist() == [0, 2, 4, 5]
    assert tables.threshold.tolist() == [2.0, np.inf, 0.5, np.inf, np.inf]
    assert tables.tree.tolist() == [0, 0, 0, 0, 0]
    # Three leaves fit the narrowest mask: 16 bits a tree.
    assert tables.keep.dtype == np.uint16 and tables.tree.dtype == np.uint16
    every_leaf = (1 << 16) - 1
    assert tables.keep.tolist() == [every_leaf & ~0b001, every_leaf, every_leaf & ~0b011, every_leaf, every_leaf]
    assert tables.threshold32.dtype == np.float32
    assert tables.threshold32.tolist() == [2.0, np.inf, 0.5, np.inf, np.inf]
    assert tables.missing_right.tolist() == [False, False, True, False, False]
    assert tables.leaf_start.tolist() == [0, 3]
    assert tables.leaf_value.tolist() == [10.0, 20.0, 30.0, 10.0]
    # precompile() widens masks to compile each width's kernel; narrowing would drop leaves.
    wide = tables.with_mask(np.uint64)
    assert wide.keep.dtype == np.uint64 and wide.keep.tolist() == tables.keep.tolist()
    with pytest.raises(ValueError, match="uint16 masks are narrower than these tables' uint64"):
        wide.with_mask(np.uint16)


@pytest.mark.parametrize("classes", [2, 5])
def test_compiled_forest_probabilities_are_sklearns_bit_for_bit(classes: int) -> None:
    X, y = _data(3000, classes, seed=classes)
    forest = RandomForestClassifier(n_estimators=25, min_samples_leaf=2, n_jobs=1, random_state=0).fit(X, y)
    test, _ = _data(5000, classes, seed=98)
    expected = forest.predict_proba(test)  # one job: its trees are summed in order
    assert np.isnan(test).any()
    assert np.array_equal(CompiledForest(forest).predict_proba(test), expected)
    assert np.array_equal(CompiledForest(forest, threads=2).predict_proba(test), expected)


def test_wrappers_are_kept_and_other_models_use_their_own_predict() -> None:
    X, y = _data(1500, 4, seed=4)
    X = np.nan_to_num(X)
    scaled = ClassScaledClassifier(HistGradientBoostingClassifier(max_iter=10, random_state=0), cv=3).fit(X, y)
    assert np.array_equal(probability_function(scaled)(X), scaled.predict_proba(X))
    y_named = np.asarray(["Normal", "DoS", "Exploits", "Worms"])[y]
    forest = RandomForestClassifier(n_estimators=5, n_jobs=1, random_state=0)
    attacks = AttackOnlyClassifier(ClassScaledClassifier(forest, cv=3)).fit(X, y_named)
    assert np.array_equal(probability_function(attacks)(X), attacks.predict_proba(X))
    assert (probability_function(attacks)(X)[:, list(attacks.classes_).index("Normal")] == 0).all()
    knn = KNeighborsClassifier().fit(X, y)
    assert probability_function(knn) == knn.predict_proba


def test_a_matrix_of_the_wrong_width_is_refused() -> None:
    X, y = _data(500, 2, seed=1)
    boosting = CompiledBoosting(HistGradientBoostingClassifier(max_iter=5).fit(X, y))
    forest = CompiledForest(RandomForestClassifier(n_estimators=2, random_state=0).fit(np.nan_to_num(X), y))
    for compiled in (boosting, forest):
        with pytest.raises(ValueError, match=r"expected a matrix of 8 features, got shape \(500, 7\)"):
            compiled.predict_proba(X[:, :7])
        with pytest.raises(ValueError, match="expected a matrix of 8 features"):
            compiled.predict_proba(X[0])


def _stump() -> np.ndarray:
    """feature 3 <= 0.1 (NaN goes left) → leaf 10.0 | leaf 20.0."""
    return tree_nodes(
        leaf=np.array([False, True, True]),
        feature=np.array([3, -2, -2]),
        threshold=np.array([0.1, 10.0, 20.0]),
        left=np.array([1, 0, 0]),
        right=np.array([2, 0, 0]),
        missing_left=np.array([1, 0, 0], dtype=np.uint8),
    )


def test_flat_trees_number_children_across_trees_and_leaves_in_order() -> None:
    stump = _stump()
    assert stump.dtype == NODE
    trees = FlatTrees.of([stump, stump[1:2].copy(), stump])
    assert trees.nodes.dtype == WALK_NODE and trees.nodes.itemsize == 16
    assert trees.roots.tolist() == [0, 3, 4]
    assert trees.nodes["feature"].tolist() == [3, -1, -1, -1, 3, -1, -1]
    # A split's children are node indices; a leaf's `left` is its number among all leaves.
    assert trees.nodes["left"].tolist() == [1, 0, 1, 2, 5, 3, 4]
    assert trees.nodes["right"].tolist() == [2, -1, -1, -1, 6, -1, -1]
    assert trees.leaf_nodes.tolist() == [1, 2, 3, 5, 6]
    assert trees.missing_left.tolist() == [True, False, False, False, True, False, False]
    # 0.1 has no float32: the one just below it decides every float32 value alike.
    split = trees.nodes["threshold"][0]
    assert float(split) < 0.1 < float(np.nextafter(split, np.float32(np.inf)))
    assert all(a.flags.c_contiguous for a in trees.arrays())


def test_sparse_leaves_keep_each_leafs_nonzero_fractions_by_class() -> None:
    values = np.array([[1.0, 0.0, 0.0], [0.25, 0.0, 0.75], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    leaves = SparseLeaves.of(values)
    assert leaves.start.tolist() == [0, 1, 3, 4, 4]
    assert leaves.column.tolist() == [0, 0, 2, 2] and leaves.column.dtype == np.uint8
    assert leaves.value.tolist() == [1.0, 0.25, 0.75, 1.0]
    with pytest.raises(NotCompilable, match="negative leaf values"):
        SparseLeaves.of(-values)


def test_a_leaf_record_holds_the_range_of_its_entries() -> None:
    stump = _stump()
    trees = FlatTrees.of([stump, stump])
    ranged = trees.with_leaf_entries(np.array([0, 1, 3, 4, 6]))
    assert ranged.nodes["left"].tolist() == [1, 0, 1, 4, 3, 4]
    assert ranged.nodes["right"].tolist() == [2, 1, 3, 5, 4, 6]
    assert trees.nodes["left"].tolist() == [1, 0, 1, 4, 2, 3]  # the original is left as it was


def test_forest_is_exact_at_its_own_thresholds() -> None:
    X, y = _data(3000, 5, seed=13)
    forest = RandomForestClassifier(n_estimators=10, n_jobs=1, random_state=0).fit(X, y)
    splits = np.concatenate([e.tree_.threshold[e.tree_.children_left >= 0] for e in forest.estimators_])
    near = splits[np.isfinite(splits)].astype(np.float32)  # a split of NaN from the rest has threshold +inf
    values = np.concatenate([near, np.nextafter(near, np.float32(-np.inf)), np.nextafter(near, np.float32(np.inf))])
    test = np.random.default_rng(6).choice(values, size=(4000, X.shape[1])).astype(np.float32)
    test[::7, 2] = np.nan
    assert np.array_equal(CompiledForest(forest).predict_proba(test), forest.predict_proba(test))


def test_distinct_rows_rebuild_the_matrix() -> None:
    rng = np.random.default_rng(7)
    pool = rng.normal(size=(300, 42)).astype(np.float32)
    pool[5, 3] = np.nan
    pool[6] = pool[7]
    pool[6, 41] = np.nextafter(pool[7, 41], np.float32(np.inf))  # one bit apart: two distinct rows
    matrix = pool[rng.integers(0, len(pool), 4000)]
    first, inverse = distinct_rows(matrix)
    assert np.array_equal(matrix[first][inverse], matrix, equal_nan=True)
    assert len(first) == len({row.tobytes() for row in matrix})
    assert len({row.tobytes() for row in matrix[first]}) == len(first)
    empty_first, empty_inverse = distinct_rows(matrix[:0])
    assert empty_first.size == 0 and empty_inverse.size == 0


def test_rows_whose_hashes_collide_are_still_told_apart() -> None:
    from nids_model.compiled import _group_rows

    rng = np.random.default_rng(8)
    words = rng.integers(0, 3, size=(500, 4)).astype(np.uint32)  # 81 possible rows, many repeats
    first, inverse = _group_rows(words, np.zeros(len(words), dtype=np.uint64))  # every hash equal
    assert np.array_equal(words[first][inverse], words)
    assert len(first) == len({row.tobytes() for row in words})


@pytest.mark.parametrize("fixture", ["trained_model", "second_model"])
def test_detection_model_scores_repeats_like_the_pipelines(fixture: str, request: pytest.FixtureRequest) -> None:
    from tests.fixtures import flows_with_identity

    model, manifest = load_model(request.getfixturevalue(fixture))
    # One job for scikit-learn's forests too: with more it adds the trees' probabilities in the order
    # its threads finish (the last bits can differ run to run); with one, in tree order, as compiled.
    model.use_threads(1)
    assert manifest.models.attack_cat.family == {"trained_model": "hgb", "second_model": "rf+hgb"}[fixture]
    # The log names what scores, wrappers included.
    assert (
        model.describe()["attack_cat"]
        == {
            "trained_model": "AttackOnlyClassifier(ClassScaledClassifier(UnweightedBinsBoostingClassifier))",
            "second_model": "AttackOnlyClassifier(ClassScaledClassifier(ProbabilityAverage("
            "RandomForestClassifier, UnweightedBinsBoostingClassifier)))",
        }[fixture]
    )
    flows = flows_with_identity(600, seed=21)
    flows = flows.iloc[np.r_[0:600, 0:300, 10:20]].reset_index(drop=True)  # repeats within one batch
    scores = model.score(flows)
    expected = model.label_pipeline.predict_proba(flows)[:, list(model.label_pipeline.classes_).index(1)]
    assert np.array_equal(scores.attack_probability, expected)
    attacks = scores.is_attack
    assert np.array_equal(scores.class_probabilities[attacks], model.attack_cat_pipeline.predict_proba(flows[attacks]))
    # The compiled functions are built on first use and never pickled into an artifact.
    assert model._compiled is not None
    assert set(model.__getstate__()) == {"label_pipeline", "attack_cat_pipeline", "threshold", "seen"}
    assert pickle.loads(pickle.dumps(model))._compiled is None

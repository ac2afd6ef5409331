"""Compiled scoring: a fitted HistGradientBoosting model's or RandomForest's trees evaluated in one
native, GIL-free call.

scikit-learn predicts an ensemble one tree at a time from Python (a call, an allocation and a pass
over the batch per tree: hundreds of them for the deployed pair), taking the GIL back between trees.
Here all trees are flattened into a few arrays and evaluated in one numba-compiled call that never
holds the GIL, so another thread decodes and produces meanwhile.

A forest's trees (deep: thousands of leaves) are walked root to leaf. Boosted trees (at most 64
leaves each) are scored by QuickScorer (Lucchese et al., SIGIR 2015), which replaces the walk's
unpredictable branches with one ascending scan per feature over every tree's split thresholds:
each split the row fails clears its left subtree's leaves from its tree's leaf mask, and the
lowest leaf left is the one the walk would reach.

The results are bit-identical to `predict_proba`: a boosted class score starts at the same baseline
and adds the same leaf values in the same order, and the link function is the model's own; a forest
adds each tree's nonzero leaf class fractions in the order of its trees and divides by their count,
as scikit-learn does with one job (its zeros would leave the sums as they are).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numba
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from nids_model.attack_only import AttackOnlyClassifier
from nids_model.averaging import ProbabilityAverage
from nids_model.reweighting import ClassScaledClassifier

ProbabilityFunction = Callable[[np.ndarray], np.ndarray]

# One node of a tree as both layouts are built from. A leaf has feature -1 and children -1; a boosted
# tree keeps its leaf value in `threshold`.
NODE = np.dtype(
    [("feature", np.intp), ("threshold", np.float64), ("left", np.intp), ("right", np.intp), ("missing_left", np.bool_)]
)


def gil_free_kernel(function: Callable[..., Any]) -> Callable[..., Any]:
    """nopython, GIL-free, cached on disk when a cache directory is writable (next to this file,
    NUMBA_CACHE_DIR or the user's cache); otherwise compiled at each start (~4 s)."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


# Below this many rows per thread, handing work to a second thread costs more than it saves.
_MIN_ROWS_PER_THREAD = 2_000


def tree_nodes(
    leaf: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    missing_left: np.ndarray,
) -> np.ndarray:
    """One tree as NODE records.

    Parameters
    ----------
    leaf : ndarray of shape (n_nodes,), dtype=bool
        Whether each node is a leaf.
    feature : ndarray of shape (n_nodes,), dtype=int
        The column each split node tests; ignored at leaves.
    threshold : ndarray of shape (n_nodes,), dtype=float64
        A split goes left when the value is <= threshold; a boosted leaf's value.
    left, right : ndarray of shape (n_nodes,), dtype=int
        Each split node's children, numbered within the tree; ignored at leaves.
    missing_left : ndarray of shape (n_nodes,), dtype=bool or uint8
        Whether NaN goes left at each split node.

    Returns
    -------
    nodes : ndarray of shape (n_nodes,), dtype=NODE
    """
    nodes = np.empty(len(leaf), dtype=NODE)
    nodes["feature"] = np.where(leaf, -1, feature)
    nodes["threshold"] = threshold
    nodes["left"] = np.where(leaf, -1, left)
    nodes["right"] = np.where(leaf, -1, right)
    nodes["missing_left"] = missing_left
    return nodes


# One node of a forest as the walk reads it: its four fields in 16 bytes, one cache line's load. A
# leaf has feature -1, its number in `left` and -1 in `right`, or (`with_leaf_entries`) the range of
# its SparseLeaves entries in the two.
WALK_NODE = np.dtype([("feature", np.int32), ("threshold", np.float32), ("left", np.int32), ("right", np.int32)])


@dataclasses.dataclass(frozen=True)
class FlatTrees:
    """An ensemble's trees end to end as WALK_NODE records, for float32 rows (what the walk takes).

    Attributes
    ----------
    roots : ndarray of shape (n_trees,), dtype=intp
        The index of each tree's root node.
    nodes : ndarray of shape (n_nodes,), dtype=WALK_NODE
        A split's children are indices into `nodes`; a leaf holds its number, or the range of its
        entries (`with_leaf_entries`). A threshold is the largest float32 at or below the tree's
        float64 one: a float32 value is at or below the one exactly when it is at or below the other.
    missing_left : ndarray of shape (n_nodes,), dtype=bool
        Whether NaN goes left at each split node (read only for NaN).
    leaf_nodes : ndarray of shape (n_leaves,), dtype=intp
        The index, among the input trees' nodes end to end, of each leaf in the order it is numbered.
    """

    roots: np.ndarray
    nodes: np.ndarray
    missing_left: np.ndarray
    leaf_nodes: np.ndarray

    @classmethod
    def of(cls, trees: Sequence[np.ndarray]) -> FlatTrees:
        """`trees`: one NODE array per tree (`tree_nodes`), in the order their values are summed."""
        sizes = np.asarray([len(nodes) for nodes in trees], dtype=np.intp)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        joined = np.concatenate(trees)
        if len(joined) >= np.iinfo(np.int32).max:
            raise NotCompilable(f"{len(joined):,} nodes do not fit 32-bit node numbers")
        offsets = np.repeat(roots, sizes)
        leaf = joined["feature"] < 0
        nodes = np.empty(len(joined), dtype=WALK_NODE)
        nodes["feature"] = np.where(leaf, -1, joined["feature"])
        nodes["threshold"] = _float32_at_or_below(joined["threshold"])
        nodes["left"] = np.where(leaf, np.cumsum(leaf) - 1, joined["left"] + offsets)
        nodes["right"] = np.where(leaf, -1, joined["right"] + offsets)
        return cls(roots, nodes, np.ascontiguousarray(joined["missing_left"]), np.flatnonzero(leaf))

    def with_leaf_entries(self, start: np.ndarray) -> FlatTrees:
        """These trees with leaf n's `left` and `right` holding start[n] and start[n + 1], the range
        of its entries in a SparseLeaves table: the walk reads them from the record it stops at.

        Parameters
        ----------
        start : ndarray of shape (n_leaves + 1,), dtype=int
        """
        if start[-1] >= np.iinfo(np.int32).max:
            raise NotCompilable(f"{start[-1]:,} leaf entries do not fit 32-bit entry numbers")
        nodes = self.nodes.copy()
        number = nodes["left"][self.leaf_nodes]
        nodes["left"][self.leaf_nodes] = start[number]
        nodes["right"][self.leaf_nodes] = start[number + 1]
        return dataclasses.replace(self, nodes=nodes)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The walk's tree arguments, in its order."""
        return self.roots, self.nodes, self.missing_left


@dataclasses.dataclass(frozen=True)
class SparseLeaves:
    """Each leaf's nonzero class fractions, class by class.

    A deep forest's leaves are mostly pure (three in four of the deployed forest's hold one class at
    1.0), so its dense table of (n_leaves, n_classes) float64, 8 MB there, is mostly zeros that every
    row's walk would fetch and add. Adding a zero leaves a sum of non-negative fractions as it was,
    so adding only these entries gives the dense sums bit for bit.

    Attributes
    ----------
    start : ndarray of shape (n_leaves + 1,), dtype=intp
        Leaf n's entries are start[n] to start[n + 1] - 1.
    column : ndarray of shape (n_entries,), unsigned int (the narrowest that holds n_classes - 1)
        The class (column of the probabilities) of each entry.
    value : ndarray of shape (n_entries,), dtype=float64
    """

    start: np.ndarray
    column: np.ndarray
    value: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> SparseLeaves:
        """`values`: ndarray of shape (n_leaves, n_classes), each leaf's class fractions (≥ 0)."""
        if (values < 0).any():
            raise NotCompilable("negative leaf values are not compiled")
        nonzero = values != 0
        leaf, column = np.nonzero(nonzero)  # row-major: each leaf's classes ascending
        start = np.concatenate([[0], np.cumsum(np.count_nonzero(nonzero, axis=1))]).astype(np.intp)
        return cls(start, column.astype(np.min_scalar_type(max(values.shape[1] - 1, 0))), values[leaf, column])


def _float32_at_or_below(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 (n_nodes,) → (n_nodes,), dtype=float32."""
    nearest = threshold.astype(np.float32)
    above = nearest.astype(np.float64) > threshold
    return np.where(above, np.nextafter(nearest, np.float32(-np.inf)), nearest)


@numba.njit(nogil=True, inline="always")
def _leaf_node(
    matrix: np.ndarray, row: int, node: int, nodes: np.ndarray, missing_left: np.ndarray
) -> int:  # pragma: no cover - compiled
    """The index of the leaf node `matrix[row]` reaches from `node`, the tree's root (inlined).
    Branchy on purpose: a predicted branch lets the CPU run ahead into the next row; a select chains
    every level's loads.

    Parameters
    ----------
    matrix : ndarray of shape (n_samples, n_features), dtype=float32
    row, node : int
        The row to walk, and the index of its tree's root.
    nodes, missing_left : ndarray of shape (n_nodes,)
        The FlatTrees arrays.

    Returns
    -------
    node : int
        The leaf's index in `nodes`.
    """
    while True:
        split = nodes[node]
        if split.feature < 0:
            return node
        value = matrix[row, split.feature]
        if value <= split.threshold:
            node = split.left
        elif np.isnan(value):  # the side the tree learned for missing values
            node = split.left if missing_left[node] else split.right
        else:
            node = split.right


# De Bruijn sequence for 64 bits: (x * _DE_BRUIJN) >> 58 is distinct for each power of two x, so a
# 64-entry table turns a mask's lowest set bit into its index without a loop.
_DE_BRUIJN = 0x03F79D71B4CB0A89
_BIT_INDEX = np.zeros(64, dtype=np.intp)
_BIT_INDEX[[((1 << bit) * _DE_BRUIJN) % (1 << 64) >> 58 for bit in range(64)]] = np.arange(64)
_ALL_BITS = (1 << 64) - 1


# The leaf masks a tree's leaf count takes: a row's reachable leaves are one of these per tree.
MASK_DTYPES = (np.uint16, np.uint32, np.uint64)
# A slot's tree number.
TREE_DTYPE = np.uint16


@dataclasses.dataclass(frozen=True)
class ThresholdTables:
    """QuickScorer's tables of an ensemble of trees with at most 64 leaves each.

    A scan's slot is 8 bytes for trees of at most 16 leaves (a float32 threshold, a 16-bit tree and a
    16-bit mask), where 64-bit fields would make it 24: the slots are what a row's scan streams
    through, so the narrowest types that hold the ensemble are taken.

    Attributes
    ----------
    feature_start : ndarray of shape (n_features + 1,), dtype=intp
        The split nodes testing feature f are slots feature_start[f] to feature_start[f + 1] - 1,
        by ascending threshold; the last of them is a sentinel of threshold +inf that stops the scan.
    threshold : ndarray of shape (n_slots,), dtype=float64
        A row goes right at a split (fails it) when its value is > threshold.
    threshold32 : ndarray of shape (n_slots,), dtype=float32
        The largest float32 at or below each threshold: a float32 value is above the one exactly
        when it is above the other, so float32 rows are scanned with these.
    tree : ndarray of shape (n_slots,), dtype=TREE_DTYPE
        The tree each split belongs to.
    keep : ndarray of shape (n_slots,), dtype=uint16, uint32 or uint64 (the fewest bits that hold
        the largest tree's leaves)
        The leaves of the split's tree still reachable when the row goes right: all bits but those of
        its left subtree's leaves (leaf i of a tree, counted left to right, is bit i).
    missing_right : ndarray of shape (n_slots,), dtype=bool
        Whether NaN goes right at the split.
    leaf_start : ndarray of shape (n_trees,), dtype=intp
        The index in leaf_value of each tree's leftmost leaf.
    leaf_value : ndarray of shape (n_leaves,), dtype=float64
        Every tree's leaf values, left to right, tree after tree.
    """

    feature_start: np.ndarray
    threshold: np.ndarray
    threshold32: np.ndarray
    tree: np.ndarray
    keep: np.ndarray
    missing_right: np.ndarray
    leaf_start: np.ndarray
    leaf_value: np.ndarray

    MAX_LEAVES = np.iinfo(MASK_DTYPES[-1]).bits
    MAX_TREES = np.iinfo(TREE_DTYPE).max + 1

    @classmethod
    def of(cls, trees: Sequence[np.ndarray], n_features: int) -> ThresholdTables:
        """`trees`: one NODE array per tree (`tree_nodes`, root first), in the order their values are
        summed; a leaf's value is its threshold."""
        if len(trees) > cls.MAX_TREES:
            raise NotCompilable(f"ensembles of more than {cls.MAX_TREES:,} trees are not compiled")
        splits: list[tuple[int, float, int, int, bool]] = []  # feature, threshold, tree, keep, missing right
        leaf_start: list[int] = []
        leaf_value: list[float] = []
        for index, nodes in enumerate(trees):
            if np.count_nonzero(nodes["feature"] < 0) > cls.MAX_LEAVES:
                raise NotCompilable(f"trees of more than {cls.MAX_LEAVES} leaves are not compiled")
            leaf_start.append(len(leaf_value))
            leaf_value.extend(nodes["threshold"][_leaves_and_splits(nodes, index, splits)])
        sentinels = [(feature, np.inf, 0, _ALL_BITS, False) for feature in range(n_features)]
        columns = list(zip(*(splits + sentinels), strict=True))
        feature = np.asarray(columns[0], dtype=np.intp)
        threshold = np.asarray(columns[1], dtype=np.float64)
        order = np.lexsort((threshold, feature))  # stable: a feature's sentinel follows its real +inf splits
        leaves = np.diff(np.append(leaf_start, len(leaf_value)))
        # Dropping a mask's high bits drops only leaves the tree does not have.
        keep = np.asarray(columns[3], dtype=np.uint64)[order].astype(_mask_dtype(int(leaves.max(initial=1))))
        return cls(
            np.searchsorted(feature[order], np.arange(n_features + 1)).astype(np.intp),
            threshold[order],
            _float32_at_or_below(threshold[order]),
            np.asarray(columns[2], dtype=TREE_DTYPE)[order],
            keep,
            np.asarray(columns[4], dtype=np.bool_)[order],
            np.asarray(leaf_start, dtype=np.intp),
            np.asarray(leaf_value, dtype=np.float64),
        )

    def with_mask(self, dtype: type[np.unsignedinteger[Any]]) -> ThresholdTables:
        """These tables with their masks widened to `dtype`, one of MASK_DTYPES no narrower than
        theirs: the same scores, from the kernel compiled for that width."""
        if np.iinfo(dtype).bits < np.iinfo(self.keep.dtype).bits:
            raise ValueError(f"{np.dtype(dtype).name} masks are narrower than these tables' {self.keep.dtype.name}")
        return dataclasses.replace(self, keep=self.keep.astype(dtype))

    def arrays(self, dtype: np.dtype[Any]) -> tuple[np.ndarray, ...]:
        """The kernel's table arguments for rows of `dtype`, in its order."""
        return (
            self.feature_start,
            self.threshold32 if dtype == np.float32 else self.threshold,
            self.tree,
            self.keep,
            self.missing_right,
            self.leaf_start,
            self.leaf_value,
        )


def _mask_dtype(leaves: int) -> type[np.unsignedinteger[Any]]:
    """The narrowest of MASK_DTYPES with a bit for each of `leaves` leaves (at most 64)."""
    return next(dtype for dtype in MASK_DTYPES if leaves <= np.iinfo(dtype).bits)


def _leaves_and_splits(nodes: np.ndarray, tree: int, splits: list[tuple[int, float, int, int, bool]]) -> list[int]:
    """The leaves of a tree of NODE records (root first), left to right; appends its splits' table rows
    (feature, threshold, tree, keep, missing right) to `splits`."""
    leaves: list[int] = []

    def visit(node: int) -> None:
        if nodes["feature"][node] < 0:
            leaves.append(node)
            return
        first = len(leaves)
        visit(int(nodes["left"][node]))
        keep = _ALL_BITS & ~(((1 << (len(leaves) - first)) - 1) << first)  # all but the left subtree's
        feature, threshold = int(nodes["feature"][node]), float(nodes["threshold"][node])
        splits.append((feature, threshold, tree, keep, not nodes["missing_left"][node]))
        visit(int(nodes["right"][node]))

    visit(0)
    return leaves


@gil_free_kernel
def _quick_scores(
    matrix: np.ndarray,
    feature_start: np.ndarray,
    threshold: np.ndarray,
    tree: np.ndarray,
    keep: np.ndarray,
    missing_right: np.ndarray,
    leaf_start: np.ndarray,
    leaf_value: np.ndarray,
    tree_class: np.ndarray,
    bit_index: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Add each boosted tree's leaf value to its class's raw score, by QuickScorer.

    Parameters
    ----------
    matrix : ndarray of shape (n_samples, n_features), dtype=float32 or float64
    feature_start, threshold, tree, keep, missing_right, leaf_start, leaf_value : ndarray
        The ThresholdTables arrays (`arrays(matrix.dtype)`).
    tree_class : ndarray of shape (n_trees,), dtype=intp
        The class (column of `out`) each tree scores.
    bit_index : ndarray of shape (64,), dtype=intp
        The index of a power of two from its De Bruijn product (`_BIT_INDEX`).
    out : ndarray of shape (n_samples, n_classes), dtype=float64
        Starts at the baseline; the sums are added in place.
    """
    reachable = np.empty(leaf_start.shape[0], dtype=keep.dtype)
    every_leaf = ~keep.dtype.type(0)
    row_sums = np.empty(out.shape[1], dtype=np.float64)  # a row's class sums, written back once
    for row in range(matrix.shape[0]):
        reachable[:] = every_leaf
        for f in range(feature_start.shape[0] - 1):
            value = matrix[row, f]
            if np.isnan(value):
                for slot in range(feature_start[f], feature_start[f + 1]):  # the sentinel keeps all leaves
                    if missing_right[slot]:
                        reachable[tree[slot]] &= keep[slot]
            else:
                slot = feature_start[f]
                while threshold[slot] < value:  # the feature's +inf sentinel ends the scan
                    reachable[tree[slot]] &= keep[slot]
                    slot += 1
        row_sums[:] = out[row]
        # Tree by tree, as sklearn adds them: each class's sum takes its leaf values in sklearn's order.
        for t in range(leaf_start.shape[0]):
            mask = np.uint64(reachable[t])
            lowest = mask & (~mask + np.uint64(1))
            leaf = bit_index[(lowest * np.uint64(_DE_BRUIJN)) >> np.uint64(58)]
            row_sums[tree_class[t]] += leaf_value[leaf_start[t] + leaf]
        out[row] = row_sums


@gil_free_kernel
def _forest_sums(
    matrix: np.ndarray,
    roots: np.ndarray,
    nodes: np.ndarray,
    missing_left: np.ndarray,
    entry_column: np.ndarray,
    entry_value: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Add each tree's nonzero leaf class fractions (its leaf's SparseLeaves entries), tree after tree.

    Parameters
    ----------
    matrix : ndarray of shape (n_samples, n_features), dtype=float32
    roots, nodes, missing_left : ndarray
        The FlatTrees arrays, each leaf holding its range of entries (`with_leaf_entries`).
    entry_column, entry_value : ndarray of shape (n_entries,)
        The SparseLeaves arrays.
    out : ndarray of shape (n_samples, n_classes), dtype=float64
        Starts at zero; the sums are added in place.
    """
    for tree in range(roots.shape[0]):
        root = roots[tree]
        for row in range(matrix.shape[0]):
            leaf = nodes[_leaf_node(matrix, row, root, nodes, missing_left)]
            for entry in range(leaf.left, leaf.right):
                out[row, entry_column[entry]] += entry_value[entry]


class _RowSplitter:
    """Runs a walk over a batch on up to `threads` threads, each on its own rows."""

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="nids-score") if self.threads > 1 else None

    def run(self, walk: Callable[[np.ndarray, np.ndarray], None], matrix: np.ndarray, out: np.ndarray) -> None:
        parts = min(self.threads, matrix.shape[0] // _MIN_ROWS_PER_THREAD)
        if self._pool is None or parts < 2:
            walk(matrix, out)
            return
        bounds = np.linspace(0, matrix.shape[0], parts + 1).astype(int)
        slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        for done in [self._pool.submit(walk, matrix[s], out[s]) for s in slices]:
            done.result()


class _CompiledEnsemble:
    """What both compiled ensembles share: the row splitter and the input check."""

    def __init__(self, n_features: int, threads: int) -> None:
        self.n_features = n_features
        self._rows = _RowSplitter(threads)

    def _checked(self, matrix: np.ndarray, dtype: type[np.floating[Any]] | None = None) -> np.ndarray:
        """`matrix` as the kernels take it: C-contiguous, `dtype` if given, `n_features` wide."""
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} features, got shape {matrix.shape}")
        return np.ascontiguousarray(matrix, dtype=dtype)


class CompiledForest(_CompiledEnsemble):
    """The trees of a fitted RandomForestClassifier as flat arrays; `predict_proba` as the forest's."""

    def __init__(self, model: RandomForestClassifier, threads: int = 1) -> None:
        if getattr(model, "n_outputs_", 1) != 1:
            raise NotCompilable("multi-output forests are not compiled")
        trees = [estimator.tree_ for estimator in model.estimators_]
        super().__init__(int(model.n_features_in_), threads)
        flat = FlatTrees.of([_forest_tree(tree) for tree in trees])
        self.n_trees = len(trees)
        values = np.concatenate([tree.value[:, 0, :] for tree in trees])
        self.leaves = SparseLeaves.of(np.asarray(values[flat.leaf_nodes], np.float64))
        self.n_classes = values.shape[1]
        self.trees = flat.with_leaf_entries(self.leaves.start)
        self.warm_up()

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the walk now rather than on a live batch."""
        self.predict_proba(np.zeros((2, self.n_features), dtype=np.float32))

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """The forest's class probabilities, bit for bit.

        Parameters
        ----------
        matrix : ndarray of shape (n_samples, n_features)
            Cast to float32, as scikit-learn's trees do.

        Returns
        -------
        probabilities : ndarray of shape (n_samples, n_classes), dtype=float64
        """
        matrix = self._checked(matrix, np.float32)
        out = np.zeros((matrix.shape[0], self.n_classes), dtype=np.float64)
        self._rows.run(self._walk, matrix, out)
        out /= self.n_trees
        return out

    def _walk(self, matrix: np.ndarray, out: np.ndarray) -> None:
        _forest_sums(matrix, *self.trees.arrays(), self.leaves.column, self.leaves.value, out)


def _forest_tree(tree: Any) -> np.ndarray:
    """A fitted sklearn `Tree` (a forest's `estimator.tree_`) as NODE records."""
    missing = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=np.bool_))
    leaf = tree.children_left < 0
    return tree_nodes(leaf, tree.feature, tree.threshold, tree.children_left, tree.children_right, missing)


class CompiledBoosting(_CompiledEnsemble):
    """The trees of a fitted HistGradientBoostingClassifier as QuickScorer tables; `predict_proba` as the model's."""

    def __init__(self, model: HistGradientBoostingClassifier, threads: int = 1) -> None:
        # Iteration by iteration, class by class: the order sklearn adds them in.
        predictors = [(k, p.nodes) for iteration in model._predictors for k, p in enumerate(iteration)]
        if any(nodes["is_categorical"].any() for _, nodes in predictors):
            raise NotCompilable("native categorical splits are not compiled")
        super().__init__(int(model.n_features_in_), threads)
        self.tables = ThresholdTables.of([_boosted_tree(nodes) for _, nodes in predictors], self.n_features)
        self.tree_class = np.asarray([k for k, _ in predictors], dtype=np.intp)
        self.baseline = np.ascontiguousarray(model._baseline_prediction.ravel(), dtype=np.float64)
        self.link = model._loss.predict_proba
        self.warm_up()

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the kernel for both array layouts it sees and these
        tables' types, now rather than on a live batch."""
        probe = np.zeros((2, self.n_features), dtype=np.float32)
        self._walk(probe, np.zeros((2, len(self.baseline)), order="F"))
        self._walk(probe[:1], np.zeros((2, len(self.baseline)), order="F")[:1])

    def raw_predict(self, matrix: np.ndarray) -> np.ndarray:
        """The model's raw scores (before the link), bit for bit.

        Parameters
        ----------
        matrix : ndarray of shape (n_samples, n_features), dtype=float32 or float64
            float32 rows are compared with the float32 thresholds (`ThresholdTables.threshold32`),
            float64 rows with scikit-learn's own: either way each split goes as scikit-learn's does.

        Returns
        -------
        raw : ndarray of shape (n_samples, n_trees_per_iteration), dtype=float64, Fortran order
        """
        matrix = self._checked(matrix)
        # Column-major like sklearn's: the link's row sums then add in the same order, bit for bit.
        out = np.empty((matrix.shape[0], self.baseline.shape[0]), dtype=np.float64, order="F")
        out[:] = self.baseline
        self._rows.run(self._walk, matrix, out)
        return out

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """The model's class probabilities, bit for bit.

        Parameters
        ----------
        matrix : ndarray of shape (n_samples, n_features), dtype=float32 or float64

        Returns
        -------
        probabilities : ndarray of shape (n_samples, n_classes), dtype=float64
        """
        return np.asarray(self.link(self.raw_predict(matrix)))

    def _walk(self, matrix: np.ndarray, out: np.ndarray) -> None:
        _quick_scores(matrix, *self.tables.arrays(matrix.dtype), self.tree_class, _BIT_INDEX, out)


def _boosted_tree(nodes: np.ndarray) -> np.ndarray:
    """A boosting predictor's `nodes` (sklearn's PREDICTOR_RECORD_DTYPE) as NODE records."""
    leaf = nodes["is_leaf"].astype(bool)
    threshold = np.where(leaf, nodes["value"], nodes["num_threshold"])
    return tree_nodes(leaf, nodes["feature_idx"], threshold, nodes["left"], nodes["right"], nodes["missing_go_to_left"])


class NotCompilable(ValueError):
    """The estimator has a part the compiled walk does not reproduce; sklearn's own predict is used."""


def probability_function(estimator: Any, threads: int = 1) -> ProbabilityFunction:
    """The fastest exact `predict_proba` for a pipeline's final estimator: compiled for gradient
    boosting and random forests (also inside ClassScaledClassifier, AttackOnlyClassifier and
    ProbabilityAverage), the estimator's own method otherwise.

    Returns
    -------
    predict_proba : callable
        Takes an ndarray of shape (n_samples, n_features), dtype=float32 (FlowPreprocessor's output);
        returns an ndarray of shape (n_samples, n_classes), dtype=float64.
    """
    if isinstance(estimator, ClassScaledClassifier):
        scaled = probability_function(estimator.estimator_, threads)
        return lambda matrix: estimator.rescale(scaled(matrix))
    if isinstance(estimator, AttackOnlyClassifier):
        attacks = probability_function(estimator.estimator_, threads)
        return lambda matrix: estimator.expand(attacks(matrix))
    if isinstance(estimator, ProbabilityAverage):
        members = [probability_function(member, threads) for member in estimator.estimators_]
        return lambda matrix: estimator.average([member(matrix) for member in members])
    if isinstance(estimator, HistGradientBoostingClassifier):
        try:
            return CompiledBoosting(estimator, threads).predict_proba
        except NotCompilable:
            pass
    if isinstance(estimator, RandomForestClassifier):
        try:
            return CompiledForest(estimator, threads).predict_proba
        except NotCompilable:
            pass
    return cast(ProbabilityFunction, estimator.predict_proba)


def distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of `matrix`, compared byte for byte (NaN equals a NaN of the same bits).

    Parameters
    ----------
    matrix : ndarray of shape (n_samples, n_features), any dtype

    Returns
    -------
    first : ndarray of shape (n_distinct,), dtype=intp
        The index of each distinct row's first occurrence (ordered by hash, not by position).
    inverse : ndarray of shape (n_samples,), dtype=intp
        For every row, the index of its distinct row in `first`: `matrix[first][inverse]` is `matrix`.
    """
    if matrix.shape[0] == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    words = row_words(matrix)
    first, inverse = _group_rows(words, row_hashes(words))
    return first, inverse


def row_words(matrix: np.ndarray) -> np.ndarray:
    """Each row's bytes, as the hashing and comparing kernels take them.

    Parameters
    ----------
    matrix : ndarray of shape (n_samples, n_features), any dtype

    Returns
    -------
    words : ndarray of shape (n_samples, n_words), dtype=uint32 (uint8 when a row's size is not a
        multiple of 4), C-contiguous
    """
    rows = np.ascontiguousarray(matrix)
    words = rows.view(np.uint8).reshape(rows.shape[0], rows.shape[1] * rows.dtype.itemsize)
    return words.view(np.uint32) if words.shape[1] % 4 == 0 else words


def row_hashes(words: np.ndarray) -> np.ndarray:
    """FNV-1a of each row of `row_words` (n_samples, n_words) → (n_samples,), dtype=uint64."""
    hashes: np.ndarray = _row_hashes(words)
    return hashes


@numba.njit(nogil=True, inline="always")
def _fnv1a(words: np.ndarray, row: int) -> np.uint64:  # pragma: no cover - compiled
    """FNV-1a of `words[row]` (inlined into each kernel that hashes rows)."""
    h = np.uint64(14695981039346656037)
    for j in range(words.shape[1]):
        h = (h ^ np.uint64(words[row, j])) * np.uint64(1099511628211)
    return h


@numba.njit(nogil=True, inline="always")
def _same_words(a: np.ndarray, row: int, b: np.ndarray, other: int) -> bool:  # pragma: no cover - compiled
    """Whether `a[row]` and `b[other]` hold the same words (inlined)."""
    for j in range(a.shape[1]):  # noqa: SIM110 - numba compiles this loop, not all() over a generator
        if a[row, j] != b[other, j]:
            return False
    return True


@gil_free_kernel
def _row_hashes(words: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """FNV-1a of each row.

    Parameters
    ----------
    words : ndarray of shape (n_samples, n_words), dtype=uint32 or uint8
        Each row's bytes.

    Returns
    -------
    hashes : ndarray of shape (n_samples,), dtype=uint64
    """
    hashes = np.empty(words.shape[0], dtype=np.uint64)
    for row in range(words.shape[0]):
        hashes[row] = _fnv1a(words, row)  # equal hashes are compared word by word in _group_rows
    return hashes


@gil_free_kernel
def _group_rows(words: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """`distinct_rows` of `words` (n_samples, n_words), given their `hashes` (n_samples,), dtype=uint64:
    rows of equal hash are compared word by word, so a collision never merges two rows."""
    n = words.shape[0]
    order = np.argsort(hashes, kind="mergesort")  # stable: a group's first row is its earliest
    inverse = np.empty(n, dtype=np.intp)
    first = np.empty(n, dtype=np.intp)
    count = 0
    start = 0
    while start < n:
        stop = start
        while stop < n and hashes[order[stop]] == hashes[order[start]]:
            stop += 1
        group_first = count
        for position in range(start, stop):
            row = order[position]
            match = -1
            for candidate in range(group_first, count):
                if _same_words(words, row, words, first[candidate]):
                    match = candidate
                    break
            if match < 0:
                first[count] = row
                match = count
                count += 1
            inverse[row] = match
        start = stop
    return first[:count].copy(), inverse


def find_rows(words: np.ndarray, table_hashes: np.ndarray, table_words: np.ndarray) -> np.ndarray:
    """The row of `table_words` equal to each row of `words`, -1 where none is (one GIL-free pass:
    hash, binary search among the table's ascending hashes, word-by-word comparison).

    Parameters
    ----------
    words : ndarray of shape (n_samples, n_words), dtype=uint32 or uint8 (`row_words`)
    table_hashes : ndarray of shape (n_table,), dtype=uint64, ascending, no two equal
    table_words : ndarray of shape (n_table, n_words), the dtype of `words`

    Returns
    -------
    index : ndarray of shape (n_samples,), dtype=intp
    """
    found: np.ndarray = _find_rows(words, table_hashes, table_words)
    return found


@gil_free_kernel
def _find_rows(
    words: np.ndarray, table_hashes: np.ndarray, table_words: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    found = np.full(words.shape[0], -1, dtype=np.intp)
    if table_hashes.shape[0] == 0:
        return found
    for row in range(words.shape[0]):
        h = _fnv1a(words, row)
        at = int(np.searchsorted(table_hashes, h))
        if at < table_hashes.shape[0] and table_hashes[at] == h and _same_words(words, row, table_words, at):
            found[row] = at
    return found


def precompile() -> None:
    """Fill numba's on-disk cache for every kernel and array layout scoring uses (an image build runs
    this so that containers start without the ~4 s compile)."""
    rows = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    # Two classes give a one-column output (numba types it C-contiguous), three a Fortran-ordered one.
    for labels in ((rows[:, 0] > 0).astype(int), np.digitize(rows[:, 0], [-0.5, 0.5])):
        boosting = CompiledBoosting(HistGradientBoostingClassifier(max_iter=2).fit(rows, labels))
        for mask in MASK_DTYPES:  # the wider masks of trees with more leaves than these few rows grow
            boosting.tables = boosting.tables.with_mask(mask)
            boosting.warm_up()
        CompiledForest(RandomForestClassifier(n_estimators=2).fit(rows, labels))
    distinct_rows(rows)
    words = row_words(rows)
    find_rows(words, row_hashes(words[:1]), words[:1])

"""Feature analysis on the training split: correlation, recursive feature elimination, information gain.

Everything here sees only training rows; the RFE curve is scored on an inner hold-out of them, so the
validation split stays untouched for the final figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from joblib import parallel_config
from matplotlib.figure import Figure
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import RFE, mutual_info_classif
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score, roc_curve

from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES, FEATURES, LABEL
from nids_model.folds import grouped_holdout, vector_groups
from nids_model.preprocess import FlowPreprocessor


@dataclasses.dataclass(frozen=True)
class FeatureAnalysis:
    correlation: pd.DataFrame  # feature × (label, each class), Pearson r; sorted by |r| with label
    mutual_information: pd.DataFrame  # feature → MI (nats) with attack_cat and with label, ranked
    rfe_ranking: pd.Series  # feature → RFE rank (1 = kept longest)
    rfe_curve: pd.DataFrame  # features kept → inner hold-out macro-F1
    redundant_pairs: pd.DataFrame  # feature pairs with |r| ≥ 0.95
    selected: tuple[str, ...]
    reason: str


def analyse(
    train: pd.DataFrame, counts: Sequence[int], sample_rows: int, tolerance: float, seed: int
) -> FeatureAnalysis:
    sample = _stratified_sample(train, sample_rows, seed)
    matrix = FlowPreprocessor().fit(sample).transform(sample)
    features = pd.DataFrame(matrix, columns=list(FEATURES))
    y_cat = sample[ATTACK_CAT].to_numpy()
    y_label = sample[LABEL].to_numpy()

    correlation = _target_correlation(features, y_label, y_cat)
    mutual_information = pd.DataFrame(
        {
            "mi_attack_cat": _mutual_information(matrix, y_cat, seed),
            "mi_label": _mutual_information(matrix, y_label, seed),
        },
        index=list(FEATURES),
    ).sort_values("mi_attack_cat", ascending=False)

    inner_train, inner_test = grouped_holdout(vector_groups(matrix), y_cat, 0.25, seed)
    ranker = RFE(RandomForestClassifier(n_estimators=30, n_jobs=-1, random_state=seed), n_features_to_select=1, step=2)
    ranker.fit(matrix[inner_train], y_cat[inner_train])
    rfe_ranking = pd.Series(ranker.ranking_, index=list(FEATURES), name="rfe_rank").sort_values(kind="stable")
    order = list(rfe_ranking.index)
    curve_rows = []
    for k in sorted({min(k, len(FEATURES)) for k in counts} | {len(FEATURES)}):
        columns = [FEATURES.index(f) for f in order[:k]]
        model = RandomForestClassifier(n_estimators=40, n_jobs=-1, random_state=seed)
        model.fit(matrix[inner_train][:, columns], y_cat[inner_train])
        predicted = model.predict(matrix[inner_test][:, columns])
        curve_rows.append({"features": k, "macro_f1": f1_score(y_cat[inner_test], predicted, average="macro")})
    rfe_curve = pd.DataFrame(curve_rows)
    best = rfe_curve["macro_f1"].max()
    chosen_k = int(rfe_curve.loc[rfe_curve["macro_f1"] >= best - tolerance, "features"].min())
    selected = tuple(f for f in FEATURES if f in set(order[:chosen_k]))
    chosen_f1 = rfe_curve.set_index("features").loc[chosen_k, "macro_f1"]
    reason = (
        f"the smallest RFE subset whose inner hold-out macro-F1 ({chosen_f1:.3f}) "
        f"is within {tolerance} of the best ({best:.3f}); {chosen_k} of {len(FEATURES)} features"
    )
    return FeatureAnalysis(
        correlation, mutual_information, rfe_ranking, rfe_curve, _redundant_pairs(features), selected, reason
    )


def write_figures(analysis: FeatureAnalysis, folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = {}
    fig, ax = plt.subplots(figsize=(9, 11))
    data = analysis.correlation
    image = ax.imshow(data.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(data.shape[1]), data.columns, rotation=60, ha="right")
    ax.set_yticks(range(data.shape[0]), data.index, fontsize=7)
    ax.set_title("Pearson correlation of each feature with label and each attack_cat (one-vs-rest)")
    fig.colorbar(image, ax=ax, shrink=0.6)
    names["correlation"] = _save(fig, folder / "correlation_heatmap.png")

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(analysis.rfe_curve["features"], analysis.rfe_curve["macro_f1"], marker="o")
    ax.axvline(len(analysis.selected), color="grey", linestyle="--", label=f"selected: {len(analysis.selected)}")
    ax.set_xlabel("features kept (RFE order)")
    ax.set_ylabel("attack_cat macro-F1 (inner hold-out)")
    ax.set_title("Recursive feature elimination with a RandomForest")
    ax.legend()
    names["rfe_curve"] = _save(fig, folder / "rfe_curve.png")

    fig, ax = plt.subplots(figsize=(8, 10))
    mi = analysis.mutual_information["mi_attack_cat"].iloc[::-1]
    ax.barh(mi.index, mi.to_numpy())
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("mutual information with attack_cat (nats)")
    ax.set_title("Information gain (entropy-based mutual information)")
    names["mutual_information"] = _save(fig, folder / "mutual_information.png")
    return names


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], title: str, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = matrix / matrix.sum(axis=1, keepdims=True)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(np.nan_to_num(normalised), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(int(matrix[i, j])),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if normalised[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    return _save(fig, path)


def plot_operating_point(
    is_attack: np.ndarray, attack_probability: np.ndarray, point: Mapping[str, float], folder: Path
) -> dict[str, str]:
    """ROC and precision-recall curves of the label model (is_attack, attack_probability: rows),
    the deployed operating point (`training.operating_point.rates` as a dict) marked on both."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = np.asarray(is_attack).astype(bool)
    fpr_point, recall_point, precision_point = point["false_positive_rate"], point["recall"], point["precision"]
    label = f"threshold {point['threshold']:.3f}"
    names = {}

    fig, ax = plt.subplots(figsize=(6, 5))
    fpr, tpr, _ = roc_curve(truth, attack_probability)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(truth, attack_probability):.4f}")
    ax.plot([fpr_point], [recall_point], "o", color="red", label=label)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("false-positive rate (share of Normal flows alerted)")
    ax.set_ylabel("recall (share of attacks alerted)")
    ax.set_title("Label model ROC (validation)")
    ax.legend(loc="lower right")
    names["roc"] = _save(fig, folder / "roc_curve.png")

    fig, ax = plt.subplots(figsize=(6, 5))
    precision, recall, _ = precision_recall_curve(truth, attack_probability)
    ax.plot(recall, precision, label=f"average precision {average_precision_score(truth, attack_probability):.4f}")
    ax.plot([recall_point], [precision_point], "o", color="red", label=label)
    ax.set_xlabel("recall (share of attacks alerted)")
    ax.set_ylabel("precision (share of alerts that are attacks)")
    ax.set_title("Label model precision-recall (validation)")
    ax.legend(loc="lower left")
    names["precision_recall"] = _save(fig, folder / "precision_recall_curve.png")
    return names


def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def _mutual_information(matrix: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
    """Each feature's MI with `target` (n_features,). Features are estimated independently, so threads
    give the serial result; their nearest-neighbour searches release the GIL (1.5x on two cores),
    where worker processes would cost more to start than they save."""
    with parallel_config(backend="threading"):
        mi: np.ndarray = mutual_info_classif(
            matrix, target, discrete_features=_categorical_mask(), random_state=seed, n_jobs=-1
        )
    return mi


def _categorical_mask() -> np.ndarray:
    return np.array([f in CATEGORICAL_FEATURES for f in FEATURES])


def _stratified_sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame
    fraction = rows / len(frame)
    rng = np.random.default_rng(seed)
    keep = []
    for positions in frame.groupby(ATTACK_CAT, observed=True).indices.values():
        # Keep at least a few rows of every class so the rare ones (Worms) are still ranked.
        take = max(min(len(positions), 5), round(len(positions) * fraction))
        keep.append(rng.choice(positions, size=take, replace=False))
    return frame.iloc[np.sort(np.concatenate(keep))]


def _target_correlation(features: pd.DataFrame, y_label: np.ndarray, y_cat: np.ndarray) -> pd.DataFrame:
    targets = pd.DataFrame({LABEL: y_label.astype(float)})
    for cls in sorted(set(y_cat)):
        targets[cls] = (y_cat == cls).astype(float)
    standardised = (features - features.mean()) / features.std(ddof=0).replace(0, np.nan)
    target_std = (targets - targets.mean()) / targets.std(ddof=0).replace(0, np.nan)
    corr = standardised.T.fillna(0).to_numpy() @ target_std.fillna(0).to_numpy() / len(features)
    table = pd.DataFrame(corr, index=features.columns, columns=targets.columns)
    return table.reindex(table[LABEL].abs().sort_values(ascending=False).index)


def _redundant_pairs(features: pd.DataFrame, threshold: float = 0.95) -> pd.DataFrame:
    corr = features.corr().abs()
    upper = np.triu(np.ones(corr.shape, dtype=bool), k=1)
    pairs = corr.where(upper).stack()
    pairs = pairs[pairs >= threshold].sort_values(ascending=False)
    return pairs.rename("abs_r").reset_index().rename(columns={"level_0": "feature_a", "level_1": "feature_b"})

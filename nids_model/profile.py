"""The reference profile: what the training data looked like, so a detector can tell when traffic drifts.

Stored in the manifest at training time (`reference_profile`), read by the detector's drift metrics:
- numeric features, in the model's matrix order: quantile bin edges (inner edges, up to BINS - 1),
  the share of training rows in each bin, and the training range;
- categorical features: the training vocabulary size (its unseen code is that number);
- the predicted attack_cat shares on the validation rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nids_model.manifest import CategoricalProfile, NumericProfile, ReferenceProfile

BINS = 10


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of `values` (1-D) in each of the len(edges) + 1 bins that `edges` (sorted) cut."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def make_profile(
    matrix: np.ndarray,
    features: Sequence[str],
    vocabularies: Mapping[str, Sequence[str]],
    predicted: np.ndarray,
    classes: Sequence[str],
) -> ReferenceProfile:
    """The profile of the training rows' model `matrix` (rows × len(features), float32, after
    preprocessing) and of the attack_cat `predicted` on validation rows."""
    numeric: dict[str, NumericProfile] = {}
    categorical: dict[str, CategoricalProfile] = {}
    for index, name in enumerate(features):
        if name in vocabularies:
            categorical[name] = CategoricalProfile(column=index, unseen_code=len(vocabularies[name]))
            continue
        column = matrix[:, index].astype(np.float64)
        edges = np.unique(np.quantile(column, np.linspace(0.0, 1.0, BINS + 1)[1:-1]))
        numeric[name] = NumericProfile(
            column=index,
            edges=tuple(edges.tolist()),
            shares=tuple(bin_shares(column, edges).tolist()),
            min=float(column.min()),
            max=float(column.max()),
        )
    labels, counts = np.unique(np.asarray(predicted, dtype=object), return_counts=True)
    shares = dict(zip(labels.tolist(), (counts / counts.sum()).tolist(), strict=True))
    return ReferenceProfile(
        numeric=numeric,
        categorical=categorical,
        predicted_class_shares={name: float(shares.get(name, 0.0)) for name in classes},
    )

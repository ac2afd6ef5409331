"""FlowPreprocessor: the float32 matrix its docstring promises, unseen categories and missing numbers."""

from __future__ import annotations

import numpy as np

from nids_model.preprocess import FlowPreprocessor


def test_matrix_is_float32_in_feature_order_with_unseen_categories_coded_past_the_vocabulary() -> None:
    train = {"proto": np.array(["tcp", "udp", "tcp"], dtype=object), "dur": np.array([1.0, 3.0, 2.0])}
    preprocess = FlowPreprocessor(features=("dur", "proto"), categorical=("proto",)).fit(train)
    assert preprocess.vocabularies_ == {"proto": ("tcp", "udp")}
    flows = {
        "proto": np.array(["udp", " TCP ", "sctp", None], dtype=object),
        "dur": np.array([5.0, np.nan, np.inf, 0.5]),
        "ignored": np.zeros(4),
    }
    matrix = preprocess.transform(flows)
    assert matrix.dtype == np.float32 and matrix.shape == (4, 2)
    assert matrix[:, 1].tolist() == [1, 0, 2, 2]  # 'sctp' and a missing value: len(vocabulary)
    assert matrix[:, 0].tolist() == [5.0, 2.0, 2.0, 0.5]  # non-finite numbers: the training median

"""The canary: a fixed batch of flows stored with an artifact, and the outputs the model gave them when
it was trained. Whoever loads the artifact scores the batch again and must get exactly those outputs,
bit for bit: a model that unpickles but scores differently here (another library build, a damaged
file, a wrong artifact) is refused before it sees traffic.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from nids_common.errors import ArtifactError
from nids_common.schema import CATEGORICAL_FEATURES, FEATURES
from nids_model.detection import DetectionModel
from nids_model.manifest import Canary, CanaryOutputs

CANARY_FILE = "canary.json"
CANARY_ROWS = 256


def canary_columns(flows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The feature columns of the canary's flows, built the same way at training and at load time."""
    return {
        name: np.array([flow[name] for flow in flows], dtype=object if name in CATEGORICAL_FEATURES else np.float64)
        for name in FEATURES
    }


def make_canary(
    model: DetectionModel, frame: pd.DataFrame, rows: int = CANARY_ROWS, seed: int = 0
) -> tuple[bytes, Canary]:
    """(the canary file's bytes, its manifest record): `rows` flows of `frame` (validation rows, every
    class the frame has) with the outputs `model` gives them now."""
    sample = frame.sample(n=min(rows, len(frame)), random_state=seed)
    flows = [
        {name: (str(row[name]) if name in CATEGORICAL_FEATURES else float(row[name])) for name in FEATURES}
        for _, row in sample.iterrows()
    ]
    payload = orjson.dumps(flows)
    scores = model.score(canary_columns(flows))
    return payload, Canary(
        file=CANARY_FILE,
        sha256=hashlib.sha256(payload).hexdigest(),
        rows=len(flows),
        expected=CanaryOutputs(
            attack_probability=tuple(float(p) for p in scores.attack_probability),
            attack_cat=tuple(str(c) for c in scores.attack_cat),
        ),
    )


def check_canary(model: DetectionModel, folder: Path, canary: Canary) -> None:
    """Score the artifact's canary with `model`; ArtifactError unless every output is what training recorded."""
    path = folder / canary.file
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read the canary: {exc.strerror}") from None
    if not hmac.compare_digest(hashlib.sha256(payload).hexdigest(), canary.sha256):
        raise ArtifactError(f"{path}: sha256 does not match the manifest: refusing the model")
    scores = model.score(canary_columns(orjson.loads(payload)))
    probabilities = np.asarray(canary.expected.attack_probability, dtype=np.float64)
    classes = np.asarray(canary.expected.attack_cat, dtype=object)
    if probabilities.shape != scores.attack_probability.shape or classes.shape != scores.attack_cat.shape:
        raise ArtifactError(
            f"{folder}: canary: {len(scores.attack_cat)} rows scored, the manifest expects {len(classes)}"
        )
    wrong = np.flatnonzero((probabilities != scores.attack_probability) | (classes != scores.attack_cat))
    if wrong.size:
        row = int(wrong[0])
        raise ArtifactError(
            f"{folder}: canary row {row} scores P(attack)={scores.attack_probability[row]!r} "
            f"{scores.attack_cat[row]}, the manifest expects {probabilities[row]!r} {classes[row]} "
            f"({wrong.size} of {len(classes)} rows differ): refusing the model"
        )

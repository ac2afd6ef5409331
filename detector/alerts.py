"""Building the alert, verdict and dead-letter messages of a scored batch."""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import orjson

from detector.decode import EVENT_TIME, FLOW_ID, InvalidRecord
from nids_common.schema import IDENTITY_FIELDS
from training.detection import Scores


def alert_payloads(rows: np.ndarray, records: Sequence[dict[str, Any]], scores: Scores, classes: Sequence[str],
                   sources: Sequence[tuple[str, int, int]], valid: np.ndarray, model_version: str,
                   include_probabilities: bool = True) -> list[tuple[str, bytes]]:
    """(key, JSON) per row in `rows` (positions among the valid records)."""
    detected_at = time.time()
    probabilities = np.round(scores.class_probabilities[rows], 4) if include_probabilities else None
    out = []
    for index, row in enumerate(rows.tolist()):
        record = records[row]
        topic, partition, offset = sources[valid[row]]
        message: dict[str, Any] = {
            FLOW_ID: record[FLOW_ID],
            "is_attack": bool(scores.is_attack[row]),
            "attack_cat": scores.attack_cat[row],
            "attack_probability": round(float(scores.attack_probability[row]), 6),
            "model_version": model_version,
            "detected_at": detected_at,
            "ts": record.get(EVENT_TIME),
            "source": {"topic": topic, "partition": partition, "offset": offset},
        }
        if probabilities is not None and not np.isnan(probabilities[index, 0]):
            message["class_probabilities"] = dict(zip(classes, probabilities[index].tolist()))
        for name in IDENTITY_FIELDS:
            if name in record:
                message[name] = record[name]
        out.append((record[FLOW_ID], orjson.dumps(message)))
    return out


def dead_letter_headers(error: InvalidRecord) -> list[tuple[str, bytes]]:
    """The reason travels in headers so the value stays the original bytes, unchanged."""
    return [
        ("nids.reason", error.reason.encode()),
        ("nids.field", (error.field or "").encode()),
        ("nids.detail", error.detail.encode()),
        ("nids.source", orjson.dumps({"topic": error.topic, "partition": error.partition, "offset": error.offset})),
    ]

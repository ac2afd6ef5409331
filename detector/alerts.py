"""Building the alert, verdict and dead-letter messages of a scored batch."""
from __future__ import annotations

import itertools
import time
from typing import Any, Sequence

import numpy as np
import orjson

from detector.decode import EVENT_TIME, FLOW_ID, InvalidRecord
from nids_common.schema import IDENTITY_FIELDS
from training.detection import Scores

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def alert_payloads(rows: np.ndarray, records: Sequence[dict[str, Any]], scores: Scores, classes: Sequence[str],
                   sources: Sequence[tuple[str, int, int]], valid: np.ndarray, model_version: str,
                   include_probabilities: bool = True) -> list[tuple[str, bytes]]:
    """(key, JSON) for each row in `rows` (positions among the valid records).

    The fixed fields are serialised column by column (one orjson call per numeric column) and each
    message is one bytes.join; only identity fields, which vary in presence, go through a dict.
    """
    if not len(rows):
        return []
    picked = [records[row] for row in rows.tolist()]
    keys = [record[FLOW_ID] for record in picked]
    origin = [sources[position] for position in valid[rows].tolist()]
    columns: list[tuple[bytes, Any]] = [
        (b"flow_id", [orjson.dumps(key) for key in keys]),
        (b"is_attack", [b"true" if flag else b"false" for flag in scores.is_attack[rows].tolist()]),
        (b"attack_cat", [orjson.dumps(cat) for cat in scores.attack_cat[rows].tolist()]),
        (b"attack_probability", _numbers(np.round(scores.attack_probability[rows], 6))),
        (b"model_version", itertools.repeat(orjson.dumps(model_version))),
        (b"detected_at", itertools.repeat(orjson.dumps(time.time()))),
        (b"ts", [orjson.dumps(record.get(EVENT_TIME)) for record in picked]),
        (b"source", [orjson.dumps({"topic": t, "partition": p, "offset": o}) for t, p, o in origin]),
    ]
    if include_probabilities:
        probabilities = np.round(scores.class_probabilities[rows], 4)
        # Rows the cascade did not send to the attack_cat model (non-attacks in a verdict) have none.
        columns.append((b"class_probabilities", [
            b"null" if np.isnan(row[0]) else orjson.dumps(dict(zip(classes, row.tolist()))) for row in probabilities
        ]))
    identity = [_identity(record) for record in picked]
    parts: list[Any] = []
    for position, (name, values) in enumerate(columns):
        parts.append(itertools.repeat((b"{" if position == 0 else b",") + b'"' + name + b'":'))
        parts.append(values)
    parts.append(identity)
    return list(zip(keys, (b"".join(pieces) for pieces in zip(*parts))))


def _numbers(values: np.ndarray) -> list[bytes]:
    return orjson.dumps(values, option=_NUMPY)[1:-1].split(b",")


def _identity(record: dict[str, Any]) -> bytes:
    present = {name: record[name] for name in IDENTITY_FIELDS if name in record}
    return b"," + orjson.dumps(present)[1:] if present else b"}"


def dead_letter_headers(error: InvalidRecord) -> list[tuple[str, bytes]]:
    """The reason travels in headers so the value stays the original bytes, unchanged."""
    return [
        ("nids.reason", error.reason.encode()),
        ("nids.field", (error.field or "").encode()),
        ("nids.detail", error.detail.encode()),
        ("nids.source", orjson.dumps({"topic": error.topic, "partition": error.partition, "offset": error.offset})),
    ]

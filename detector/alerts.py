"""Building the alert, verdict and dead-letter messages of a scored batch."""
from __future__ import annotations

import itertools
import operator
import time
from typing import Any, Sequence

import numpy as np
import orjson

from detector.decode import UNSET, InvalidRecord
from nids_common.schema import IDENTITY_FIELDS
from training.detection import Scores

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


# Where each alerted flow was read: topics, partitions and offsets, one entry per row.
Origin = tuple[Sequence[str], Sequence[int], Sequence[int]]


def alert_payloads(rows: np.ndarray, records: Sequence[Any], scores: Scores, classes: Sequence[str], origin: Origin,
                   model_version: str, include_probabilities: bool = True) -> list[tuple[str, bytes]]:
    """(key, JSON) for each row in `rows` (positions among the valid records; `origin` is theirs).

    The fixed fields are serialised column by column (one orjson call per numeric column) and each
    message is one bytes.join; only identity fields, which vary in presence, go through a dict.
    """
    if not len(rows):
        return []
    picked = [records[row] for row in rows.tolist()]
    keys = [record.flow_id for record in picked]
    event_times = np.array([record.ts for record in picked], dtype=np.float64)  # None → NaN → null
    columns: list[tuple[bytes, Any]] = [
        (b"flow_id", [orjson.dumps(key) for key in keys]),
        (b"is_attack", [b"true" if flag else b"false" for flag in scores.is_attack[rows].tolist()]),
        (b"attack_cat", [orjson.dumps(cat) for cat in scores.attack_cat[rows].tolist()]),
        (b"attack_probability", _numbers(np.round(scores.attack_probability[rows], 6))),
        (b"model_version", itertools.repeat(orjson.dumps(model_version))),
        (b"detected_at", itertools.repeat(orjson.dumps(time.time()))),
        (b"ts", _numbers(event_times)),
        (b"source", _sources(origin)),
    ]
    if include_probabilities:
        columns.append((b"class_probabilities", _probabilities(np.round(scores.class_probabilities[rows], 4), classes)))
    parts: list[Any] = []
    for position, (name, values) in enumerate(columns):
        parts.append(itertools.repeat((b"{" if position == 0 else b",") + b'"' + name + b'":'))
        parts.append(values)
    parts.append(_identities(picked))
    return list(zip(keys, (b"".join(pieces) for pieces in zip(*parts))))


def _sources(origin: Origin) -> list[bytes]:
    topics, partitions, offsets = origin
    prefixes = {topic: b'{"topic":' + orjson.dumps(topic) + b',"partition":' for topic in set(topics)}
    return [b"".join((prefixes[t], p, b',"offset":', o, b"}")) for t, p, o in
            zip(topics, _numbers(np.asarray(partitions, dtype=np.int64)), _numbers(np.asarray(offsets, dtype=np.int64)))]


def _probabilities(matrix: np.ndarray, classes: Sequence[str]) -> list[bytes]:
    """{"class": p, …} per row; null for rows the cascade did not score (non-attack verdicts)."""
    parts: list[Any] = []
    for index, name in enumerate(classes):
        parts.append(itertools.repeat((b"{" if index == 0 else b",") + orjson.dumps(name) + b":"))
        parts.append(_numbers(np.ascontiguousarray(matrix[:, index])))
    parts.append(itertools.repeat(b"}"))
    scored = ~np.isnan(matrix[:, 0])
    return [b"".join(pieces) if ok else b"null" for ok, pieces in zip(scored.tolist(), zip(*parts))]


def _numbers(values: np.ndarray) -> list[bytes]:
    return orjson.dumps(values, option=_NUMPY)[1:-1].split(b",")


def _identities(records: list[Any]) -> list[bytes]:
    """The identity fields each record carries, closing its JSON object; a field no record of the
    batch carries costs one C-level pass."""
    columns = [(name, values) for name in IDENTITY_FIELDS
               if (values := list(map(operator.attrgetter(name), records))).count(UNSET) != len(values)]
    if not columns:
        return [b"}"] * len(records)
    names = [name for name, _ in columns]
    out = []
    for row in zip(*(values for _, values in columns)):
        present = {name: value for name, value in zip(names, row) if value is not UNSET}
        out.append(b"," + orjson.dumps(present)[1:] if present else b"}")
    return out


def dead_letter_headers(error: InvalidRecord) -> list[tuple[str, bytes]]:
    """The reason travels in headers so the value stays the original bytes, unchanged."""
    return [
        ("nids.reason", error.reason.encode()),
        ("nids.field", (error.field or "").encode()),
        ("nids.detail", error.detail.encode()),
        ("nids.source", orjson.dumps({"topic": error.topic, "partition": error.partition, "offset": error.offset})),
    ]

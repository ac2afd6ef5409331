"""The alert, verdict and dead-letter messages of a scored batch (formats: nids_common.contract)."""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import orjson

from detector.values import Origin
from nids_common.community_id import community_id
from nids_common.contract import EVENT_TIME, FLOW_ID, UNSET
from nids_common.json_columns import json_each, json_numbers, json_objects, json_strings
from nids_common.schema import IDENTITY_FIELDS
from nids_model.detection import Scores

_flow_id = operator.attrgetter(FLOW_ID)
_ts = operator.attrgetter(EVENT_TIME)


def verdict_payloads(
    rows: np.ndarray,
    records: Sequence[Any],
    scores: Scores,
    classes: Sequence[str],
    origin: Origin,
    model_version: str,
) -> list[tuple[str, bytes]]:
    """(key, JSON) of a `contract.Verdict` for each row in `rows` (positions among the valid records;
    `origin` is theirs). An alert is the verdict of a row the model calls an attack.

    Built column by column (nids_common.json_columns); only identity fields, which vary in
    presence, go through a dict.
    """
    if not len(rows):
        return []
    # map() over C-level callables: no bytecode per row on the loop's thread.
    picked = list(map(records.__getitem__, rows.tolist()))
    keys = list(map(_flow_id, picked))
    event_times = np.array(list(map(_ts, picked)), dtype=np.float64)  # None → NaN → null
    topics, partitions, offsets = origin
    fields: list[tuple[str, Iterable[bytes]]] = [
        ("flow_id", json_strings(keys)),
        ("is_attack", json_each(scores.is_attack[rows].tolist())),
        ("attack_cat", json_each(scores.attack_cat[rows].tolist())),
        ("attack_probability", json_numbers(np.round(scores.attack_probability[rows], 6))),
        ("model_version", itertools.repeat(orjson.dumps(model_version))),
        ("detected_at", itertools.repeat(orjson.dumps(time.time()))),
        ("ts", json_numbers(event_times)),
        (
            "source",
            json_objects(
                [
                    ("topic", json_each(list(topics))),
                    ("partition", json_numbers(np.asarray(partitions, dtype=np.int64))),
                    ("offset", json_numbers(np.asarray(offsets, dtype=np.int64))),
                ]
            ),
        ),
        ("class_probabilities", _probabilities(np.round(scores.class_probabilities[rows], 4), classes)),
    ]
    return list(zip(keys, json_objects(fields, closing=_identities(picked)), strict=True))


def _probabilities(matrix: np.ndarray, classes: Sequence[str]) -> list[bytes]:
    """{"class": p, …} per row; null for rows the cascade did not score (verdicts of normal flows)."""
    objects = json_objects(
        [(name, json_numbers(np.ascontiguousarray(matrix[:, index]))) for index, name in enumerate(classes)]
    )
    unscored = np.isnan(matrix[:, 0])
    if not unscored.any():  # alerts: every row was scored
        return objects
    return [b"null" if skipped else text for skipped, text in zip(unscored.tolist(), objects, strict=True)]


def _identities(records: list[Any]) -> list[bytes]:
    """The identity fields each record carries and, where they make one, the flow's Community ID,
    closing its JSON object; a field no record of the batch carries costs one C-level pass."""
    columns = [
        (name, values)
        for name in IDENTITY_FIELDS
        if (values := list(map(operator.attrgetter(name), records))).count(UNSET) != len(values)
    ]
    if not columns:
        return [b"}"] * len(records)
    names = [name for name, _ in columns]
    out = []
    for record, row in zip(records, zip(*(values for _, values in columns), strict=True), strict=True):
        present = {name: value for name, value in zip(names, row, strict=True) if value is not UNSET}
        if len(present) == len(IDENTITY_FIELDS):
            flow_id = community_id(record.srcip, record.sport, record.dstip, record.dsport, record.proto)
            if flow_id is not None:
                present["community_id"] = flow_id
        out.append(b"," + orjson.dumps(present)[1:] if present else b"}")
    return out

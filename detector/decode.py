"""Decoding a micro-batch of flow messages into feature columns, vectorised per field.

Valid records come out as one numpy array per feature; every invalid one as an InvalidRecord
carrying the reason, the field and the source topic/partition/offset, for the dead-letter topic.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import operator
from typing import Any, Sequence

import numpy as np
import orjson

from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES, IDENTITY_FIELDS, LABEL, NUMERIC_FEATURES

FLOW_ID = "flow_id"
EVENT_TIME = "ts"
REASONS = ("empty", "too_large", "not_json", "not_object", "missing_field", "bad_type", "non_finite")
_NUMBER_TYPES = frozenset({int, float})
_MISSING = object()


class InvalidRecord(Exception):
    """One message that cannot be scored: why, which field, and where it came from."""

    def __init__(self, reason: str, field: str | None, detail: str, topic: str, partition: int, offset: int) -> None:
        super().__init__(f"{topic}[{partition}]@{offset}: {reason}" + (f" in field {field}" if field else "") + f": {detail}")
        self.reason, self.field, self.detail = reason, field, detail
        self.topic, self.partition, self.offset = topic, partition, offset


@dataclasses.dataclass
class DecodedBatch:
    columns: dict[str, np.ndarray]  # feature → values of the valid rows
    valid: np.ndarray  # positions in the consumed batch of the valid rows
    records: list[dict[str, Any]]  # the parsed objects of the valid rows (identity, ground truth, ts)
    invalid: list[tuple[int, InvalidRecord]]  # (position in the batch, why)


def decode_batch(values: Sequence[bytes | None], sources: Sequence[tuple[str, int, int]], max_bytes: int) -> DecodedBatch:
    parsed: list[dict[str, Any]] = []
    positions: list[int] = []
    invalid: list[tuple[int, InvalidRecord]] = []

    def reject(position: int, reason: str, field: str | None, detail: str) -> None:
        invalid.append((position, InvalidRecord(reason, field, detail, *sources[position])))

    for position, value in enumerate(values):
        if not value:
            reject(position, "empty", None, "no value")
        elif len(value) > max_bytes:
            reject(position, "too_large", None, f"{len(value)} bytes > limit {max_bytes}")
        else:
            try:
                record = orjson.loads(value)
            except orjson.JSONDecodeError:
                reason, field, detail = _classify_unparsable(value)
                reject(position, reason, field, detail)
                continue
            if type(record) is not dict:
                reject(position, "not_object", None, f"a JSON {type(record).__name__}, not an object")
            else:
                parsed.append(record)
                positions.append(position)

    columns = _fast_columns(parsed)
    if columns is not None:
        return DecodedBatch(columns, np.asarray(positions, dtype=np.int64), parsed, invalid)
    return _checked_columns(parsed, positions, invalid, reject)


_STRING_FIELDS = (FLOW_ID, *CATEGORICAL_FEATURES)
_get_strings = operator.itemgetter(*_STRING_FIELDS)
_get_numbers = operator.itemgetter(*NUMERIC_FEATURES)


def _fast_columns(parsed: list[dict[str, Any]]) -> dict[str, np.ndarray] | None:
    """The common case, every record well-formed: one C-level itemgetter per row, one type pass over
    the whole batch, one array. Returns None when any field is missing or mistyped."""
    try:
        strings = list(map(_get_strings, parsed))
        numbers = list(map(_get_numbers, parsed))
    except KeyError:
        return None
    if set(map(type, itertools.chain.from_iterable(strings))) - {str}:
        return None
    if set(map(type, itertools.chain.from_iterable(numbers))) - _NUMBER_TYPES:
        return None
    ts_types = set(map(type, (r.get(EVENT_TIME) for r in parsed)))
    if ts_types - _NUMBER_TYPES - {type(None)}:
        return None
    out: dict[str, np.ndarray] = {}
    text = np.array(strings, dtype=object).reshape(len(parsed), len(_STRING_FIELDS))
    for index, field in enumerate(_STRING_FIELDS):
        out[field] = text[:, index]
    matrix = np.array(numbers, dtype=np.float64).reshape(len(parsed), len(NUMERIC_FEATURES))
    for index, field in enumerate(NUMERIC_FEATURES):
        out[field] = matrix[:, index]
    return out


def _checked_columns(parsed: list[dict[str, Any]], positions: list[int], invalid: list[tuple[int, InvalidRecord]],
                     reject: Any) -> DecodedBatch:
    """Field by field, to find which rows are bad and why; the valid rest becomes columns."""
    bad_rows: dict[int, tuple[str, str, str]] = {}
    columns: dict[str, list] = {}
    for field in _STRING_FIELDS:
        column = [r.get(field, _MISSING) for r in parsed]
        if set(map(type, column)) - {str}:
            for row, v in enumerate(column):
                if type(v) is not str and row not in bad_rows:
                    bad_rows[row] = _field_problem(field, v, "a string")
        columns[field] = column
    for field in NUMERIC_FEATURES:
        column = [r.get(field, _MISSING) for r in parsed]
        if set(map(type, column)) - _NUMBER_TYPES:
            for row, v in enumerate(column):
                if type(v) not in _NUMBER_TYPES and row not in bad_rows:
                    bad_rows[row] = _field_problem(field, v, "a number")
        columns[field] = column
    for row, v in enumerate(r.get(EVENT_TIME) for r in parsed):
        if v is not None and type(v) not in _NUMBER_TYPES and row not in bad_rows:
            bad_rows[row] = ("bad_type", EVENT_TIME, f"expected epoch seconds, got {type(v).__name__}")

    for row, (reason, field, detail) in bad_rows.items():
        reject(positions[row], reason, field, detail)
    keep = [row for row in range(len(parsed)) if row not in bad_rows]
    out: dict[str, np.ndarray] = {}
    for field, column in columns.items():
        kept = [column[row] for row in keep]
        out[field] = np.asarray(kept, dtype=np.float64) if field in NUMERIC_FEATURES else np.asarray(kept, dtype=object)
    invalid.sort(key=lambda item: item[0])
    return DecodedBatch(out, np.asarray([positions[row] for row in keep], dtype=np.int64), [parsed[row] for row in keep], invalid)


def _field_problem(field: str, value: Any, expected: str) -> tuple[str, str, str]:
    if value is _MISSING:
        return "missing_field", field, "required field absent"
    if expected == "a number" and type(value) is bool:
        return "bad_type", field, "expected a number, got a boolean"
    return "bad_type", field, f"expected {expected}, got {'null' if value is None else type(value).__name__}"


def _classify_unparsable(value: bytes) -> tuple[str, str | None, str]:
    """orjson rejects NaN, Infinity and overflowing numbers; the stdlib parser tells them from garbage."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "not_json", None, "not UTF-8 text"
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return "not_json", None, getattr(exc, "msg", "too deeply nested")
    if isinstance(record, dict):
        for key, item in record.items():
            if isinstance(item, float) and not math.isfinite(item):
                return "non_finite", str(key), f"{item} is not a finite number"
        return "not_json", None, "non-standard JSON"
    return "not_object", None, f"a JSON {type(record).__name__}, not an object"


def ground_truth(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """attack_cat per row ('' when absent or unusable) and whether it was given; used for metrics only."""
    cats = [r.get(ATTACK_CAT) for r in records]
    labels = [r.get(LABEL) for r in records]
    out = np.empty(len(records), dtype=object)
    for row, (cat, label) in enumerate(zip(cats, labels)):
        if type(cat) is str and cat.strip():
            out[row] = cat.strip()
        elif label in (0, 1) and type(label) is int:
            out[row] = "Normal" if label == 0 else ""
        else:
            out[row] = ""
    return out, out != ""



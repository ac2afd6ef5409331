"""Decoding a micro-batch of flow messages into feature columns.

msgspec decodes each message straight into a typed `Flow` struct: the schema does the validation
(a string, boolean, null or object in a numeric field is rejected, a missing field named) without a
dict per message, and the valid structs become one numpy array per feature. Every message that
fails becomes an InvalidRecord carrying the reason, the field and the source topic/partition/offset.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Sequence
from typing import Any, cast

import msgspec
import numpy as np

from nids_common.contract import FLOW_ID, Flow, Reason
from nids_common.dead_letters import InvalidRecord, Problem, classify_invalid, classify_unparsable
from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES, LABEL, NORMAL, NUMERIC_FEATURES

_decoder = msgspec.json.Decoder(Flow)
_strings = operator.attrgetter(FLOW_ID, *CATEGORICAL_FEATURES)
_numbers = operator.attrgetter(*NUMERIC_FEATURES)
_truth = operator.attrgetter(ATTACK_CAT, LABEL)
_attack_cat = operator.attrgetter(ATTACK_CAT)


@dataclasses.dataclass
class DecodedBatch:
    columns: dict[str, np.ndarray]  # feature → values of the valid rows
    valid: np.ndarray  # positions in the consumed batch of the valid rows
    records: list[Any]  # the decoded Flow structs of the valid rows (identity, ground truth, ts)
    invalid: list[tuple[int, InvalidRecord]]  # (position in the batch, why)


# A batch is decoded in slices of this many messages: a malformed message sends only its slice down
# the message-by-message path (a backlog with a few malformed records has one in most batches).
SLICE = 512


def decode_batch(
    values: Sequence[bytes | None], sources: Sequence[tuple[str, int, int]], max_bytes: int
) -> DecodedBatch:
    records: list[Any] = []
    positions: list[np.ndarray] = []
    invalid: list[tuple[int, InvalidRecord]] = []
    for start in range(0, len(values), SLICE):
        part = values[start : start + SLICE]
        decoded = _decode_good(part, max_bytes)
        if decoded is not None:
            records += decoded
            positions.append(np.arange(start, start + len(part), dtype=np.int64))
            continue
        slow_records, slow_positions, slow_invalid = _decode_one_by_one(part, sources[start : start + SLICE], max_bytes)
        records += slow_records
        positions.append(slow_positions + start)
        invalid += [(start + position, why) for position, why in slow_invalid]
    valid = np.concatenate(positions) if positions else np.empty(0, dtype=np.int64)
    return DecodedBatch(_columns(records), valid, records, invalid)


def _decode_good(values: Sequence[bytes | None], max_bytes: int) -> list[Any] | None:
    """The Flow structs of `values` when every one is a good message (one C-level map, no
    per-message Python), else None."""
    if not all(values) or max(map(len, cast(Sequence[bytes], values)), default=0) > max_bytes:
        return None
    try:
        return list(map(_decoder.decode, cast(Sequence[bytes], values)))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _decode_one_by_one(
    values: Sequence[bytes | None], sources: Sequence[tuple[str, int, int]], max_bytes: int
) -> tuple[list[Any], np.ndarray, list[tuple[int, InvalidRecord]]]:
    records: list[Any] = []
    positions: list[int] = []
    invalid: list[tuple[int, InvalidRecord]] = []
    for position, value in enumerate(values):
        problem: Problem
        if not value:
            problem = (Reason.EMPTY, None, "no value")
        elif len(value) > max_bytes:
            problem = (Reason.TOO_LARGE, None, f"{len(value)} bytes > limit {max_bytes}")
        else:
            try:
                records.append(_decoder.decode(value))
                positions.append(position)
                continue
            except msgspec.ValidationError as exc:
                problem = classify_invalid(str(exc))
            except msgspec.DecodeError:
                problem = classify_unparsable(value)
        invalid.append((position, InvalidRecord(*problem, *sources[position])))
    return records, np.asarray(positions, dtype=np.int64), invalid


def _columns(records: list[Any]) -> dict[str, np.ndarray]:
    rows, width = len(records), len(NUMERIC_FEATURES)
    text = np.array(list(map(_strings, records)), dtype=object).reshape(rows, 1 + len(CATEGORICAL_FEATURES))
    numbers = np.fromiter(
        itertools.chain.from_iterable(map(_numbers, records)), dtype=np.float64, count=rows * width
    ).reshape(rows, width)
    columns = {field: text[:, index] for index, field in enumerate((FLOW_ID, *CATEGORICAL_FEATURES))}
    columns.update({field: numbers[:, index] for index, field in enumerate(NUMERIC_FEATURES)})
    return columns


def ground_truth(records: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """attack_cat per row ('' when absent or unusable) and whether it was given; used for metrics only."""
    cats = list(map(_attack_cat, records))
    if cats and set(map(type, cats)) == {str}:
        # The common case, every flow carries its class: one C-level pass.
        out = np.array(list(map(str.strip, cats)), dtype=object)
        return out, out != ""
    out = np.empty(len(records), dtype=object)
    for row, (cat, label) in enumerate(map(_truth, records)):
        if type(cat) is str and cat.strip():
            out[row] = cat.strip()
        elif label == 0 and type(label) is int:
            out[row] = NORMAL
        else:
            out[row] = ""  # an attack of unknown class, or no truth at all
    return out, out != ""

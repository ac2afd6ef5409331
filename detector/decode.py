"""Decoding a micro-batch of flow messages into feature columns.

msgspec decodes each message into a typed struct: the schema does the validation (a string, boolean,
null or object in a numeric field is rejected, a missing field named) without a dict per message.
The numeric features skip the struct where they can: a compiled pass (detector.number_fields) reads
them from the messages' bytes straight into columns, and msgspec decodes and checks the rest of each
message into a `FlowHeader`. A message that pass leaves unread is decoded whole into a `Flow`, whose
numbers are then read back from the struct. Every message that fails becomes an InvalidRecord
carrying the reason, the field and the source topic/partition/offset.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import msgspec
import numpy as np

from detector.number_fields import NumberFields
from nids_common.contract import FLOW_ID, Flow, Reason
from nids_common.dead_letters import InvalidRecord, Problem, classify_invalid, classify_unparsable
from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES, LABEL, NORMAL, NUMERIC_FEATURES

# A Flow without its numeric features: what msgspec decodes of a message whose numbers the compiled
# pass has read (it still checks the message's syntax and every other field).
FlowHeader = msgspec.defstruct(
    "FlowHeader",
    [
        (field.name, field.type) if field.required else (field.name, field.type, field.default)
        for field in msgspec.structs.fields(Flow)
        if field.name not in NUMERIC_FEATURES
    ],
    kw_only=True,
    gc=False,
)
_decoder = msgspec.json.Decoder(Flow)
_header_decoder = msgspec.json.Decoder(FlowHeader)
_number_fields = NumberFields(NUMERIC_FEATURES)
_text_fields = {field: operator.attrgetter(field) for field in (FLOW_ID, *CATEGORICAL_FEATURES)}
_numbers = operator.attrgetter(*NUMERIC_FEATURES)
_truth = operator.attrgetter(ATTACK_CAT, LABEL)
_attack_cat = operator.attrgetter(ATTACK_CAT)


@dataclasses.dataclass
class DecodedBatch:
    columns: dict[str, np.ndarray]  # feature → values of the valid rows
    valid: np.ndarray  # positions in the consumed batch of the valid rows
    # The decoded structs of the valid rows, FlowHeader or Flow (identity, ground truth, ts).
    records: list[Any]
    invalid: list[tuple[int, InvalidRecord]]  # (position in the batch, why)


# A batch is decoded in slices of this many messages: a malformed message sends only its slice down
# the message-by-message path (a backlog with a few malformed records has one in most batches).
SLICE = 512


def decode_batch(
    values: Sequence[bytes | None], sources: Sequence[tuple[str, int, int]], max_bytes: int
) -> DecodedBatch:
    values_or_empty = cast(Sequence[bytes], values) if all(values) else [value or b"" for value in values]
    lengths = np.fromiter(map(len, values_or_empty), dtype=np.int64, count=len(values_or_empty))
    numbers, read = _number_fields.read(values_or_empty, lengths)
    # Whatever is empty or too large goes one by one, where it gets its dead-letter reason.
    decodable = (lengths > 0) & (lengths <= max_bytes)
    read &= decodable
    slices = [
        _decode_slice(values, sources, start, max_bytes, numbers, read, decodable)
        for start in range(0, len(values), SLICE)
    ]
    records = list(itertools.chain.from_iterable(part.records for part in slices))
    valid = np.concatenate([part.positions for part in slices]) if slices else np.empty(0, dtype=np.int64)
    invalid = [problem for part in slices for problem in part.invalid]
    valid_numbers = numbers if len(valid) == len(values) else numbers[valid]
    return DecodedBatch(_columns(records, valid_numbers), valid, records, invalid)


class _Slice(NamedTuple):
    records: list[Any]
    positions: np.ndarray  # in the batch, of the valid rows
    invalid: list[tuple[int, InvalidRecord]]


def _decode_slice(
    values: Sequence[bytes | None],
    sources: Sequence[tuple[str, int, int]],
    start: int,
    max_bytes: int,
    numbers: np.ndarray,
    read: np.ndarray,
    decodable: np.ndarray,
) -> _Slice:
    """values[start : start + SLICE]: headers over the numbers already read when every message was
    read; else Flow structs, in one map when all are decodable and good, else one by one. The numbers
    of the slice's valid rows end up in their rows of the batch's `numbers`."""
    part = values[start : start + SLICE]
    stop = start + len(part)
    positions = np.arange(start, stop, dtype=np.int64)
    if read[start:stop].all():
        headers = _decode_all(part, _header_decoder)
        if headers is not None:
            return _Slice(headers, positions, [])
        # A Flow checks all that a FlowHeader does: decoding the slice whole would fail too.
    elif decodable[start:stop].all():
        flows = _decode_all(part, _decoder)
        if flows is not None:
            numbers[start:stop] = _struct_numbers(flows)
            return _Slice(flows, positions, [])
    flows, valid, invalid = _decode_one_by_one(part, sources[start:stop], max_bytes)
    numbers[valid + start] = _struct_numbers(flows)
    return _Slice(flows, valid + start, [(start + at, why) for at, why in invalid])


def _decode_all(values: Sequence[bytes | None], decoder: msgspec.json.Decoder[Any]) -> list[Any] | None:
    """The structs of `values`, all non-empty and within the size limit, when every one is a good
    message (one C-level map, no per-message Python), else None."""
    try:
        return list(map(decoder.decode, cast(Sequence[bytes], values)))
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


def _struct_numbers(records: list[Any]) -> np.ndarray:
    """The numeric features of decoded Flow structs: (n_records, n_numeric), float64."""
    rows, width = len(records), len(NUMERIC_FEATURES)
    return np.fromiter(
        itertools.chain.from_iterable(map(_numbers, records)), dtype=np.float64, count=rows * width
    ).reshape(rows, width)


def _columns(records: list[Any], numbers: np.ndarray) -> dict[str, np.ndarray]:
    """Feature → values, from the records' strings and the (n_records, n_numeric) `numbers`."""
    # A column at a time: numpy need not discover the shape of a list of tuples (2.5× slower).
    columns = {
        field: np.fromiter(map(value, records), dtype=object, count=len(records))
        for field, value in _text_fields.items()
    }
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

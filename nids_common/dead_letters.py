"""Dead letters: why a message cannot be processed, and the message that says so.

A dead letter keeps the original key and value bytes (a prefix when too large) and carries the reason
in headers (nids_common.contract.Header), so every stage writes them alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re

import orjson

from nids_common.contract import Header, Reason, Source
from nids_common.kafka import Headers

_FIELD_AT = re.compile(r"at `\$\.([A-Za-z0-9_]+)")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
Problem = tuple[str, str | None, str]  # (reason, field, detail)


@dataclasses.dataclass(frozen=True)
class InvalidRecord:
    """One message that cannot be scored: why, which field, and where it came from."""

    reason: str
    field: str | None
    detail: str
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        field = f" in field {self.field}" if self.field else ""
        return f"{Source(self.topic, self.partition, self.offset)}: {self.reason}{field}: {self.detail}"


def classify_invalid(message: str) -> Problem:
    """The reason, field and detail of a msgspec ValidationError message."""
    missing = _MISSING_FIELD.search(message)
    if missing:
        return Reason.MISSING_FIELD, missing.group(1), "required field absent"
    at = _FIELD_AT.search(message)
    field = at.group(1) if at else None
    detail = message.split(" - at ", maxsplit=1)[0]
    if field is None and "Expected `object`" in message:
        return Reason.NOT_OBJECT, None, detail
    if "out of range" in message:
        return Reason.NON_FINITE, field, "number overflows a double"
    return Reason.BAD_TYPE, field, detail


def classify_unparsable(value: bytes) -> Problem:
    """Strict JSON has no NaN or Infinity; the stdlib parser accepts them, which tells them from garbage."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Reason.NOT_JSON, None, "not UTF-8 text"
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return Reason.NOT_JSON, None, getattr(exc, "msg", "too deeply nested")
    if isinstance(record, dict):
        for key, item in record.items():
            if isinstance(item, float) and not math.isfinite(item):
                return Reason.NON_FINITE, str(key), f"{item} is not a finite number"
    return Reason.NOT_JSON, None, "not strict JSON"


def dead_letter(value: bytes | None, error: InvalidRecord, max_bytes: int) -> tuple[bytes | None, Headers]:
    """The dead letter of one message: its original value, or a prefix when it is longer than
    `max_bytes`, and headers with the reason (so the value stays the original bytes)."""
    headers: Headers = [
        (Header.REASON, error.reason.encode()),
        (Header.FIELD, (error.field or "").encode()),
        (Header.DETAIL, error.detail.encode()),
        (Header.SOURCE, orjson.dumps({"topic": error.topic, "partition": error.partition, "offset": error.offset})),
    ]
    if value is None or len(value) <= max_bytes:
        return value, headers
    truncated: Headers = [
        (Header.TRUNCATED, b"true"),
        (Header.ORIGINAL_SIZE, str(len(value)).encode()),
        (Header.ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()),
    ]
    return value[:max_bytes], [*headers, *truncated]

"""The numeric fields of a batch of flow messages, read in one compiled, GIL-free pass over their bytes.

Decoding a flow into a msgspec struct makes a Python float for each of its numeric features; reading
them back into columns costs about as much again, and freeing them as much once more. Here a
compiled scan of the messages' bytes writes those numbers straight into one array.

It reads only what it can read exactly as msgspec would, and leaves the rest to msgspec:
- a field counts only under its plain name (a key with an escape leaves the whole message unread);
- a value counts only as a plain JSON number whose significant digits fit in 53 bits and whose
  decimal exponent is within ±22. Those convert with one correctly rounded operation (Clinger's
  fast path), so the float is msgspec's own, bit for bit.
A message with a field missing or repeated, or a value outside that path, is marked unread. Reading
it is not validating it: the message's syntax and every other field stay msgspec's to check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from nids_model.compiled import gil_free_kernel

# 10**k for k ≤ 22: every one is exact in float64, which is what makes one multiplication or division
# correctly rounded.
_POWERS_OF_TEN = np.array([10.0**k for k in range(23)])
_MAX_EXACT = 2**53
_MAX_DIGITS = 18  # significant digits accumulated without overflowing int64

_QUOTE, _BACKSLASH, _COLON, _COMMA = ord('"'), ord("\\"), ord(":"), ord(",")
_OPEN_OBJECT, _CLOSE_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = ord("{"), ord("}"), ord("["), ord("]")
_MINUS, _PLUS, _DOT, _ZERO, _NINE = ord("-"), ord("+"), ord("."), ord("0"), ord("9")
_SMALL_E, _LARGE_E = ord("e"), ord("E")
_SPACE = ord(" ")


class NumberFields:
    """Reads the named numeric fields of JSON objects into columns.

    Parameters
    ----------
    names : sequence of str
        The fields, in the order of the columns of `read`'s output.
    """

    def __init__(self, names: Sequence[str]) -> None:
        encoded = [name.encode() for name in names]
        self.names = tuple(names)
        self._name_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self._name_ends = np.cumsum([len(name) for name in encoded], dtype=np.int64)

    def read(self, values: Sequence[bytes], lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The fields of each message, and whether each message was read.

        Parameters
        ----------
        values : sequence of bytes, one JSON message each
        lengths : ndarray of shape (n_messages,), dtype=int64, optional
            Each message's length, when the caller has them already.

        Returns
        -------
        numbers : ndarray of shape (n_messages, n_names), dtype=float64
            Meaningful only in the rows of messages read.
        read : ndarray of shape (n_messages,), dtype=bool
            False for a message left to msgspec.
        """
        if lengths is None:
            lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        ends = np.cumsum(lengths, dtype=np.int64)
        buffer = np.frombuffer(b"".join(values), dtype=np.uint8)
        numbers = np.empty((len(values), len(self.names)), dtype=np.float64)
        read = np.zeros(len(values), dtype=np.bool_)
        _read_messages(buffer, ends, self._name_bytes, self._name_ends, numbers, read)
        return numbers, read


def precompile() -> None:
    """Fill numba's on-disk cache for the reader (an image build runs this, as for the scorer)."""
    NumberFields(("dur",)).read([b'{"dur":1.5}'])


@numba.njit(nogil=True, inline="always")
def _is_space(byte: int) -> bool:  # pragma: no cover - compiled
    # Any control byte counts: outside a string only JSON's four are valid, and msgspec rejects a
    # message with another.
    return byte <= _SPACE


@numba.njit(nogil=True, inline="always")
def _is_digit(byte: int) -> bool:  # pragma: no cover - compiled
    return _ZERO <= byte <= _NINE


@numba.njit(nogil=True, inline="always")
def _opens(byte: int) -> bool:  # pragma: no cover - compiled
    return byte in (_OPEN_OBJECT, _OPEN_ARRAY)


@numba.njit(nogil=True, inline="always")
def _closes(byte: int) -> bool:  # pragma: no cover - compiled
    return byte in (_CLOSE_OBJECT, _CLOSE_ARRAY)


# One function, with helpers on single bytes only: a call that passes an array costs reference
# counting, and at ~50 fields a message that made the pass 1.4-1.8 µs a message instead of 1.2.
@gil_free_kernel
def _read_messages(  # noqa: PLR0912, PLR0915
    buffer: np.ndarray,
    ends: np.ndarray,
    names: np.ndarray,
    name_ends: np.ndarray,
    numbers: np.ndarray,
    read: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """buffer: uint8 (total_bytes,), the messages back to back; ends: int64 (n_messages,), where each
    ends in it; names: uint8, the field names back to back; name_ends: int64 (n_names,); numbers:
    float64 (n_messages, n_names), written; read: bool (n_messages,), written."""
    width = name_ends.shape[0]
    seen = np.zeros(width, dtype=np.bool_)
    at = 0
    for row in range(ends.shape[0]):
        end = ends[row]
        seen[:] = False
        found = 0
        expected = 0  # producers write the fields in one order: the next one is tried first
        while at < end and _is_space(buffer[at]):
            at += 1
        if at >= end or buffer[at] != _OPEN_OBJECT:
            at = end
            continue
        at += 1
        while at < end and _is_space(buffer[at]):
            at += 1
        # A field a pass: its key, its value (a number read, anything else skipped), then a comma
        # or the object's end. Any surprise ends the message unread.
        while at < end and buffer[at] == _QUOTE:
            key_start = at = at + 1
            while at < end and buffer[at] != _QUOTE and buffer[at] != _BACKSLASH:
                at += 1
            if at >= end or buffer[at] == _BACKSLASH:
                break
            key_length = at - key_start
            field = -1
            # The expected field first (attempt 0), then every other one.
            for attempt in range(width + 1):
                candidate = expected if attempt == 0 else attempt - 1
                if candidate >= width or (attempt > 0 and candidate == expected):
                    continue
                name_start = name_ends[candidate - 1] if candidate > 0 else 0
                if name_ends[candidate] - name_start != key_length:
                    continue
                offset = 0
                while offset < key_length and buffer[key_start + offset] == names[name_start + offset]:
                    offset += 1
                if offset == key_length:
                    field = candidate
                    break
            at += 1
            while at < end and _is_space(buffer[at]):
                at += 1
            if at >= end or buffer[at] != _COLON:
                break
            at += 1
            while at < end and _is_space(buffer[at]):
                at += 1
            if at >= end:
                break
            if field >= 0:
                if seen[field]:
                    break
                seen[field] = True
                found += 1
                expected = field + 1
                # A JSON number, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, as mantissa × 10^exponent.
                negative = buffer[at] == _MINUS
                if negative:
                    at += 1
                if at >= end or not _is_digit(buffer[at]):
                    break
                mantissa = 0
                digits = 0
                exponent = 0
                integral = True
                if buffer[at] == _ZERO:
                    at += 1
                else:
                    while at < end and _is_digit(buffer[at]) and digits < _MAX_DIGITS:
                        mantissa = mantissa * 10 + (buffer[at] - _ZERO)
                        digits += 1
                        at += 1
                if at < end and buffer[at] == _DOT:
                    integral = False
                    at += 1
                    if at >= end or not _is_digit(buffer[at]):
                        break
                    while at < end and _is_digit(buffer[at]) and digits < _MAX_DIGITS:
                        digit = buffer[at] - _ZERO
                        if mantissa != 0 or digit != 0:  # leading zeros are not significant
                            mantissa = mantissa * 10 + digit
                            digits += 1
                        exponent -= 1
                        at += 1
                if at < end and (buffer[at] == _SMALL_E or buffer[at] == _LARGE_E):
                    integral = False
                    at += 1
                    sign = 1
                    if at < end and (buffer[at] == _PLUS or buffer[at] == _MINUS):
                        sign = -1 if buffer[at] == _MINUS else 1
                        at += 1
                    if at >= end or not _is_digit(buffer[at]):
                        break
                    # Capped only so that it cannot overflow: past ±22 the number is left unread anyway.
                    exponent_part = 0
                    while at < end and _is_digit(buffer[at]) and exponent_part < 10_000:
                        exponent_part = exponent_part * 10 + (buffer[at] - _ZERO)
                        at += 1
                    exponent += sign * exponent_part
                # A digit left over means too many of them; beyond 2**53 or 10**±22 one operation
                # no longer rounds exactly.
                if (at < end and _is_digit(buffer[at])) or mantissa > _MAX_EXACT or abs(exponent) > 22:
                    break
                if mantissa == 0:
                    # msgspec reads the integer -0 as the integer 0, and -0.0 as itself.
                    value = -0.0 if negative and not integral else 0.0
                elif exponent >= 0:
                    value = mantissa * _POWERS_OF_TEN[exponent]
                else:
                    value = mantissa / _POWERS_OF_TEN[-exponent]
                numbers[row, field] = -value if negative and mantissa != 0 else value
            elif buffer[at] == _QUOTE:
                at += 1
                while at < end and buffer[at] != _QUOTE:
                    at += 2 if buffer[at] == _BACKSLASH else 1
                at += 1
            elif _opens(buffer[at]):
                # Only where it ends matters here: its syntax is msgspec's to check.
                depth = 0
                while at < end:
                    if buffer[at] == _QUOTE:
                        at += 1
                        while at < end and buffer[at] != _QUOTE:
                            at += 2 if buffer[at] == _BACKSLASH else 1
                    elif _opens(buffer[at]):
                        depth += 1
                    elif _closes(buffer[at]):
                        depth -= 1
                        if depth == 0:
                            break
                    at += 1
                at += 1
            else:
                scalar = at
                while at < end and not _is_space(buffer[at]) and buffer[at] != _COMMA and not _closes(buffer[at]):
                    at += 1
                if at == scalar:
                    break
            while at < end and _is_space(buffer[at]):
                at += 1
            if at >= end:
                break
            if buffer[at] == _CLOSE_OBJECT:
                read[row] = found == width
                break
            if buffer[at] != _COMMA:
                break
            at += 1
            while at < end and _is_space(buffer[at]):
                at += 1
        at = end

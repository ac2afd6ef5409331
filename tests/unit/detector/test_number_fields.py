"""The compiled reader of numeric fields: what it reads is msgspec's float bit for bit, and what it
cannot read exactly it leaves unread."""

from __future__ import annotations

import random

import msgspec
import numpy as np
import orjson
import pytest

from detector.number_fields import NumberFields

NAMES = ("dur", "spkts", "sbytes")
reader = NumberFields(NAMES)
as_float = msgspec.json.Decoder(float)


def message(numbers: dict[str, bytes], before: bytes = b'"flow_id":"f1","proto":"tcp"', after: bytes = b"") -> bytes:
    fields = [before] if before else []
    fields += [b'"' + name.encode() + b'":' + literal for name, literal in numbers.items()]
    if after:
        fields.append(after)
    return b"{" + b",".join(fields) + b"}"


def read_one(value: bytes) -> tuple[np.ndarray, bool]:
    numbers, read = reader.read([value])
    return numbers[0], bool(read[0])


def same_bits(a: float, b: float) -> bool:
    return bool(np.float64(a).view(np.uint64) == np.float64(b).view(np.uint64))


def literals() -> list[bytes]:
    """Number texts as producers write them (shortest round trip, fixed decimals, integers) and the
    corners of JSON's number grammar."""
    rng = random.Random(7)
    texts = [
        b"0",
        b"-0",
        b"0.0",
        b"-0.0",
        b"-0e0",
        b"0e5",
        b"1",
        b"-1",
        b"12",
        b"0.5",
        b"0.000011",
        b"90909.0902",
        b"180363632.0",
        b"1e22",
        b"1E22",
        b"1e-22",
        b"1.5e+3",
        b"2.5E-7",
        b"-3.25e2",
        b"9007199254740992",
        b"9007199254740993",
        b"123456789012345678",
        b"1234567890123456789012",
        b"1e23",
        b"1e-23",
        b"5e-324",
        b"1.7976931348623157e308",
        b"0.1",
        b"0.30000000000000004",
        b"1.0000000000000002",
        b"100000000000000000000",
        b"0.00000000000000000000001",
    ]
    for _ in range(3000):
        value = rng.choice([rng.random(), rng.uniform(-1e9, 1e9), rng.expovariate(1e-4), rng.random() * 1e-6])
        texts.append(orjson.dumps(value))
        texts.append(f"{value:.{rng.randint(1, 15)}g}".encode())
        texts.append(f"{value:.{rng.randint(0, 8)}f}".encode())
        texts.append(str(rng.randint(-(2**60), 2**60)).encode())
    return texts


def test_every_number_read_is_msgspecs_float_bit_for_bit() -> None:
    texts = literals()
    values = [message({name: text for name in NAMES}) for text in texts]
    numbers, read = reader.read(values)
    for text, row, was_read in zip(texts, numbers, read, strict=True):
        if was_read:
            expected = as_float.decode(text)
            assert all(same_bits(value, expected) for value in row), text
    # The fast path covers what producers write: plain decimals of up to 15 significant digits and
    # 22 decimal places.
    plain = [i for i, text in enumerate(texts) if b"e" not in text.lower()]
    exact = [
        i
        for i in plain
        if len(texts[i].lstrip(b"-").replace(b".", b"").lstrip(b"0")) <= 15 and len(texts[i].partition(b".")[2]) <= 22
    ]
    assert len(exact) > 4000 and read[exact].all()
    assert 0.3 < read.mean() < 1.0  # and leaves the rest (17-digit shortest texts, huge exponents) unread


@pytest.mark.parametrize(
    "text",
    [b"123456789012345678901", b"1e23", b"1e-23", b"9007199254740993", b"1.7976931348623157e308", b"1e999999999"],
)
def test_a_number_outside_the_exact_path_leaves_the_message_unread(text: bytes) -> None:
    assert not read_one(message({"dur": text, "spkts": b"1", "sbytes": b"2"}))[1]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(message({"dur": b'"1"', "spkts": b"1", "sbytes": b"2"}), id="string"),
        pytest.param(message({"dur": b"null", "spkts": b"1", "sbytes": b"2"}), id="null"),
        pytest.param(message({"dur": b"true", "spkts": b"1", "sbytes": b"2"}), id="boolean"),
        pytest.param(message({"dur": b"[1]", "spkts": b"1", "sbytes": b"2"}), id="array"),
        pytest.param(message({"dur": b"NaN", "spkts": b"1", "sbytes": b"2"}), id="nan"),
        pytest.param(message({"dur": b"01", "spkts": b"1", "sbytes": b"2"}), id="leading-zero"),
        pytest.param(message({"dur": b"1.", "spkts": b"1", "sbytes": b"2"}), id="bare-dot"),
        pytest.param(message({"dur": b"1e", "spkts": b"1", "sbytes": b"2"}), id="bare-exponent"),
        pytest.param(message({"dur": b"1x", "spkts": b"1", "sbytes": b"2"}), id="trailing-letter"),
        pytest.param(message({"dur": b"1", "spkts": b"1"}), id="missing"),
        pytest.param(message({"dur": b"1", "spkts": b"1", "sbytes": b"2"}, after=b'"dur":3'), id="repeated"),
        pytest.param(message({"spkts": b"1", "sbytes": b"2"}, after=b'"d\\u0075r":3'), id="escaped-key"),
        pytest.param(message({"dur": b"1", "spkts": b"1", "sbytes": b"2"})[:-1], id="unclosed"),
        pytest.param(b"[1, 2, 3]", id="not-an-object"),
        pytest.param(b"", id="empty"),
        pytest.param(b"{}", id="no-fields"),
    ],
)
def test_what_it_cannot_read_exactly_is_left_unread(value: bytes) -> None:
    assert not read_one(value)[1]


def test_other_fields_are_skipped_whatever_they_hold() -> None:
    tricky = (
        b'"note":"a \\"quoted\\" } ] , \\\\","dur_text":"\\"dur\\":99","nested":{"dur":{"sbytes":[1,"}",{"a":"]"}]}},'
        b'"list":[[],{},"x"],"flag":true,"none":null,"count":-12.5e3'
    )
    numbers, read = read_one(message({"dur": b"0.25", "spkts": b"3", "sbytes": b"1e3"}, before=tricky, after=tricky))
    assert read and numbers.tolist() == [0.25, 3.0, 1000.0]


def test_fields_in_any_order_with_whitespace_between_tokens() -> None:
    value = b'{\n\t"sbytes" : 7 ,\r\n "proto":"udp",  "dur":\t1.5e-3, "spkts" :-2 \n}'
    numbers, read = read_one(value)
    assert read and numbers.tolist() == [1.5e-3, -2.0, 7.0]


def test_each_message_of_a_batch_is_read_on_its_own() -> None:
    good = message({"dur": b"1", "spkts": b"2", "sbytes": b"3"})
    values = [good, b'{"dur":', good, message({"dur": b"1"}), good.replace(b"3}", b"4}")]
    numbers, read = reader.read(values)
    assert read.tolist() == [True, False, True, False, True]
    assert numbers[[0, 2, 4]].tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 4.0]]


def test_an_empty_batch() -> None:
    numbers, read = reader.read([])
    assert numbers.shape == (0, len(NAMES)) and read.shape == (0,)

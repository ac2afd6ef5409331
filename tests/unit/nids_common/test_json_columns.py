"""JSON built column by column: each value must be what orjson writes for it alone."""

from __future__ import annotations

import itertools

import numpy as np
import orjson
import pytest

from nids_common.json_columns import json_each, json_numbers, json_objects, json_strings


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["only"],
        ["run-1", "run-2", ""],
        ['a","b', "c"],  # a separator inside a text: escaped, so one call per text
        ["back\\slash", "x"],
        ["line\nbreak", "y"],
        ["é", "日本", "😀"],
    ],
)
def test_json_strings_match_one_orjson_call_per_text(texts: list[str]) -> None:
    assert json_strings(texts) == [orjson.dumps(text) for text in texts]


def test_json_strings_of_items_that_are_not_str_still_match() -> None:
    items: list = [1, "a", None, "b"]
    assert json_strings(items) == [orjson.dumps(item) for item in items]


def test_json_each_and_numbers() -> None:
    assert json_each([True, False, True]) == [b"true", b"false", b"true"]
    assert json_numbers(np.array([1.5, np.nan, 2.0])) == [b"1.5", b"null", b"2.0"]


def test_json_objects_are_valid_json_rows() -> None:
    rows = json_objects(
        [("id", json_strings(["a", "b"])), ("n", json_numbers(np.array([1, 2]))), ("v", itertools.repeat(b'"x"'))]
    )
    assert [orjson.loads(row) for row in rows] == [{"id": "a", "n": 1, "v": "x"}, {"id": "b", "n": 2, "v": "x"}]

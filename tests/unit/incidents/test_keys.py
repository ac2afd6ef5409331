"""Incident keys: each choice, either direction of a pair, and the fallback for alerts without addresses."""

from __future__ import annotations

import pytest

from incidents.keys import address_text, describe_key, key_function
from nids_common.contract import UNSET, KeyChoice
from tests.unit.incidents.factory import alert

FORWARD = alert(srcip="175.45.176.1", dstip="149.171.126.16", attack_cat="DoS")
BACKWARD = alert(srcip="149.171.126.16", dstip="175.45.176.1", attack_cat="DoS")


@pytest.mark.parametrize(
    "choice,expected",
    [
        ("src", "src=175.45.176.1"),
        ("dst", "dst=149.171.126.16"),
        ("pair", "pair=149.171.126.16,175.45.176.1"),
        ("src+attack_cat", "src=175.45.176.1|attack_cat=DoS"),
        ("dst+attack_cat", "dst=149.171.126.16|attack_cat=DoS"),
        ("pair+attack_cat", "pair=149.171.126.16,175.45.176.1|attack_cat=DoS"),
    ],
)
def test_each_choice(choice: KeyChoice, expected: str) -> None:
    assert key_function(choice)(FORWARD) == expected


@pytest.mark.parametrize("choice", ["pair", "pair+attack_cat"])
def test_a_pair_is_one_key_in_either_direction(choice: KeyChoice) -> None:
    key_of = key_function(choice)
    assert key_of(FORWARD) == key_of(BACKWARD)
    assert describe_key(choice, BACKWARD, key_of(BACKWARD)).addresses == ("149.171.126.16", "175.45.176.1")


@pytest.mark.parametrize("missing", [UNSET, None, "", "-", " ", {"ip": "1.2.3.4"}, True])
@pytest.mark.parametrize("choice", ["src", "pair", "src+attack_cat"])
def test_alerts_without_the_addresses_fall_back_to_attack_cat(choice: KeyChoice, missing: object) -> None:
    without = alert(srcip=missing, attack_cat="Worms")
    text = key_function(choice)(without)
    assert text == "attack_cat=Worms"
    key = describe_key(choice, without, text)
    assert (key.by, key.addresses, key.attack_cat, key.source_unknown) == ("attack_cat", (), "Worms", True)


def test_a_key_says_what_it_is_made_of() -> None:
    key = describe_key("src+attack_cat", FORWARD, "src=175.45.176.1|attack_cat=DoS")
    assert (key.by, key.addresses, key.attack_cat, key.source_unknown) == (
        "src+attack_cat",
        ("175.45.176.1",),
        "DoS",
        False,
    )
    assert describe_key("dst", FORWARD, "dst=149.171.126.16").attack_cat is None


def test_identity_fields_as_text() -> None:
    assert address_text(" 10.0.0.1 ") == "10.0.0.1"
    assert address_text(80) == "80"
    assert address_text("0x000b") == "0x000b"
    assert [address_text(v) for v in (None, UNSET, "-", "", 1.5, [1], False)] == [None] * 7

"""Suppression rules: source and destination CIDRs, attack_cat, all given must match, expiry, counts."""

from __future__ import annotations

import datetime as dt

import pytest

from incidents.config import SuppressRule
from incidents.suppression import Suppressor
from tests.unit.incidents.factory import alert

END_2026 = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "rule,kwargs,suppressed",
    [
        (SuppressRule("r", src_cidr="10.0.0.0/8"), {"srcip": "10.1.2.3"}, True),
        (SuppressRule("r", src_cidr="10.0.0.0/8"), {"srcip": "11.1.2.3"}, False),
        (SuppressRule("r", src_cidr="10.0.0.0/8"), {"srcip": None}, False),  # no address: no match
        (SuppressRule("r", src_cidr="10.0.0.0/8"), {"srcip": "not an address"}, False),
        (SuppressRule("r", src_cidr="2001:db8::/32"), {"srcip": "2001:db8::1"}, True),
        (SuppressRule("r", src_cidr="2001:db8::/32"), {"srcip": "10.0.0.1"}, False),
        (SuppressRule("r", dst_cidr="149.171.126.0/24"), {"dstip": "149.171.126.16"}, True),
        (SuppressRule("r", dst_cidr="149.171.126.0/24"), {"srcip": "149.171.126.16", "dstip": "1.1.1.1"}, False),
        (SuppressRule("r", attack_cat="Reconnaissance"), {"attack_cat": "Reconnaissance"}, True),
        (SuppressRule("r", attack_cat="Reconnaissance"), {"attack_cat": "DoS"}, False),
        (SuppressRule("r", src_cidr="10.0.0.0/8", attack_cat="DoS"), {"srcip": "10.0.0.1", "attack_cat": "DoS"}, True),
        (
            SuppressRule("r", src_cidr="10.0.0.0/8", attack_cat="DoS"),
            {"srcip": "10.0.0.1", "attack_cat": "Worms"},
            False,
        ),
        (SuppressRule("r", src_cidr="10.0.0.0/8", attack_cat="DoS"), {"srcip": "9.0.0.1", "attack_cat": "DoS"}, False),
    ],
)
def test_every_criterion_a_rule_gives_must_match(
    rule: SuppressRule, kwargs: dict[str, object], suppressed: bool
) -> None:
    assert (Suppressor([rule]).rule_for(alert(**kwargs)) == "r") is suppressed  # type: ignore[arg-type]


def test_a_rule_ends_at_its_expiry_by_detection_time() -> None:
    suppressor = Suppressor([SuppressRule("until-2027", attack_cat="DoS", expires=END_2026)])
    before, after = END_2026.timestamp() - 1, END_2026.timestamp()
    # Event time (here years back, as in a replay) does not matter; detection time does.
    assert suppressor.rule_for(alert(attack_cat="DoS", ts=1.4e9, detected_at=before)) == "until-2027"
    assert suppressor.rule_for(alert(attack_cat="DoS", ts=1.4e9, detected_at=after)) is None


def test_the_first_live_rule_takes_the_alert_and_counts_are_per_rule() -> None:
    rules = [
        SuppressRule("expired", attack_cat="DoS", expires=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
        SuppressRule("net", src_cidr="10.0.0.0/8"),
        SuppressRule("dos", attack_cat="DoS"),
    ]
    suppressor = Suppressor(rules)
    names = [
        suppressor.rule_for(alert(srcip="10.0.0.1", attack_cat="DoS", detected_at=1.8e9)),
        suppressor.rule_for(alert(srcip="11.0.0.1", attack_cat="DoS", detected_at=1.8e9)),
        suppressor.rule_for(alert(srcip="11.0.0.1", attack_cat="Exploits", detected_at=1.8e9)),
        suppressor.rule_for(alert(srcip="10.0.0.1", attack_cat="Exploits", detected_at=1.8e9)),
    ]
    assert names == ["net", "dos", None, "net"]
    assert suppressor.counts == {"expired": 0, "net": 2, "dos": 1}


def test_no_rules_is_inactive() -> None:
    suppressor = Suppressor([])
    assert not suppressor.active
    assert suppressor.rule_for(alert()) is None

"""nids-alerts: filtering by class and probability, one readable line per alert, bad options rejected."""

from __future__ import annotations

import argparse

import pytest

from detector.alerts_cli import matches, render, tail_command
from nids_common.contract import Alert, Source
from nids_common.errors import UsageError

ALERT = Alert(
    flow_id="r-1",
    is_attack=True,
    attack_cat="DoS",
    attack_probability=0.93,
    model_version="v1",
    detected_at=0.0,
    ts=None,
    source=Source(topic="nids.flows", partition=2, offset=7),
    class_probabilities={"DoS": 0.93},
    srcip="10.0.0.1",
    sport=53,
    dstip="10.0.0.2",
    dsport=80,
)


@pytest.mark.parametrize(
    "classes,minimum,expected",
    [
        (set(), 0.0, True),
        ({"dos"}, 0.9, True),
        ({"dos"}, 0.95, False),
        ({"worms", "exploits"}, 0.0, False),
    ],
)
def test_filters(classes: set[str], minimum: float, expected: bool) -> None:
    assert matches(ALERT, classes, minimum) is expected


def test_render_names_class_probability_flow_endpoints_and_source() -> None:
    line = render(ALERT)
    for part in ("DoS", "p=0.930", "flow r-1", "10.0.0.1:53 → 10.0.0.2:80", "[nids.flows/2@7]"):
        assert part in line
    assert "\n" not in line


def test_probability_out_of_range_is_a_usage_error() -> None:
    args = argparse.Namespace(min_probability=1.5, attack_cat=[], json=False, from_beginning=False, limit=0, config="x")
    with pytest.raises(UsageError, match="--min-probability"):
        tail_command(args)

"""Priority: the highest severity of an incident's classes, moved by probability and size."""

from __future__ import annotations

import dataclasses

import pytest

from incidents.config import IncidentSettings, PriorityRule
from incidents.priority import Prioritizer

SETTINGS = IncidentSettings(
    severity={"Reconnaissance": "low", "Exploits": "high", "Worms": "critical"},
    default_severity="medium",
    priority=PriorityRule(raise_at_probability=0.99, lower_below_probability=0.6, raise_at_alerts=100),
)


@pytest.mark.parametrize(
    "classes,probability,alerts,expected",
    [
        (["Reconnaissance"], 0.9, 1, "low"),
        (["Reconnaissance", "Exploits"], 0.9, 1, "high"),
        (["Generic"], 0.9, 1, "medium"),  # not named: default_severity
        (["Exploits"], 0.995, 1, "critical"),
        (["Exploits"], 0.5, 1, "medium"),
        (["Exploits"], 0.9, 100, "critical"),
        (["Worms"], 0.995, 1000, "critical"),  # never above critical
        (["Reconnaissance"], 0.1, 1, "low"),  # never below low
    ],
)
def test_priority(classes: list[str], probability: float, alerts: int, expected: str) -> None:
    assert Prioritizer(SETTINGS)(classes, probability, alerts) == expected


def test_raise_at_alerts_zero_never_raises() -> None:
    settings = dataclasses.replace(SETTINGS, priority=PriorityRule(raise_at_alerts=0))
    assert Prioritizer(settings)(["Exploits"], 0.9, 10**6) == "high"

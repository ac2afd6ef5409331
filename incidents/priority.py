"""An incident's priority: the highest severity among its classes, moved by how sure and how large it is."""

from __future__ import annotations

from collections.abc import Iterable

from incidents.config import IncidentSettings
from nids_common.contract import PRIORITIES, Priority


class Prioritizer:
    def __init__(self, settings: IncidentSettings) -> None:
        self._level = {name: PRIORITIES.index(level) for name, level in settings.severity.items()}
        self._default = PRIORITIES.index(settings.default_severity)
        self._rule = settings.priority

    def __call__(self, attack_cats: Iterable[str], max_attack_probability: float, alerts: int) -> Priority:
        level = max([self._level.get(name, self._default) for name in attack_cats], default=self._default)
        if max_attack_probability >= self._rule.raise_at_probability:
            level += 1
        elif max_attack_probability < self._rule.lower_below_probability:
            level -= 1
        if self._rule.raise_at_alerts and alerts >= self._rule.raise_at_alerts:
            level += 1
        return PRIORITIES[min(max(level, 0), len(PRIORITIES) - 1)]

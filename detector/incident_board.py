"""The incidents a reader has seen, latest record per incident, as the rows of a live table."""

from __future__ import annotations

import dataclasses
import datetime as dt

from nids_common.contract import PRIORITIES, Incident

# Closed incidents stay on the board this long (seconds of their last detection) before they drop off.
CLOSED_VISIBLE_S = 60.0
COLUMNS = ("priority", "state", "key", "categories", "alerts", "suppressed", "first seen", "last seen", "incident")


@dataclasses.dataclass
class IncidentBoard:
    """Fed every record of the compacted incidents topic; `rows` are what a person reads."""

    latest: dict[str, Incident] = dataclasses.field(default_factory=dict)

    def add(self, incident: Incident) -> None:
        known = self.latest.get(incident.incident_id)
        if known is None or incident.revision >= known.revision:
            self.latest[incident.incident_id] = incident

    def open(self) -> list[Incident]:
        return [incident for incident in self.latest.values() if incident.state != "closed"]

    def rows(self, now: float, limit: int = 20) -> list[tuple[str, ...]]:
        """Open incidents and those closed within CLOSED_VISIBLE_S, most urgent first."""
        shown = [
            incident
            for incident in self.latest.values()
            if incident.state != "closed" or now - incident.last_detected_at <= CLOSED_VISIBLE_S
        ]
        shown.sort(key=lambda i: (i.state == "closed", -PRIORITIES.index(i.priority), -i.alerts))
        self._forget_old(now)
        return [row(incident) for incident in shown[:limit]]

    def _forget_old(self, now: float) -> None:
        stale = [
            key
            for key, incident in self.latest.items()
            if incident.state == "closed" and now - incident.last_detected_at > CLOSED_VISIBLE_S
        ]
        for key in stale:
            del self.latest[key]


def row(incident: Incident) -> tuple[str, ...]:
    categories = ", ".join(f"{name} {count:,}" for name, count in incident.alerts_by_attack_cat.items())
    state = incident.state if incident.close_reason is None else f"closed ({incident.close_reason})"
    key = incident.key.text + (" (source unknown)" if incident.key.source_unknown else "")
    return (
        incident.priority,
        state,
        key,
        categories,
        f"{incident.alerts:,}",
        f"{incident.suppressed:,}",
        _clock(incident.first_ts),
        _clock(incident.last_ts),
        incident.incident_id,
    )


def _clock(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S")

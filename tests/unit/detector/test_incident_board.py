"""The incident board nids-alerts --incidents draws: latest record per incident, most urgent first,
closed incidents shown for a minute and then forgotten."""

from __future__ import annotations

from detector.incident_board import CLOSED_VISIBLE_S, IncidentBoard
from nids_common.contract import Incident, IncidentKey

NOW = 1_700_000_000.0


def incident(
    incident_id: str, revision: int, state: str, priority: str, alerts: int, detected: float = NOW
) -> Incident:
    return Incident(
        incident_id=incident_id,
        revision=revision,
        state=state,  # type: ignore[arg-type]
        key=IncidentKey(
            text=f"src={incident_id}", by="src", addresses=(incident_id,), attack_cat=None, source_unknown=False
        ),
        priority=priority,  # type: ignore[arg-type]
        first_ts=NOW - 10,
        last_ts=NOW,
        first_detected_at=NOW - 10,
        last_detected_at=detected,
        alerts=alerts,
        alerts_by_attack_cat={"DoS": alerts},
        suppressed=0,
        late_alerts=0,
        max_attack_probability=0.9,
        top_destinations=(),
        top_ports=(),
        samples=(),
        model_versions=("v1",),
        close_reason="idle" if state == "closed" else None,
    )


def test_the_latest_revision_wins_and_an_older_one_arriving_late_is_ignored() -> None:
    board = IncidentBoard()
    board.add(incident("a", 0, "open", "high", 1))
    board.add(incident("a", 2, "update", "high", 100))
    board.add(incident("a", 1, "update", "high", 10))
    assert board.latest["a"].alerts == 100


def test_rows_put_open_and_urgent_incidents_first() -> None:
    board = IncidentBoard()
    board.add(incident("low", 0, "open", "low", 5000))
    board.add(incident("crit", 0, "open", "critical", 3))
    board.add(incident("done", 3, "closed", "critical", 9))
    assert [row[-1] for row in board.rows(NOW)] == ["crit", "low", "done"]
    assert board.rows(NOW)[-1][1] == "closed (idle)"


def test_closed_incidents_drop_off_after_a_minute() -> None:
    board = IncidentBoard()
    board.add(incident("done", 3, "closed", "high", 9, detected=NOW))
    board.add(incident("live", 0, "open", "high", 9, detected=NOW - 3600))
    later = NOW + CLOSED_VISIBLE_S + 1
    assert [row[-1] for row in board.rows(later)] == ["live"]
    assert "done" not in board.latest

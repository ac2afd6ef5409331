"""The offline reference: the tracker over a file, partitioned as the stream's repartition topic is."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from incidents.config import IncidentSettings
from incidents.offline import read_alerts, run_offline
from incidents.repartition import partition_for
from nids_common.errors import InputError
from tests.unit.incidents.factory import alert

SETTINGS = IncidentSettings(idle_close_s=60, max_duration_s=600, update_interval_s=0)


def write_alerts(path: Path, alerts: list[object]) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(a) + b"\n" for a in alerts))
    return path


def test_reads_the_alerts_of_a_file_skipping_blank_lines(tmp_path: Path) -> None:
    path = write_alerts(tmp_path / "alerts.jsonl", [alert(flow_id="a"), alert(flow_id="b")])
    path.write_bytes(path.read_bytes() + b"\n  \n")
    assert [a.flow_id for a in read_alerts(path)] == ["a", "b"]


@pytest.mark.parametrize(
    "line,reason",
    [
        (b"{not json", "not an alert: JSON is malformed"),
        (b'{"flow_id": "x"}', "not an alert: Object missing required field"),
    ],
)
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, line: bytes, reason: str) -> None:
    path = write_alerts(tmp_path / "alerts.jsonl", [alert()])
    path.write_bytes(path.read_bytes() + line + b"\n")
    with pytest.raises(InputError, match=f"^{path}:2: {reason}"):
        list(read_alerts(path))


def test_every_incident_is_closed_at_the_end_of_the_input() -> None:
    alerts = [alert(ts=float(t), srcip=f"10.0.0.{t % 3}") for t in range(30)]
    records = list(run_offline(alerts, SETTINGS))
    closed = [r for r in records if r.state == "closed"]
    assert sorted(r.key.text for r in closed) == ["src=10.0.0.0", "src=10.0.0.1", "src=10.0.0.2"]
    assert {r.close_reason for r in closed} == {"end_of_input"}
    assert sum(r.alerts for r in closed) == 30
    assert list(run_offline(alerts, SETTINGS, batch_alerts=4)) == records


def test_partitions_have_their_own_stream_time() -> None:
    first, second = (
        "10.0.0.1",
        next(
            f"10.0.0.{i}"
            for i in range(2, 99)
            if partition_for(f"src=10.0.0.{i}", 2) != partition_for("src=10.0.0.1", 2)
        ),
    )
    # The second key's alerts move the stream time 100 s on; the first key comes back after 90 s.
    alerts = [alert(ts=0, srcip=first), alert(ts=100, srcip=second), alert(ts=50, srcip=first)]

    def closed(partitions: int) -> list[tuple[str, int, str | None]]:
        records = run_offline(alerts, SETTINGS, partitions=partitions, batch_alerts=1)
        return sorted((r.key.text, r.alerts, r.close_reason) for r in records if r.state == "closed")

    # One partition: the first key's incident was idle by stream time, its next alert opens another.
    assert closed(1) == [
        (f"src={first}", 1, "end_of_input"),
        (f"src={first}", 1, "idle"),
        (f"src={second}", 1, "end_of_input"),
    ]
    # Two: its partition's stream time is its own, 50 s after 0 joins.
    assert closed(2) == [(f"src={first}", 2, "end_of_input"), (f"src={second}", 1, "end_of_input")]

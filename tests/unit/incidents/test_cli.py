"""nids-incidents: the offline mode's output and exit codes; the stream mode is not built yet."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from incidents.cli import main
from nids_common.contract import Incident
from tests.unit.incidents.factory import alert

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "config" / "incidents.yaml")


@pytest.fixture
def alerts_file(tmp_path: Path) -> Path:
    alerts = [alert(ts=1000.0 + i, srcip=f"10.0.0.{i % 2}", attack_cat="DoS") for i in range(12)]
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"".join(msgspec.json.encode(a) + b"\n" for a in alerts))
    return path


def test_offline_prints_the_closed_incidents_as_json_lines(
    alerts_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", CONFIG, "--offline", str(alerts_file), "--json"]) == 0
    incidents = [msgspec.json.decode(line, type=Incident) for line in capsys.readouterr().out.splitlines()]
    assert [(i.key.text, i.state, i.alerts) for i in incidents] == [
        ("src=10.0.0.0", "closed", 6),
        ("src=10.0.0.1", "closed", 6),
    ]


def test_all_prints_every_record(alerts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", CONFIG, "--offline", str(alerts_file), "--json", "--all", "--partitions", "3"]) == 0
    states = [msgspec.json.decode(line, type=Incident).state for line in capsys.readouterr().out.splitlines()]
    assert sorted(states) == ["closed", "closed", "open", "open"]


def test_without_json_one_readable_line_per_incident(alerts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", CONFIG, "--offline", str(alerts_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "closed (end_of_input)" in lines[0] and "src=10.0.0.0  6 alerts [DoS 6]" in lines[0]


def test_a_bad_line_stops_with_its_file_and_line(alerts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alerts_file.write_bytes(alerts_file.read_bytes() + b"[1, 2]\n")
    assert main(["--config", CONFIG, "--offline", str(alerts_file), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nids-incidents: error: {alerts_file}:13: not an alert: ") and "\n" not in err


def test_a_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", CONFIG, "--offline", str(tmp_path / "none.jsonl")]) == 2
    assert "none.jsonl: cannot read" in capsys.readouterr().err

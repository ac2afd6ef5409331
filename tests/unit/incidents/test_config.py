"""config/incidents.yaml: the shipped file loads; every wrong value is one line naming its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from incidents.config import IncidentsConfig
from nids_common.config import describe_json, load_config
from nids_common.contract import IncidentStageNames
from nids_common.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_config_loads() -> None:
    config = load_config(IncidentsConfig, REPO / "config" / "incidents.yaml", env={})
    assert config.incidents.key == "src"
    assert (config.incidents.idle_close_s, config.incidents.max_duration_s) == (60, 3600)
    assert config.incidents.severity["Worms"] == "critical"
    assert config.metrics.port == 9109
    assert (config.repartition_topic, config.changelog_topic) == (
        "nids-incidents-repartition",
        "nids-incidents-changelog",
    )


def test_the_services_names_are_the_ones_its_acls_are_granted_on() -> None:
    """nids-topics --acls grants nids-incidents' role on IncidentStageNames: the service must use the same."""
    config = load_config(
        IncidentsConfig,
        REPO / "config" / "incidents.yaml",
        env={"NIDS_INCIDENTS_GROUP_ID": "soc", "NIDS_INCIDENTS_INSTANCE_ID": "a", "NIDS_TOPICS_INCIDENTS": "i"},
    )
    names = config.names
    assert names == IncidentStageNames(
        alerts="nids.alerts", incidents="i", dead_letter="nids.alerts.dlq", group_id="soc"
    )
    assert config.transactional_id == "nids-incidents.soc.a" and config.transactional_id.startswith(
        names.transactional_id_prefix
    )
    assert config.output_topics() == ["i", "nids.alerts.dlq", "soc-repartition", "soc-changelog"]
    assert names.restore_group == "soc-restore"


def test_suppression_rules_load_and_show_in_the_start_up_line(tmp_path: Path) -> None:
    path = tmp_path / "incidents.yaml"
    path.write_text(
        "incidents:\n  suppress:\n    - name: lab\n      src_cidr: 10.20.0.0/16\n"
        "      attack_cat: Reconnaissance\n      expires: 2026-12-31T00:00:00Z\n"
    )
    (rule,) = load_config(IncidentsConfig, path, env={}).incidents.suppress
    assert (rule.name, rule.src_cidr, rule.expires_at) == ("lab", "10.20.0.0/16", 1798675200.0)
    assert '"expires": "2026-12-31T00:00:00Z"' in describe_json(load_config(IncidentsConfig, path, env={}))


@pytest.mark.parametrize(
    "text,message",
    [
        ("incidents:\n  key: source", r"field incidents\.key: Invalid enum value 'source'"),
        ("incidents:\n  delivery: twice", r"field incidents\.delivery: Invalid enum value 'twice'"),
        ("incidents:\n  idle_close_s: 0", r"field incidents\.idle_close_s: must be > 0"),
        ("incidents:\n  max_duration_s: 10", r"field incidents\.max_duration_s: must be >= idle_close_s"),
        ("incidents:\n  severity:\n    DoS: urgent", r"field incidents\.severity.*Invalid enum value 'urgent'"),
        (
            "incidents:\n  priority:\n    raise_at_probability: 0.5",
            r"field incidents\.priority\.lower_below_probability",
        ),
        ("incidents:\n  suppress:\n    - name: x\n      src_cidr: 10.0.0.1/8", r"suppress\[0\]\.src_cidr: .*host bits"),
        (
            "incidents:\n  suppress:\n    - name: x\n      dst_cdir: 10.0.0.0/8",
            r"suppress\[0\]: .*unknown field `dst_cdir`",
        ),
        ("incidents:\n  suppress:\n    - name: x", r"suppress\[0\]\.src_cidr: a rule needs"),
        (
            "incidents:\n  suppress:\n    - name: x\n      attack_cat: DoS\n      expires: 2026-12-31 00:00:00",
            r"expires: give a time zone",
        ),
        (
            "incidents:\n  suppress:\n    - {name: x, attack_cat: DoS}\n    - {name: x, attack_cat: Worms}",
            r"suppress: rule names must be unique",
        ),
        ("incidents:\n  window: 5", r"field incidents\.window: unknown key"),
    ],
)
def test_bad_values_are_one_line_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "incidents.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(IncidentsConfig, path, env={})
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "incidents.yaml"
    path.write_text("")
    config = load_config(IncidentsConfig, path, env={"NIDS_INCIDENTS_KEY": "pair+attack_cat", "NIDS_METRICS_PORT": "0"})
    assert (config.incidents.key, config.metrics.port) == ("pair+attack_cat", 0)

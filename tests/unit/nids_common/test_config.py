"""Config loading: good files, every kind of bad file, environment overrides, secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.config import DetectorConfig
from nids_common.config import describe, load_config
from nids_common.errors import EXIT_USAGE, ConfigError
from producer.config import ProducerConfig

REPO = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "detector.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name,cls", [("detector.yaml", DetectorConfig), ("producer.yaml", ProducerConfig)])
def test_shipped_config_files_load(name: str, cls: type) -> None:
    config = load_config(cls, REPO / "config" / name, env={})
    assert config.kafka.bootstrap == "127.0.0.1:9092"


@pytest.mark.parametrize("name", ["training.yaml", "training-quick.yaml"])
def test_shipped_training_config_loads(name: str) -> None:
    from training.config import TrainingConfig

    config = load_config(TrainingConfig, REPO / "config" / name, env={})
    assert 0 < config.validation_fraction < 1


def test_values_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "detector:\n  max_records: 123\nkafka:\n  librdkafka:\n    security.protocol: SASL_SSL\n")
    config = load_config(DetectorConfig, path, env={})
    assert config.detector.max_records == 123
    assert config.detector.max_wait_ms == 20
    assert config.kafka.client_config()["security.protocol"] == "SASL_SSL"
    assert config.kafka.client_config()["bootstrap.servers"] == "127.0.0.1:9092"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(DetectorConfig, write(tmp_path, ""), env={})
    with pytest.raises(AttributeError):
        config.detector.max_records = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("detector:\n  max_recods: 5\n", "field detector.max_recods: unknown key"),
        ("detector:\n  max_records: many\n", "field detector.max_records: Expected `int`, got `str`"),
        ("detector:\n  max_records: 0\n", "field detector.max_records: must be >= 1"),
        ("detector:\n  emit_verdicts: 'yes'\n", "field detector.emit_verdicts: Expected `bool`, got `str`"),
        ("metrics: 9108\n", "field metrics: Expected `object`, got `int`"),
        (
            "detector:\n  delivery: exactly-once\n",
            "field detector.delivery: Invalid enum value 'exactly-once' (expected one of: at_least_once, exactly_once)",
        ),
        ("detector:\n  group_protocol: 2\n", "field detector.group_protocol: Expected `str`, got `int`"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("detector: [unclosed\n", "not valid YAML at line"),
        ("detector:\n  max_records: 5\n  max_records: 6\n", "at line 3: key 'max_records' appears twice"),
    ],
)
def test_bad_files_name_file_field_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(DetectorConfig, path, env={})
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert expected in message
    assert "\n" not in message
    assert info.value.exit_code == EXIT_USAGE


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(DetectorConfig, tmp_path / "nope.yaml", env={})


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "NIDS_KAFKA_BOOTSTRAP": "broker:29092",
        "NIDS_DETECTOR_MAX_RECORDS": "42",
        "NIDS_DETECTOR_EMIT_VERDICTS": "true",
        "NIDS_METRICS_PORT": "9200",
        "NIDS_KAFKA_LIBRDKAFKA": '{"sasl.password": "hunter2"}',
    }
    path = write(tmp_path, "kafka:\n  librdkafka:\n    security.protocol: SASL_SSL\n")
    config = load_config(DetectorConfig, path, env=env)
    assert config.kafka.bootstrap == "broker:29092"
    assert config.detector.max_records == 42
    assert config.detector.emit_verdicts is True
    assert config.metrics.port == 9200
    assert dict(config.kafka.librdkafka) == {"security.protocol": "SASL_SSL", "sasl.password": "hunter2"}


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"environment NIDS_DETECTOR_MAX_RECORDS: field detector\.max_records: Expected `int`, got `str`",
    ):
        load_config(DetectorConfig, write(tmp_path, ""), env={"NIDS_DETECTOR_MAX_RECORDS": "lots"})


def test_a_choice_from_the_environment_is_checked_like_one_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    config = load_config(DetectorConfig, path, env={"NIDS_DETECTOR_DELIVERY": "exactly_once"})
    assert config.detector.delivery == "exactly_once"
    with pytest.raises(
        ConfigError,
        match=r"^environment NIDS_DETECTOR_GROUP_PROTOCOL: field detector\.group_protocol: Invalid enum value 'kip848' "
        r"\(expected one of: classic, consumer\)$",
    ):
        load_config(DetectorConfig, path, env={"NIDS_DETECTOR_GROUP_PROTOCOL": "kip848"})


def test_each_item_of_a_tuple_of_choices_is_checked(tmp_path: Path) -> None:
    from training.config import TrainingConfig

    path = write(tmp_path, "deploy_candidates: [rf, xgboost]\n")
    with pytest.raises(
        ConfigError,
        match=r"field deploy_candidates\[1\]: Invalid enum value 'xgboost' \(expected one of: hgb, rf, knn, rf\+hgb\)",
    ):
        load_config(TrainingConfig, path, env={})
    for families in ("[]", "[rf+hgb]"):
        with pytest.raises(
            ConfigError, match=r"field deploy_candidates: name at least one of hgb, rf, knn \(a label model\)$"
        ):
            load_config(TrainingConfig, write(tmp_path, f"deploy_candidates: {families}\n"), env={})


def test_describe_masks_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path, "kafka:\n  librdkafka:\n    sasl.password: hunter2\n    ssl.key.password: x\n    linger.ms: 5\n"
    )
    described = describe(load_config(DetectorConfig, path, env={}))
    assert described["kafka"]["librdkafka"] == {"sasl.password": "***", "ssl.key.password": "***", "linger.ms": 5}
    assert described["detector"]["model"] == "models/latest"

"""The shipped config files: each value is its dataclass default, so a setting has one default."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from detector.config import DetectorConfig

CONFIG = Path(__file__).resolve().parents[2] / "config"
# Each file with the config class it loads into ("module:Class"), imported when its test runs.
SERVICE_FILES = {
    "detector.yaml": "detector.config:DetectorConfig",
    "producer.yaml": "producer.config:ProducerConfig",
    "training.yaml": "training.config:TrainingConfig",
    "incidents.yaml": "incidents.config:IncidentsConfig",
}
OVERRIDE_FILES = {"training-quick.yaml": "training.config:TrainingConfig"}


def default_of(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)()


def differences(written: Any, default: Any, prefix: str = "") -> list[str]:
    """Every key of `written` that is no field of the config `default`, and every value that differs."""
    if not dataclasses.is_dataclass(default) or not isinstance(written, dict):
        expected = plain(default)
        if written == expected:
            return []
        return [f"{prefix.rstrip('.')}: {written!r} in the file, {expected!r} in the class"]
    fields = {field.name for field in dataclasses.fields(default)}
    found = []
    for key, value in written.items():
        if key in fields:
            found.extend(differences(value, getattr(default, key), f"{prefix}{key}."))
        else:
            found.append(f"{prefix}{key}: not a field")
    return found


def plain(value: Any) -> Any:
    """A default as YAML reads it back."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


@pytest.mark.parametrize("name", SERVICE_FILES)
def test_every_value_of_a_service_file_is_its_default(name: str) -> None:
    written = yaml.safe_load((CONFIG / name).read_text())
    assert differences(written, default_of(SERVICE_FILES[name])) == []


@pytest.mark.parametrize("name", OVERRIDE_FILES)
def test_every_key_of_an_override_file_is_a_field(name: str) -> None:
    written = yaml.safe_load((CONFIG / name).read_text())
    problems = differences(written, default_of(OVERRIDE_FILES[name]))
    assert [p for p in problems if p.endswith("not a field")] == []
    assert problems, "an override file that changes nothing can go"


def test_every_config_file_is_checked() -> None:
    assert sorted(path.name for path in CONFIG.glob("*.yaml")) == sorted({**SERVICE_FILES, **OVERRIDE_FILES})


def test_differences_finds_a_stray_key_and_a_changed_value() -> None:
    written = {
        "detector": {"max_records": 5, "max_recods": 5, "model": "models/latest"},
        "kafka": {"librdkafka": {"linger.ms": 5}},
    }
    assert differences(written, DetectorConfig()) == [
        "detector.max_records: 5 in the file, 20000 in the class",
        "detector.max_recods: not a field",
        "kafka.librdkafka: {'linger.ms': 5} in the file, {} in the class",
    ]

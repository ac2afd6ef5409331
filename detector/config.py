"""The detector's configuration (config/detector.yaml)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nids_common.config import KafkaSettings, load_config
from nids_common.contract import Topics

DEFAULT_PATH = Path("config/detector.yaml")


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    group_id: str = "nids-detector"
    model: Path = Path("models/latest")
    max_records: int = 20_000
    max_wait_ms: int = 20
    max_message_bytes: int = 65_536
    emit_verdicts: bool = False
    # OpenMP threads for the model. One leaves the other cores to the broker and producers on a
    # small host, and spares the per-tree thread start-up that dominates small batches.
    model_threads: int = 1

    def __post_init__(self) -> None:
        if self.model_threads < 1:
            raise ValueError("model_threads: must be >= 1")
        if self.max_records < 1:
            raise ValueError("max_records: must be >= 1")
        if not 1 <= self.max_wait_ms <= 1000:
            raise ValueError("max_wait_ms: must be within 1..1000 (the loop polls at most 1 s)")
        if self.max_message_bytes < 256:
            raise ValueError("max_message_bytes: must be >= 256")


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    address: str = "0.0.0.0"
    port: int = 9108

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port: must be within 0..65535")


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    topics: Topics = dataclasses.field(default_factory=Topics)
    detector: DetectorSettings = dataclasses.field(default_factory=DetectorSettings)
    metrics: MetricsSettings = dataclasses.field(default_factory=MetricsSettings)
    log_level: str = "INFO"


def load(path: str | Path = DEFAULT_PATH) -> DetectorConfig:
    return load_config(DetectorConfig, path)

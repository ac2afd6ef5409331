"""The replay producer's configuration (config/producer.yaml)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nids_common.config import KafkaSettings, load_config
from nids_common.contract import Topics

DEFAULT_PATH = Path("config/producer.yaml")


@dataclasses.dataclass(frozen=True)
class ReplaySettings:
    rate: float = 0.0  # flows/s; 0 means as fast as the broker takes them
    speedup: float = 0.0  # replay raw files' Stime gaps this many times faster; 0 ignores Stime
    limit: int = 0  # stop after this many flows; 0 means no limit
    loop: bool = False
    shuffle: bool = False
    chunk_rows: int = 50_000
    seed: int = 7

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("rate: must be >= 0")
        if self.speedup < 0:
            raise ValueError("speedup: must be >= 0")
        if self.limit < 0:
            raise ValueError("limit: must be >= 0")
        if self.chunk_rows < 1:
            raise ValueError("chunk_rows: must be >= 1")


@dataclasses.dataclass(frozen=True)
class ProducerConfig:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    topics: Topics = dataclasses.field(default_factory=Topics)
    replay: ReplaySettings = dataclasses.field(default_factory=ReplaySettings)
    log_level: str = "INFO"


def load(path: str | Path = DEFAULT_PATH) -> ProducerConfig:
    return load_config(ProducerConfig, path)

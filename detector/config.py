"""The detector's configuration (config/detector.yaml)."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Literal

from nids_common.checkpoint import AT_LEAST_ONCE, Delivery
from nids_common.config import KafkaSettings, load_config
from nids_common.contract import DEAD_LETTER_MAX_BYTES, Topics
from nids_common.metrics_server import MetricsSettings

DEFAULT_PATH = Path("config/detector.yaml")
GroupProtocol = Literal["classic", "consumer"]


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
    # A dead letter carries its original bytes up to this many; a larger original is cut to a prefix
    # (headers give its size and sha256). The producer's message.max.bytes and the dead-letter topic's
    # max.message.bytes follow from it.
    dead_letter_max_bytes: int = DEAD_LETTER_MAX_BYTES
    # Seconds between looks at `model` for a new version (SIGHUP looks at once); 0: only on SIGHUP.
    model_poll_s: float = 5.0
    # Drift and health metrics against the live model's reference profile (a few ms per batch).
    drift_metrics: bool = True
    # Load only models signed with NIDS_MODEL_KEY (docs/security.md): without the key nothing loads.
    require_signed_model: bool = False
    # This detector's identity in its group: its transactional.id (exactly_once) and, with
    # static_membership, its group.instance.id. Empty: "<hostname>-<metrics port>", stable across
    # restarts and distinct per replica (compose replicas have their own hostnames; processes on one
    # host, their own ports). Two live detectors must never share one (the newer fences the older).
    instance_id: str = ""
    # Static group membership (KIP-345): a restarted detector gets its partitions back without a
    # rebalance. Off by default: librdkafka fences a static member fatally when a broker outage
    # outlasts the session (docs/stream-contract.md has the measurements).
    static_membership: bool = False
    # How long the group waits for a silent member before its partitions go to the others: the
    # stall after a crash (6 s is the broker's default minimum; librdkafka's default is 45 s).
    session_timeout_ms: int = 6000
    # classic, or consumer (KIP-848: the broker assigns; its group.consumer.session.timeout.ms,
    # 45 s by default, replaces session_timeout_ms).
    group_protocol: GroupProtocol = "classic"
    # at_least_once: outputs, then the offsets (a crash may repeat a batch's outputs). exactly_once:
    # outputs and offsets in one Kafka transaction (read_committed readers see each output once).
    delivery: Delivery = AT_LEAST_ONCE

    def __post_init__(self) -> None:
        if self.model_threads < 1:
            raise ValueError("model_threads: must be >= 1")
        if self.max_records < 1:
            raise ValueError("max_records: must be >= 1")
        if not 1 <= self.max_wait_ms <= 1000:
            raise ValueError("max_wait_ms: must be within 1..1000 (the loop polls at most 1 s)")
        if self.max_message_bytes < 256:
            raise ValueError("max_message_bytes: must be >= 256")
        if not 1000 <= self.session_timeout_ms <= 300_000:
            raise ValueError("session_timeout_ms: must be within 1000..300000")
        if self.model_poll_s < 0:
            raise ValueError("model_poll_s: must be >= 0")
        if self.dead_letter_max_bytes < 1024:
            raise ValueError("dead_letter_max_bytes: must be >= 1024")


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    topics: Topics = dataclasses.field(default_factory=Topics)
    detector: DetectorSettings = dataclasses.field(default_factory=DetectorSettings)
    metrics: MetricsSettings = dataclasses.field(default_factory=MetricsSettings)
    log_level: str = "INFO"

    @property
    def instance_id(self) -> str:
        """This detector's group.instance.id (see DetectorSettings.instance_id)."""
        if self.detector.instance_id:
            return self.detector.instance_id
        host = socket.gethostname()
        return f"{host}-{self.metrics.port}" if self.metrics.port else host

    @property
    def transactional_id(self) -> str:
        """Stable per group and instance: a restarted detector fences its previous incarnation."""
        return f"{self.transactional_id_prefix}{self.instance_id}"

    @property
    def transactional_id_prefix(self) -> str:
        """What every transactional.id of this group starts with: the detector role's ACL covers it."""
        return f"nids-detect.{self.detector.group_id}."


def load(path: str | Path = DEFAULT_PATH) -> DetectorConfig:
    return load_config(DetectorConfig, path)

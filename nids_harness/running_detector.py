"""A real Detector on a thread of the calling process, with a metrics registry of its own."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from detector.cli import build_detector
from detector.config import DetectorConfig, DetectorSettings
from detector.metrics import DetectorMetrics
from detector.reload import load_live
from detector.service import Detector
from nids_common.config import KafkaSettings
from nids_common.contract import Topics
from nids_common.metrics_server import MetricsSettings
from nids_harness.errors import HarnessError
from nids_harness.waiting import wait_until


def detector_config(bootstrap: str, topics: Topics, group: str, model: Path, **settings: Any) -> DetectorConfig:
    """A detector on `topics` and `group`, no metrics server; an instance id of its own unless given."""
    settings.setdefault("instance_id", f"{group}-{uuid.uuid4().hex[:6]}")
    return DetectorConfig(
        kafka=KafkaSettings(bootstrap=bootstrap),
        topics=topics,
        detector=DetectorSettings(group_id=group, model=model, **settings),
        metrics=MetricsSettings(port=0),
    )


class RunningDetector:
    """A real Detector, built as nids-detect builds it, running on its own thread."""

    def __init__(self, config: DetectorConfig, before_start: Callable[[Detector], None] | None = None) -> None:
        self.metrics = DetectorMetrics(CollectorRegistry())
        settings = config.detector
        live = load_live(settings.model, settings.model_threads, settings.require_signed_model)
        self.detector = build_detector(config, live, self.metrics)
        if before_start is not None:
            before_start(self.detector)
        self.thread = threading.Thread(target=self.detector.run, daemon=True)
        self.thread.start()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Whether `condition` held within `timeout` seconds; False at once if the detector stopped."""
        wait_until(lambda: condition() or not self.thread.is_alive(), timeout)
        return condition()

    def stop(self) -> None:
        self.detector.stop()
        self.thread.join(30)
        if self.thread.is_alive():
            raise HarnessError("the detector did not stop within 30 s")

    def value(self, name: str, **labels: str) -> float:
        """One sample of the detector's registry; 0 when it has none yet."""
        found = self.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if found is None else found

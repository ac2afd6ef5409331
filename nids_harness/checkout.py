"""Where this checkout keeps what the harness runs."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = str(REPO / "scripts" / "kafka-local")

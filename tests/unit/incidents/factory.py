"""Alerts for the incidents tests: only what a test sets differs from a typical one."""

from __future__ import annotations

import itertools
from typing import Any

from nids_common.contract import UNSET, Alert, Source

_flow_ids = itertools.count()


def alert(
    ts: float | None = 1000.0,
    srcip: Any = "175.45.176.1",
    dstip: Any = "149.171.126.16",
    attack_cat: str = "Exploits",
    probability: float = 0.9,
    detected_at: float | None = None,
    dsport: Any = 80,
    model_version: str = "v1",
    community_id: Any = UNSET,
    flow_id: str | None = None,
) -> Alert:
    number = next(_flow_ids)
    return Alert(
        flow_id=flow_id if flow_id is not None else f"flow-{number}",
        is_attack=True,
        attack_cat=attack_cat,
        attack_probability=probability,
        model_version=model_version,
        detected_at=detected_at if detected_at is not None else (ts if ts is not None else 2000.0),
        ts=ts,
        source=Source("nids.flows", 0, number),
        class_probabilities={attack_cat: probability},
        srcip=srcip,
        sport=40000,
        dstip=dstip,
        dsport=dsport,
        community_id=community_id,
    )

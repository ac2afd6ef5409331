"""Flow chunks → one JSON object per flow, the wire contract of the `nids.flows` topic."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nids_common.schema import ATTACK_CAT, FEATURES, IDENTITY_FIELDS, LABEL

OPTIONAL_FIELDS = (*IDENTITY_FIELDS, LABEL, ATTACK_CAT)


def encode_chunk(frame: pd.DataFrame, flow_ids: np.ndarray, event_times: np.ndarray) -> list[bytes]:
    """JSON bytes per row: flow_id, ts, the 42 features, and identity and ground-truth fields when present.

    pandas' C JSON writer serialises the whole chunk at once; a per-row dict would cost ~10x more.
    Missing numbers become null, which the detector dead-letters as `bad_type` rather than guessing.
    """
    columns = {"flow_id": flow_ids, "ts": event_times}
    for name in FEATURES:
        columns[name] = frame[name].to_numpy()
    for name in OPTIONAL_FIELDS:
        if name in frame.columns:
            values = frame[name]
            # Nullable columns (ports that were '-', blank addresses) go out as JSON null.
            columns[name] = values.astype(object).where(values.notna(), None).to_numpy() if values.hasnans else values.to_numpy()
    table = pd.DataFrame(columns, copy=False)
    text = table.to_json(orient="records", lines=True, double_precision=15)
    return [line.encode() for line in text.splitlines()]

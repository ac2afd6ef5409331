"""The offline reference: the stream's incident logic over a file of alerts, one alert JSON per line.

Each alert goes to the repartition partition of its key (incidents.repartition), so every partition sees
the alerts, and the stream time, the stream's repartition topic would give it when the file holds
the alerts in that topic's order. After each batch every partition expires; at the end of the file
every incident still open closes with `end_of_input`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from incidents.config import IncidentSettings
from incidents.keys import key_function
from incidents.repartition import partition_for
from incidents.suppression import Suppressor
from incidents.tracker import PartitionIncidents
from nids_common.contract import AlertSummary, Incident, alert_summary_decoder
from nids_common.errors import InputError

BATCH_ALERTS = 10_000


def read_alerts(path: Path) -> Iterator[AlertSummary]:
    """The alerts of a JSON-lines file; blank lines are skipped, a bad one stops with file:line and why."""
    try:
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield alert_summary_decoder.decode(line)
                except msgspec.DecodeError as exc:
                    raise InputError(f"{path}:{number}: not an alert: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def run_offline(
    alerts: Iterable[AlertSummary], settings: IncidentSettings, partitions: int = 1, batch_alerts: int = BATCH_ALERTS
) -> Iterator[Incident]:
    """Every incident record the stream would write for `alerts`, batch by batch."""
    if partitions < 1:
        raise InputError("--partitions: must be >= 1")
    suppressor = Suppressor(settings.suppress)
    trackers = [PartitionIncidents(settings, now=0.0, suppressor=suppressor) for _ in range(partitions)]
    key_text = key_function(settings.key)
    batches: list[list[AlertSummary]] = [[] for _ in range(partitions)]
    pending = 0
    for alert in alerts:
        batches[partition_for(key_text(alert), partitions) if partitions > 1 else 0].append(alert)
        pending += 1
        if pending == batch_alerts:
            yield from _feed(trackers, batches)
            pending = 0
    yield from _feed(trackers, batches)
    for tracker in trackers:
        yield from tracker.close_all("end_of_input").incidents


def _feed(trackers: list[PartitionIncidents], batches: list[list[AlertSummary]]) -> Iterator[Incident]:
    for tracker, batch in zip(trackers, batches, strict=True):
        if not batch:
            continue
        # Processing time only drives the quiet close, which an offline run never asks for.
        changes = tracker.add_batch(batch, now=batch[-1].detected_at)
        changes.extend(tracker.expire())
        batch.clear()
        yield from changes.incidents

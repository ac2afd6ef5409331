"""The incidents of one partition: decoded alerts in, the incident records to write and the changed keys out.

Pure and deterministic: what it writes depends only on the partition's alerts in arrival order,
never on how they were cut into batches, so a stream and an offline run over the same sequence
write the same records (the order between keys may differ). Per key, in arrival order:

- An alert's event time is its `ts`, or its detection time when it has none (or a `ts` more than
  MAX_AHEAD_S after it). The partition's stream time is the largest event time it has seen
  (suppressed alerts included).
- The key's open incident closes before the alert is looked at when the stream time is past its
  last alert + idle_close_s (`idle`) or its first alert + max_duration_s (`max_duration`): the same
  test `expire` makes after a batch, so where a batch ended cannot matter.
- A suppressed alert is counted in the key's open incident, or held (`pending`) for the key's next
  incident; held counts are forgotten once the stream time is idle_close_s past the last of them.
- Otherwise the alert joins the open incident, or opens one (`open` record). An alert with an event
  time before the incident's first joins it and is counted in `late_alerts`: first_ts stays, so the
  id and window of an incident never move back. An alert that opens an incident already idle by
  stream time counts as late too; that incident closes at the next `expire`.
- An `update` record is written when the alert count reaches 10, 100, 1,000, … and the last record
  of the incident is at least update_interval_s older (detection time); otherwise at the first alert
  after that.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterable, Sequence

import msgspec

from incidents.config import IncidentSettings
from incidents.counter import count
from incidents.keys import address_text, describe_key, key_function
from incidents.priority import Prioritizer
from incidents.state import (
    STREAM_TIME_KEY,
    TOP_N,
    KeyState,
    OpenIncident,
    PendingSuppressed,
    StreamClock,
    decode_state,
    encode_state,
    incident_id,
    next_update_at,
    record,
)
from incidents.suppression import Suppressor
from nids_common.contract import AlertSummary, CloseReason, Incident, IncidentState, SampleFlow
from nids_common.errors import NidsError

ChangelogRecord = tuple[str, bytes | None]
# An event time further than this after its alert's detection time is a wrong clock or a forged flow:
# the detection time stands in, so one record cannot push a partition's stream time into the future
# (and close, then mark late, everything after it).
MAX_AHEAD_S = 300.0


@dataclasses.dataclass
class Changes:
    """What a call produced: incident records to write, in order, and the keys whose state changed
    (write each one's `changelog_records` entry: its state, or a tombstone when it has none)."""

    incidents: list[Incident] = dataclasses.field(default_factory=list)
    changed_keys: set[str] = dataclasses.field(default_factory=set)

    def extend(self, other: Changes) -> None:
        self.incidents.extend(other.incidents)
        self.changed_keys.update(other.changed_keys)


class PartitionIncidents:
    def __init__(self, settings: IncidentSettings, now: float, suppressor: Suppressor | None = None) -> None:
        self.settings = settings
        # Shared by all partitions of a process so its per-rule counts are the process's.
        self.suppressor = suppressor if suppressor is not None else Suppressor(settings.suppress)
        self.stream_time = -math.inf
        # Suppressed alerts held for a next incident of their key that did not come in time.
        self.forgotten_suppressed = 0
        self._idle = settings.idle_close_s
        self._max_duration = settings.max_duration_s
        self._update_interval = settings.update_interval_s
        self._key_text = key_function(settings.key)
        self._prioritize = Prioritizer(settings)
        self._open: dict[str, OpenIncident] = {}
        self._pending: dict[str, PendingSuppressed] = {}
        # (stream time after which to look again, tie-breaker, key, what to look at): lazy, an entry
        # whose object is no longer the key's is skipped, one whose deadline moved is pushed again.
        self._deadlines: list[tuple[float, int, str, OpenIncident | PendingSuppressed]] = []
        self._sequence = itertools.count()
        # Processing time of the last batch that brought alerts (the quiet clock).
        self._last_arrival = now

    @property
    def open_incidents(self) -> int:
        return len(self._open)

    # One inlined per-alert loop: a function call per step costs ~15% at 100k alerts/s.
    def add_batch(self, alerts: Sequence[AlertSummary], now: float) -> Changes:  # noqa: PLR0912
        """Feed a batch of this partition's alerts, in arrival order; `now` is processing time."""
        changes = Changes()
        if not alerts:
            return changes
        self._last_arrival = now
        out, changed = changes.incidents, changes.changed_keys
        stream = self.stream_time
        idle, max_duration, interval = self._idle, self._max_duration, self._update_interval
        open_incidents, pending = self._open, self._pending
        key_text = self._key_text
        suppressed_by = self.suppressor.rule_for if self.suppressor.active else None
        for alert in alerts:
            ts = alert.ts
            if ts is None or not ts <= alert.detected_at + MAX_AHEAD_S:  # NaN too
                ts = alert.detected_at
            stream = max(stream, ts)
            key = key_text(alert)
            changed.add(key)
            incident = open_incidents.get(key)
            if incident is not None:
                reason = _expired(incident, stream, idle, max_duration)
                if reason is not None:
                    out.append(self._close(key, incident, reason))
                    incident = None
            if pending and key in pending and stream > pending[key].last_ts + idle:
                self._forget(key)
            if suppressed_by is not None and suppressed_by(alert) is not None:
                if incident is not None:
                    incident.suppressed += 1
                else:
                    self._hold(key, ts)
                continue
            if incident is None:
                out.append(self._open_incident(key, alert, ts, stream))
                continue
            _count(incident, alert, ts)
            if ts < incident.first_ts:
                incident.late_alerts += 1
            elif ts > incident.last_ts:
                incident.last_ts = ts
            incident.last_detected_at = max(incident.last_detected_at, alert.detected_at)
            if (
                incident.alerts >= incident.next_update_at
                and incident.last_detected_at - incident.last_record_detected_at >= interval
            ):
                out.append(self._record(incident, "update"))
                incident.next_update_at = next_update_at(incident.alerts)
        if stream > self.stream_time:
            self.stream_time = stream
            changed.add(STREAM_TIME_KEY)
        return changes

    def expire(self, stream_time: float | None = None) -> Changes:
        """Close the incidents idle or too long by stream time (the partition's, or a later one given),
        and forget held suppressed counts past theirs. Call after each batch."""
        changes = Changes()
        if stream_time is not None and stream_time > self.stream_time:
            self.stream_time = stream_time
            changes.changed_keys.add(STREAM_TIME_KEY)
        stream, deadlines = self.stream_time, self._deadlines
        while deadlines and deadlines[0][0] < stream:
            _, _, key, item = heapq.heappop(deadlines)
            if isinstance(item, OpenIncident):
                if self._open.get(key) is not item:
                    continue
                reason = _expired(item, stream, self._idle, self._max_duration)
                if reason is None:
                    self._watch(key, item)
                    continue
                changes.incidents.append(self._close(key, item, reason))
            else:
                if self._pending.get(key) is not item:
                    continue
                if stream <= item.last_ts + self._idle:
                    self._watch(key, item)
                    continue
                self._forget(key)
            changes.changed_keys.add(key)
        return changes

    def close_quiet(self, now: float) -> Changes:
        """Close everything (`quiet`) when no alert reached the partition for idle_close_s of processing
        time: a key that went quiet with the whole stream still closes."""
        if now - self._last_arrival <= self._idle:
            return Changes()
        return self.close_all("quiet")

    def close_all(self, reason: CloseReason = "end_of_input") -> Changes:
        changes = Changes()
        for key, incident in sorted(self._open.items()):
            changes.incidents.append(self._close(key, incident, reason))
            changes.changed_keys.add(key)
        for key in sorted(self._pending):
            self._forget(key)
            changes.changed_keys.add(key)
        self._deadlines.clear()
        return changes

    def changelog_records(self, keys: Iterable[str]) -> list[ChangelogRecord]:
        """(key, state) for the changelog, None (a tombstone) for a key with nothing left."""
        records: list[ChangelogRecord] = []
        for key in keys:
            if key == STREAM_TIME_KEY:
                records.append((key, encode_state(StreamClock(stream_time=self.stream_time))))
                continue
            incident, pending = self._open.get(key), self._pending.get(key)
            if incident is None and pending is None:
                records.append((key, None))
            else:
                records.append((key, encode_state(KeyState(incident=incident, pending=pending))))
        return records

    @classmethod
    def restore(
        cls,
        records: Iterable[tuple[str | bytes, bytes | None]],
        settings: IncidentSettings,
        now: float,
        suppressor: Suppressor | None = None,
    ) -> PartitionIncidents:
        """A partition rebuilt from its changelog read from the start (later records win, a None value
        deletes). The quiet clock starts at `now`."""
        latest: dict[str, bytes | None] = {}
        for key, value in records:
            latest[key.decode() if isinstance(key, bytes) else key] = value
        partition = cls(settings, now, suppressor)
        for key, value in sorted(latest.items()):
            if value is None:
                continue
            try:
                state = decode_state(value)
            except msgspec.DecodeError as exc:
                raise NidsError(f"changelog record {key!r}: {exc}") from None
            if isinstance(state, StreamClock):
                partition.stream_time = state.stream_time
                continue
            if state.incident is not None:
                partition._open[key] = state.incident
                partition._watch(key, state.incident)
            if state.pending is not None:
                partition._pending[key] = state.pending
                partition._watch(key, state.pending)
        return partition

    def _open_incident(self, key: str, alert: AlertSummary, ts: float, stream: float) -> Incident:
        incident = OpenIncident(
            incident_id=incident_id(key, alert.flow_id, ts),
            key=describe_key(self.settings.key, alert, key),
            first_ts=ts,
            last_ts=ts,
            first_detected_at=alert.detected_at,
            last_detected_at=alert.detected_at,
        )
        if stream > ts + self._idle:
            incident.late_alerts = 1
        held = self._pending.pop(key, None)
        if held is not None:
            incident.suppressed = held.count
        _count(incident, alert, ts)
        self._open[key] = incident
        self._watch(key, incident)
        return self._record(incident, "open")

    def _close(self, key: str, incident: OpenIncident, reason: CloseReason) -> Incident:
        del self._open[key]
        return self._record(incident, "closed", reason)

    def _record(self, incident: OpenIncident, state: IncidentState, reason: CloseReason | None = None) -> Incident:
        priority = self._prioritize(incident.by_attack_cat, incident.max_attack_probability, incident.alerts)
        return record(incident, state, priority, reason)

    def _hold(self, key: str, ts: float) -> None:
        held = self._pending.get(key)
        if held is None:
            held = self._pending[key] = PendingSuppressed(count=0, last_ts=ts)
            self._watch(key, held)
        held.count += 1
        held.last_ts = max(held.last_ts, ts)

    def _forget(self, key: str) -> None:
        self.forgotten_suppressed += self._pending.pop(key).count

    def _watch(self, key: str, item: OpenIncident | PendingSuppressed) -> None:
        if isinstance(item, OpenIncident):
            deadline = min(item.last_ts + self._idle, item.first_ts + self._max_duration)
        else:
            deadline = item.last_ts + self._idle
        heapq.heappush(self._deadlines, (deadline, next(self._sequence), key, item))


def _expired(incident: OpenIncident, stream: float, idle: float, max_duration: float) -> CloseReason | None:
    if stream > incident.last_ts + idle:
        return "idle"
    if stream > incident.first_ts + max_duration:
        return "max_duration"
    return None


def _count(incident: OpenIncident, alert: AlertSummary, ts: float) -> None:
    """What every alert of an incident adds to it, the first included."""
    incident.alerts += 1
    by_attack_cat = incident.by_attack_cat
    by_attack_cat[alert.attack_cat] = by_attack_cat.get(alert.attack_cat, 0) + 1
    incident.max_attack_probability = max(incident.max_attack_probability, alert.attack_probability)
    destination = address_text(alert.dstip)
    if destination is not None:
        count(incident.destinations, destination)
    port = address_text(alert.dsport)
    if port is not None:
        count(incident.ports, port)
    if len(incident.samples) < TOP_N:
        community = alert.community_id if isinstance(alert.community_id, str) else None
        incident.samples = (*incident.samples, SampleFlow(alert.flow_id, community, ts))
    versions = incident.model_versions
    if len(versions) < TOP_N and alert.model_version not in versions:
        incident.model_versions = (*versions, alert.model_version)

"""What one partition remembers per key, in memory and in its compacted changelog.

A changelog record is (key string, msgpack of KeyState) for an incident key, a tombstone when the
key has nothing left, and (STREAM_TIME_KEY, msgpack of StreamClock) for the partition's stream time.
Maps, not arrays (which would halve the records): a changelog written by an earlier version must
still restore, so a field is only ever added with a default.
"""

from __future__ import annotations

import hashlib

import msgspec

from incidents.counter import top
from nids_common.contract import CloseReason, Incident, IncidentKey, IncidentState, Priority, SampleFlow

# Destinations, ports, sample flows and model versions an incident names, at most.
TOP_N = 5
# A changelog key no incident key can be: those all hold "=".
STREAM_TIME_KEY = "@stream_time"
# Updates are written when an incident's alert count reaches 10, 100, 1,000, …
FIRST_UPDATE_AT = 10


class OpenIncident(msgspec.Struct, kw_only=True, gc=False):
    """An incident still taking alerts. Mutable: the partition updates it in place per alert. Untracked
    by the garbage collector (nothing refers back to it): a partition holds many."""

    incident_id: str
    key: IncidentKey
    first_ts: float
    last_ts: float
    first_detected_at: float
    last_detected_at: float
    alerts: int = 0
    by_attack_cat: dict[str, int] = msgspec.field(default_factory=dict)
    suppressed: int = 0
    late_alerts: int = 0
    max_attack_probability: float = 0.0
    destinations: dict[str, int] = msgspec.field(default_factory=dict)
    ports: dict[str, int] = msgspec.field(default_factory=dict)
    # Tuples: once the collector has seen they hold no containers it stops tracking them.
    samples: tuple[SampleFlow, ...] = ()
    model_versions: tuple[str, ...] = ()
    # Records written so far: the next record's revision.
    records: int = 0
    # The alert count at which the next update is due, and the detection time of the last record.
    next_update_at: int = FIRST_UPDATE_AT
    last_record_detected_at: float = 0.0


class PendingSuppressed(msgspec.Struct, kw_only=True, gc=False):
    """Suppressed alerts of a key without an open incident, for the key's next incident."""

    count: int
    last_ts: float


class KeyState(msgspec.Struct, kw_only=True, tag="key", gc=False):
    incident: OpenIncident | None = None
    pending: PendingSuppressed | None = None


class StreamClock(msgspec.Struct, kw_only=True, tag="clock"):
    stream_time: float


_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[KeyState | StreamClock] = msgspec.msgpack.Decoder(KeyState | StreamClock)


def encode_state(state: KeyState | StreamClock) -> bytes:
    return _encoder.encode(state)


def decode_state(value: bytes) -> KeyState | StreamClock:
    return _decoder.decode(value)


def incident_id(key: str, flow_id: str, ts: float) -> str:
    """Deterministic: a replay after a crash names the incident the same."""
    return hashlib.blake2b(f"{key}\n{flow_id}\n{ts!r}".encode(), digest_size=10).hexdigest()


def next_update_at(alerts: int) -> int:
    """The power of ten above `alerts`: 10 → 100, 57 → 100, 100 → 1,000."""
    return int(10 ** len(str(alerts)))


def record(
    incident: OpenIncident, state: IncidentState, priority: Priority, reason: CloseReason | None = None
) -> Incident:
    """The incident as written now (containers copied: the open incident keeps changing)."""
    revision = incident.records
    incident.records += 1
    incident.last_record_detected_at = incident.last_detected_at
    return Incident(
        incident_id=incident.incident_id,
        revision=revision,
        state=state,
        key=incident.key,
        priority=priority,
        first_ts=incident.first_ts,
        last_ts=incident.last_ts,
        first_detected_at=incident.first_detected_at,
        last_detected_at=incident.last_detected_at,
        alerts=incident.alerts,
        alerts_by_attack_cat=dict(sorted(incident.by_attack_cat.items())),
        suppressed=incident.suppressed,
        late_alerts=incident.late_alerts,
        max_attack_probability=incident.max_attack_probability,
        top_destinations=top(incident.destinations, TOP_N),
        top_ports=top(incident.ports, TOP_N),
        samples=incident.samples,
        model_versions=incident.model_versions,
        close_reason=reason,
    )

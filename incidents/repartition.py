"""The repartition topic: a batch's alerts of one partition, as few messages as fit.

Every alert of one incident key must reach the member that owns the key's state, so the re-key step
puts each alert in partition `crc32(key) % N` of this group's repartition topic (librdkafka's
`consistent` partitioner, zlib's CRC-32). A message holds a run of one partition's alerts, in the
order they were read, as a MessagePack array of `AlertSummary` maps: one produce and one decode per
run instead of per alert, which is what lets a Python member keep up with a detector. The topic is
the group's own: only its members write and read it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import msgspec

from nids_common.contract import AlertSummary

# Runs are cut at this size; only a lone alert (at most max_alert_bytes as JSON) can pass it. The
# producer's and the topic's limits follow (incidents.clients.largest_message).
MAX_RUN_BYTES = 512 * 1024
SAMPLE_ALERTS = 200

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[AlertSummary])


def partition_for(key: str, partitions: int) -> int:
    """The repartition partition of incident key `key` among `partitions`."""
    return zlib.crc32(key.encode()) % partitions


def encode_runs(alerts: Sequence[AlertSummary], limit: int = MAX_RUN_BYTES) -> list[bytes]:
    """`alerts` as messages of at most `limit` bytes each (a lone alert larger than that stays whole),
    in order."""
    if len(alerts) > SAMPLE_ALERTS:
        # Cut by count from the size of a sample, aiming at half the limit: most alerts are encoded
        # once; a piece that still comes out too large (uneven alerts) is halved.
        sample = len(_encoder.encode(alerts[:SAMPLE_ALERTS]))
        per_run = max(1, limit * SAMPLE_ALERTS // (2 * sample))
        if per_run < len(alerts):
            return [
                run
                for start in range(0, len(alerts), per_run)
                for run in _split(alerts[start : start + per_run], limit)
            ]
    return _split(alerts, limit)


def _split(alerts: Sequence[AlertSummary], limit: int) -> list[bytes]:
    encoded = _encoder.encode(alerts)
    if len(encoded) <= limit or len(alerts) == 1:
        return [encoded]
    middle = len(alerts) // 2
    return _split(alerts[:middle], limit) + _split(alerts[middle:], limit)


def decode_run(value: bytes) -> list[AlertSummary]:
    """The alerts of one repartition message; msgspec.DecodeError (ValidationError included) when it
    is not one."""
    return _decoder.decode(value)

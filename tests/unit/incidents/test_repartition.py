"""The repartition topic's messages: runs of one partition's alerts, in order, within a size limit."""

from __future__ import annotations

import msgspec
import pytest

from incidents.repartition import MAX_RUN_BYTES, decode_run, encode_runs, partition_for
from nids_common.contract import AlertSummary, alert_summary_decoder
from tests.unit.incidents.factory import alert


def summaries(count: int, **fields: object) -> list[AlertSummary]:
    return [alert_summary_decoder.decode(msgspec.json.encode(alert(ts=1000.0 + i, **fields))) for i in range(count)]  # type: ignore[arg-type]


def test_a_run_decodes_to_the_alerts_it_was_made_of_in_order() -> None:
    alerts = summaries(50, srcip=None, dstip={"nested": [1, 2]}, community_id="1:abc=")
    (run,) = encode_runs(alerts)
    assert decode_run(run) == alerts


def test_runs_past_the_limit_split_in_order_each_within_it() -> None:
    alerts = summaries(400)
    limit = len(encode_runs(alerts)[0]) // 5
    runs = encode_runs(alerts, limit)
    assert len(runs) > 5
    assert all(len(run) <= limit for run in runs)
    assert [a for run in runs for a in decode_run(run)] == alerts


@pytest.mark.parametrize("around", [3, 300])  # fewer than the size sample, and more
def test_an_alert_larger_than_the_limit_is_a_run_of_its_own(around: int) -> None:
    big = summaries(1, srcip="x" * (MAX_RUN_BYTES + 1))
    small = summaries(around)
    runs = encode_runs([*small, *big, *small])
    assert [len(decode_run(run)) for run in runs if len(run) > MAX_RUN_BYTES] == [1]
    assert [a for run in runs for a in decode_run(run)] == [*small, *big, *small]


@pytest.mark.parametrize("value", [b"", b"{not msgpack", msgspec.msgpack.encode([{"flow_id": 1}])])
def test_what_is_not_a_run_of_alerts_raises_a_decode_error(value: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_run(value)


def test_partitions_are_librdkafkas_consistent_partitioner_and_spread_keys() -> None:
    # rd_crc32("foobar") = 0x9EF61F95 (CRC-32/ISO-HDLC, librdkafka's and zlib's)
    assert partition_for("foobar", 10) == 0x9EF61F95 % 10
    assert partition_for("foobar", 1) == 0
    assert {partition_for(f"src=10.0.0.{i}", 6) for i in range(200)} == set(range(6))

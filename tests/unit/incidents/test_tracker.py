"""PartitionIncidents: when incidents open, update and close, what they count, and that batching,
restarts and suppression change nothing that should not change."""

from __future__ import annotations

import dataclasses
import random

import msgspec
import pytest

from incidents.config import IncidentSettings, SuppressRule
from incidents.state import STREAM_TIME_KEY
from incidents.tracker import Changes, PartitionIncidents
from nids_common.contract import Alert, Incident
from tests.unit.incidents.factory import alert

SETTINGS = IncidentSettings(idle_close_s=60, max_duration_s=600, update_interval_s=0)


def feed(partition: PartitionIncidents, alerts: list[Alert], now: float = 0.0) -> Changes:
    changes = partition.add_batch(alerts, now)
    changes.extend(partition.expire())
    return changes


def summary(records: list[Incident]) -> list[tuple[str, str, int, str | None]]:
    return [(r.key.text, r.state, r.alerts, r.close_reason) for r in records]


def test_first_alert_opens_later_ones_join() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    changes = feed(
        partition,
        [
            alert(ts=100, dstip="10.0.0.1", dsport=80, attack_cat="Exploits", probability=0.7),
            alert(ts=110, dstip="10.0.0.2", dsport=80, attack_cat="DoS", probability=0.95),
            alert(ts=105, dstip="10.0.0.1", dsport=443, attack_cat="Exploits", probability=0.8),
        ],
    )
    assert summary(changes.incidents) == [("src=175.45.176.1", "open", 1, None)]
    (closed,) = partition.close_all().incidents
    assert closed.state == "closed" and closed.close_reason == "end_of_input"
    assert closed.incident_id == changes.incidents[0].incident_id
    assert closed.revision == 1
    assert (closed.first_ts, closed.last_ts, closed.alerts) == (100, 110, 3)
    assert closed.alerts_by_attack_cat == {"DoS": 1, "Exploits": 2}
    assert [(c.value, c.count) for c in closed.top_destinations] == [("10.0.0.1", 2), ("10.0.0.2", 1)]
    assert [(c.value, c.count) for c in closed.top_ports] == [("80", 2), ("443", 1)]
    assert closed.max_attack_probability == 0.95
    assert closed.late_alerts == 0
    assert partition.open_incidents == 0


def test_updates_at_10_100_1000_alerts() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    records = feed(partition, [alert(ts=100 + i * 0.01) for i in range(1500)]).incidents
    assert [(r.state, r.alerts, r.revision) for r in records] == [
        ("open", 1, 0),
        ("update", 10, 1),
        ("update", 100, 2),
        ("update", 1000, 3),
    ]


def test_an_update_waits_for_the_interval_then_comes_with_the_next_alert() -> None:
    partition = PartitionIncidents(dataclasses.replace(SETTINGS, update_interval_s=10), now=0)
    early = [alert(ts=100 + i, detected_at=5000 + i * 0.1) for i in range(50)]  # 4.9 s of detection time
    assert [r.state for r in feed(partition, early).incidents] == ["open"]
    late = feed(partition, [alert(ts=151, detected_at=5010)]).incidents
    assert [(r.state, r.alerts) for r in late] == [("update", 51)]
    # The backoff goes on from the count written: the next update comes at 100.
    more = feed(partition, [alert(ts=152 + i, detected_at=5030 + i) for i in range(48)]).incidents
    assert more == []
    assert [(r.state, r.alerts) for r in feed(partition, [alert(ts=200, detected_at=5100)]).incidents] == [
        ("update", 100)
    ]


def test_a_gap_longer_than_idle_close_closes_and_the_alert_opens_a_new_incident() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    first = feed(partition, [alert(ts=0), alert(ts=60)]).incidents  # 60 s is not more than idle_close_s
    second = feed(partition, [alert(ts=121)]).incidents
    assert summary(first) == [("src=175.45.176.1", "open", 1, None)]
    assert summary(second) == [("src=175.45.176.1", "closed", 2, "idle"), ("src=175.45.176.1", "open", 1, None)]
    assert second[0].incident_id != second[1].incident_id


def test_an_incident_closes_at_max_duration_even_while_alerts_keep_coming() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    records = feed(partition, [alert(ts=t) for t in range(0, 700, 30)]).incidents
    closes = [r for r in records if r.state == "closed"]
    assert [(r.first_ts, r.last_ts, r.close_reason) for r in closes] == [(0, 600, "max_duration")]
    assert records[-1].state == "open" and records[-1].first_ts == 630


def test_expire_closes_keys_that_went_quiet_while_the_partition_went_on() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    partition.add_batch([alert(ts=0, srcip="10.0.0.1"), alert(ts=50, srcip="10.0.0.2")], now=0)
    assert partition.expire().incidents == []
    partition.add_batch([alert(ts=70, srcip="10.0.0.2")], now=1)
    expired = partition.expire()
    assert summary(expired.incidents) == [("src=10.0.0.1", "closed", 1, "idle")]
    assert expired.changed_keys == {"src=10.0.0.1"}
    assert partition.open_incidents == 1
    # A later stream time given by the caller counts too.
    assert summary(partition.expire(stream_time=500).incidents) == [("src=10.0.0.2", "closed", 2, "idle")]


def test_where_batches_end_does_not_change_what_is_written() -> None:
    rng = random.Random(5)
    alerts, ts = [], 0.0
    for _ in range(3000):
        ts += rng.choice([0.1, 0.5, 2.0, 40.0])
        jitter = rng.choice([0.0, 0.0, 0.0, -30.0, -90.0])  # some arrive late
        alerts.append(
            alert(
                ts=ts + jitter,
                detected_at=ts,
                srcip=f"10.0.0.{rng.randrange(6)}",
                attack_cat=rng.choice(["DoS", "Exploits"]),
            )
        )
    settings = dataclasses.replace(SETTINGS, update_interval_s=5, suppress=(SuppressRule("dos", attack_cat="DoS"),))

    def run(batch: int) -> list[bytes]:
        partition = PartitionIncidents(settings, now=0)
        records: list[Incident] = []
        for start in range(0, len(alerts), batch):
            records += feed(partition, alerts[start : start + batch]).incidents
        records += partition.close_all().incidents
        return sorted(msgspec.json.encode(r) for r in records)

    whole = run(len(alerts))
    assert len(whole) > 50
    assert run(1) == whole
    assert run(7) == whole
    assert run(500) == whole


def test_no_alert_for_idle_close_s_of_processing_time_closes_everything() -> None:
    partition = PartitionIncidents(SETTINGS, now=1000)
    partition.add_batch([alert(ts=0, srcip="10.0.0.1"), alert(ts=1, srcip="10.0.0.2")], now=1000)
    assert partition.add_batch([], now=1050).incidents == []  # an empty poll is not an arrival
    assert partition.close_quiet(now=1060).incidents == []
    quiet = partition.close_quiet(now=1061)
    assert [(r.key.text, r.close_reason) for r in quiet.incidents] == [
        ("src=10.0.0.1", "quiet"),
        ("src=10.0.0.2", "quiet"),
    ]
    assert quiet.changed_keys == {"src=10.0.0.1", "src=10.0.0.2"}
    assert partition.open_incidents == 0


def test_late_alerts_join_and_are_counted_without_moving_the_window() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    feed(partition, [alert(ts=100), alert(ts=150), alert(ts=40)])
    # Behind the stream time by more than idle_close_s: its own incident, late, closed at expire.
    behind = feed(partition, [alert(ts=20, srcip="10.9.9.9")]).incidents
    assert [(r.key.text, r.state, r.late_alerts, r.close_reason) for r in behind] == [
        ("src=10.9.9.9", "open", 1, None),
        ("src=10.9.9.9", "closed", 1, "idle"),
    ]
    (closed,) = partition.close_all().incidents
    assert (closed.first_ts, closed.last_ts, closed.alerts, closed.late_alerts) == (100, 150, 3, 1)


def test_alerts_without_event_time_use_detection_time() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    feed(partition, [alert(ts=None, detected_at=5000), alert(ts=None, detected_at=5030)])
    assert partition.stream_time == 5030
    (closed,) = partition.close_all().incidents
    assert (closed.first_ts, closed.last_ts, closed.first_detected_at, closed.last_detected_at) == (
        5000,
        5030,
        5000,
        5030,
    )


@pytest.mark.parametrize("ts", [float("inf"), float("nan"), 5000 + 301])
def test_an_event_time_after_detection_cannot_move_the_stream_time_ahead(ts: float) -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    feed(partition, [alert(ts=4990, detected_at=5000, srcip="10.0.0.1"), alert(ts=ts, detected_at=5000)])
    assert partition.stream_time == 5000
    assert partition.open_incidents == 2
    feed(partition, [alert(ts=5000 + 300, detected_at=5000)])  # within the allowance: taken as it is
    assert partition.stream_time == 5300


def test_suppressed_alerts_are_counted_in_the_incident_that_would_hold_them() -> None:
    rule = SuppressRule("lab", src_cidr="10.1.0.0/16", attack_cat="Reconnaissance")
    partition = PartitionIncidents(dataclasses.replace(SETTINGS, suppress=(rule,)), now=0)
    scan = {"srcip": "10.1.2.3", "attack_cat": "Reconnaissance"}
    # Before the key has an incident: held, then carried into the one that opens.
    assert feed(partition, [alert(ts=0, **scan), alert(ts=10, **scan)]).incidents == []
    opened = feed(partition, [alert(ts=20, srcip="10.1.2.3", attack_cat="Exploits")]).incidents
    assert [(r.state, r.alerts, r.suppressed) for r in opened] == [("open", 1, 2)]
    # While it is open: counted in it, never written on their own.
    assert feed(partition, [alert(ts=30, **scan)]).incidents == []
    (closed,) = partition.close_all().incidents
    assert (closed.alerts, closed.suppressed) == (1, 3)
    assert partition.suppressor.counts == {"lab": 3}


def test_held_suppressed_counts_are_forgotten_once_idle_by_stream_time() -> None:
    rule = SuppressRule("dos", attack_cat="DoS")
    partition = PartitionIncidents(dataclasses.replace(SETTINGS, suppress=(rule,)), now=0)
    feed(partition, [alert(ts=0, attack_cat="DoS")])
    assert partition.changelog_records([alert_key := "src=175.45.176.1"])[0][1] is not None
    changes = feed(partition, [alert(ts=100, srcip="10.0.0.1")])
    assert alert_key in changes.changed_keys
    assert partition.changelog_records([alert_key]) == [(alert_key, None)]
    assert partition.forgotten_suppressed == 1
    (opened,) = feed(partition, [alert(ts=101)]).incidents
    assert opened.suppressed == 0


def test_alerts_fed_add_up_to_the_incidents_alerts_and_suppressed() -> None:
    rng = random.Random(9)
    rules = (SuppressRule("net", src_cidr="10.0.0.0/30"), SuppressRule("fuzz", attack_cat="Fuzzers"))
    partition = PartitionIncidents(dataclasses.replace(SETTINGS, suppress=rules), now=0)
    records: list[Incident] = []
    fed = 0
    for batch in range(40):
        alerts = [
            alert(
                ts=batch * 30 + rng.random() * 60,
                srcip=f"10.0.0.{rng.randrange(8)}",
                attack_cat=rng.choice(["Fuzzers", "DoS", "Exploits"]),
            )
            for _ in range(rng.randrange(1, 200))
        ]
        fed += len(alerts)
        records += feed(partition, alerts).incidents
    records += partition.close_all().incidents
    closed = [r for r in records if r.state == "closed"]
    assert len(closed) == len({r.incident_id for r in records})
    suppressed = sum(r.suppressed for r in closed) + partition.forgotten_suppressed
    assert sum(r.alerts for r in closed) + suppressed == fed
    assert suppressed == sum(partition.suppressor.counts.values()) > 0
    assert all(sum(r.alerts_by_attack_cat.values()) == r.alerts for r in closed)


def test_per_incident_memory_is_bounded() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    feed(
        partition,
        [alert(ts=i * 0.01, dstip=f"10.{i // 250}.0.{i % 250}", dsport=i, model_version=f"v{i}") for i in range(5000)],
    )
    (incident,) = partition._open.values()
    assert len(incident.destinations) <= 64 and len(incident.ports) <= 64
    assert len(incident.samples) == 5 and len(incident.model_versions) == 5
    (closed,) = partition.close_all().incidents
    assert len(closed.top_destinations) == 5 and len(closed.top_ports) == 5
    assert [s.flow_id for s in closed.samples] == [s.flow_id for s in incident.samples]


def test_samples_carry_the_alerts_community_ids() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    feed(partition, [alert(ts=1, community_id="1:wCb3OG7yAFWelaUydu0D+125CLM=", flow_id="a"), alert(ts=2, flow_id="b")])
    (closed,) = partition.close_all().incidents
    assert [(s.flow_id, s.community_id, s.ts) for s in closed.samples] == [
        ("a", "1:wCb3OG7yAFWelaUydu0D+125CLM=", 1),
        ("b", None, 2),
    ]


def test_changelog_holds_each_changed_key_and_a_tombstone_once_closed() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    changes = feed(partition, [alert(ts=10, srcip="10.0.0.1")])
    assert changes.changed_keys == {"src=10.0.0.1", STREAM_TIME_KEY}
    records = dict(partition.changelog_records(changes.changed_keys))
    assert records["src=10.0.0.1"] is not None and records[STREAM_TIME_KEY] is not None
    closing = partition.close_all()
    assert partition.changelog_records(closing.changed_keys) == [("src=10.0.0.1", None)]


@pytest.mark.parametrize("cut", [1, 700, 1999])
def test_a_partition_restored_from_its_changelog_goes_on_as_if_never_stopped(cut: int) -> None:
    rng = random.Random(cut)
    rule = SuppressRule("dos", attack_cat="DoS")
    settings = dataclasses.replace(SETTINGS, update_interval_s=3, suppress=(rule,))
    alerts = [
        alert(
            ts=i * 0.4 + rng.choice([0.0, -70.0]),
            detected_at=i * 0.4,
            srcip=f"10.0.0.{rng.randrange(5)}",
            attack_cat=rng.choice(["DoS", "Exploits", "Generic"]),
            dstip=f"149.171.126.{rng.randrange(90)}",
        )
        for i in range(2000)
    ]

    def run(partition: PartitionIncidents, part: list[Alert], changelog: list[tuple[str, bytes | None]]) -> list[bytes]:
        out = []
        for start in range(0, len(part), 100):
            changes = feed(partition, part[start : start + 100])
            changelog += partition.changelog_records(changes.changed_keys)
            out += [msgspec.json.encode(r) for r in changes.incidents]
        return out

    straight = run(PartitionIncidents(settings, now=0), alerts, [])
    changelog: list[tuple[str, bytes | None]] = []
    before = run(PartitionIncidents(settings, now=0), alerts[:cut], changelog)
    restored = PartitionIncidents.restore(changelog, settings, now=0)
    after = run(restored, alerts[cut:], [])
    assert sorted(before + after) == sorted(straight)


def test_a_restored_partition_keeps_its_stream_time_and_restarts_the_quiet_clock() -> None:
    partition = PartitionIncidents(SETTINGS, now=0)
    changes = feed(partition, [alert(ts=0, srcip="10.0.0.1"), alert(ts=100, srcip="10.0.0.2")])
    changes.extend(feed(partition, [alert(ts=101, srcip="10.0.0.2")]))
    restored = PartitionIncidents.restore(partition.changelog_records(changes.changed_keys), SETTINGS, now=5000)
    assert restored.stream_time == 101 and restored.open_incidents == 1
    # 30 s of event time is behind the stream by more than idle_close_s: late, and closed at expire.
    records = feed(restored, [alert(ts=30, srcip="10.0.0.3")], now=5001).incidents
    assert [(r.state, r.late_alerts) for r in records] == [("open", 1), ("closed", 1)]
    assert restored.close_quiet(now=5060).incidents == []
    assert [r.close_reason for r in restored.close_quiet(now=5062).incidents] == ["quiet"]


def test_a_corrupt_changelog_record_is_one_line() -> None:
    from nids_common.errors import NidsError

    with pytest.raises(NidsError, match=r"changelog record 'src=10.0.0.1': "):
        PartitionIncidents.restore([(b"src=10.0.0.1", b"\xc1")], SETTINGS, now=0)

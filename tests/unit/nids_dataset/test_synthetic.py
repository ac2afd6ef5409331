"""Synthetic flows carry the testbed's identities (who, which port, when), and only as identity."""

from __future__ import annotations

import time

import numpy as np

from nids_common.schema import NORMAL
from nids_dataset.synthetic import ATTACKERS, NORMAL_CLIENTS, NORMAL_SERVERS, SERVICE_PORTS, VICTIMS, synthetic_frame
from producer.replay import synthetic_chunks


def test_addresses_follow_the_testbeds_plan_by_class() -> None:
    frame = synthetic_frame(5000, seed=1)
    normal = frame["attack_cat"] == NORMAL
    assert set(frame.loc[normal, "srcip"]) <= set(NORMAL_CLIENTS)
    assert set(frame.loc[normal, "dstip"]) <= set(NORMAL_SERVERS)
    assert set(frame.loc[~normal, "srcip"]) <= set(ATTACKERS)
    assert set(frame.loc[~normal, "dstip"]) <= set(VICTIMS)
    assert len(set(frame.loc[~normal, "srcip"])) == len(ATTACKERS)


def test_ports_follow_the_service_and_times_run_forward() -> None:
    frame = synthetic_frame(5000, seed=2)
    for service, port in SERVICE_PORTS.items():
        assert (frame.loc[frame["service"] == service, "dsport"] == port).all(), service
    assert frame["sport"].between(1024, 65535).all() and frame["dsport"].between(1, 65535).all()
    assert (np.diff(frame["stime"].to_numpy()) > 0).all()
    assert (frame["ltime"] >= frame["stime"]).all()


def test_a_replayed_synthetic_stream_keeps_its_clock_across_chunks() -> None:
    chunks = synthetic_chunks(seed=3, chunk_rows=1000)
    first, second = next(chunks), next(chunks)
    assert second["stime"].iloc[0] > first["stime"].iloc[-1] - 1.0
    assert second["stime"].min() > first["stime"].min()


def test_a_synthetic_replay_is_live_traffic_starting_now() -> None:
    before = time.time()
    first = next(synthetic_chunks(seed=3, chunk_rows=1000))
    again = next(synthetic_chunks(seed=3, chunk_rows=1000, start_time=before + 3600))
    assert before <= first["stime"].iloc[0] <= time.time() + 10
    # The same flows, an hour later: the same features, new event times.
    assert (again["stime"] - first["stime"]).between(3590, 3610).all()

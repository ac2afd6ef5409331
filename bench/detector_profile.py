"""Where one nids-detect process spends its time on a backlog: microseconds per flow for each stage.

    .venv/bin/python -m bench.detector_profile [--flows 500000] [--malformed 2000] [--delivery at_least_once]
                                               [--flame detector.svg]

A 6-partition topic is pre-filled with --flows flows (the dev file repeated, or synthetic) and
--malformed malformed records among them; `nids-detect` then runs as a process, as deployed, until
its group has committed everything. Printed: the sustained rate (flows/s between 10 % and 90 % of
the committed progress) and, from the detector's own `nids_stage_seconds_total{stage}`, the
microseconds per flow and the share of the run of every stage. The loop's stages (consume … metrics)
run one after another on one thread and add up to about the run; the scorer thread's (the models,
drift) overlap them, and `wait_for_scores` is the loop idle while they run. With --flame and py-spy
installed (`pip install py-spy`), a flame graph of the same run is written too.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

from bench.common import ensure_broker, flows_frame, model_path
from detector.values import Stage
from nids_common.checkpoint import AT_LEAST_ONCE, EXACTLY_ONCE
from nids_harness.chaos import prefill
from nids_harness.detector_process import start_ready_detector
from nids_harness.groups import committed_so_far
from nids_harness.metrics import scrape, total
from nids_harness.ports import free_port
from nids_harness.topics import make_topics
from nids_harness.waiting import wait_until

POLL_S = 0.25
DRAIN_TIMEOUT_S = 600.0


def sustained_rate(progress: list[tuple[float, int]], flows: int) -> float:
    """Flows/s between the samples at 10 % and 90 % of `flows` committed."""
    low = next((at, done) for at, done in progress if done >= flows * 0.1)
    high = next((at, done) for at, done in progress if done >= flows * 0.9)
    return (high[1] - low[1]) / (high[0] - low[0]) if high[0] > low[0] else float("nan")


def sample_progress(progress: list[tuple[float, int]], bootstrap: str, group: str, topic: str) -> int:
    """Appends (now, records `group` has committed through `topic`) to `progress` and returns the
    count; -1, with nothing appended, while the group coordinator cannot say (a broker just started)."""
    done = committed_so_far(bootstrap, group, topic)
    if done >= 0:
        progress.append((time.monotonic(), done))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=500_000)
    parser.add_argument("--malformed", type=int, default=2_000)
    parser.add_argument("--delivery", choices=(AT_LEAST_ONCE, EXACTLY_ONCE), default=AT_LEAST_ONCE)
    parser.add_argument("--flame", type=Path, help="write a py-spy flame graph (SVG) of the run here")
    args = parser.parse_args()
    bootstrap = ensure_broker()
    frame, source = flows_frame(args.flows)
    name = f"bench.profile.{uuid.uuid4().hex[:6]}"
    topics = make_topics(bootstrap, name)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4"})
    prefill(producer, topics.flows, frame, range(args.malformed), "p", False, parts=4)
    records: int = args.flows + args.malformed
    log = Path(tempfile.mkdtemp(prefix="profile-")) / "detector.log"
    port = free_port()
    detector = start_ready_detector(
        bootstrap, topics, name, port, model_path(), log, delivery=args.delivery, instance_id=f"{name}-1"
    )
    spy = None
    if args.flame is not None:
        # Installed beside this interpreter (the dev extras), or on PATH.
        beside = Path(sys.executable).with_name("py-spy")
        tool = str(beside) if beside.exists() else shutil.which("py-spy")
        if tool is None:
            raise SystemExit("--flame needs py-spy: pip install py-spy")
        spy = subprocess.Popen([tool, "record", "-o", str(args.flame), "-r", "100", "--pid", str(detector.pid)])
    progress: list[tuple[float, int]] = []

    def drained() -> bool:
        return sample_progress(progress, bootstrap, name, topics.flows) >= records

    try:
        if not wait_until(drained, DRAIN_TIMEOUT_S, poll=POLL_S):
            raise SystemExit(f"the detector did not commit every record within {DRAIN_TIMEOUT_S:.0f} s; see {log}")
        samples = scrape(port)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its graph on SIGINT
            spy.wait(60)
        detector.terminate()
        detector.wait(60)
    scored = total(samples, "nids_flows_scored_total")
    spent = {stage: total(samples, "nids_stage_seconds_total", stage=stage) for stage in (*Stage.LOOP, *Stage.SCORER)}
    run_s = progress[-1][0] - progress[0][0]
    print(f"source: {source}; {args.flows:,} flows + {args.malformed:,} malformed, {args.delivery}")
    print(
        f"sustained {sustained_rate(progress, records):,.0f} records/s (10–90 % committed); {scored:,.0f} flows scored"
    )
    print(f"{'stage':<18} {'µs/flow':>8} {'share of run':>13}")
    for group, stages in (("loop", Stage.LOOP), ("scorer thread", Stage.SCORER)):
        print(f"-- {group}")
        for stage in stages:
            print(f"{stage:<18} {spent[stage] / scored * 1e6:8.2f} {spent[stage] / run_s:12.1%}")
    loop = sum(spent[stage] for stage in Stage.LOOP)
    print(f"loop total {loop / scored * 1e6:.2f} µs/flow; run {run_s:.1f} s (from the first poll to the last commit)")
    if args.flame is not None:
        print(f"flame graph: {args.flame}")


if __name__ == "__main__":
    main()

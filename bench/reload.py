"""A new model goes live mid-stream: how soon, what it costs in latency, and that no flow is lost or
scored twice.

    .venv/bin/python -m bench.reload [--rate 10000] [--seconds 40] [--poll 2] [--train]

nids-detect (emit_verdicts, model_poll_s = --poll) reads a topic that nids-replay fills at --rate.
Halfway, `nids-model promote` re-points a models folder of this run's own at the other version (the
two newest versions of models/, or the newest and a copy when there is only one), as an operator
does after nids-train; with --train, nids-train itself runs into that folder mid-stream (quick config,
synthetic flows) and re-points latest when it is done, sharing the two cores with the stream. A
read_committed reader takes the verdicts as they come. Prints: seconds from
the promote to the first verdict of the new version, flows scored 0 / 1 / more times, and the
end-to-end latency p99 over the whole run and over the 5 s around the swap.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from confluent_kafka import Message

from bench.common import ensure_broker, fresh_topics, replay_command
from nids_common.contract import verdict_decoder
from nids_harness.checkout import REPO
from nids_harness.detector_process import start_ready_detector
from nids_harness.ports import free_port
from nids_harness.reading import LiveReader, read_topic
from nids_model import artifact
from training import model_cli


def model_store(source: Path) -> tuple[Path, str, str]:
    """A models folder of this run's own: (folder, live version, version to promote)."""
    versions = artifact.versions(source)
    store = Path(tempfile.mkdtemp(prefix="bench-reload-")) / "models"
    store.mkdir()
    old = versions[-2] if len(versions) > 1 else versions[-1]
    new = versions[-1] if len(versions) > 1 else versions[-1] + "-copy"
    shutil.copytree(source / old, store / old)
    shutil.copytree(source / versions[-1], store / new)
    artifact.point_latest(store, old)
    return store, old, new


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--train", action="store_true", help="run nids-train into the folder instead of promoting")
    args = parser.parse_args()
    bootstrap = ensure_broker()
    store, old, new = model_store(REPO / "models")
    topics = fresh_topics("reload")
    seen: dict[tuple[int, int], list[tuple[float, str]]] = collections.defaultdict(list)

    def on_verdict(message: Message, when: float) -> None:
        verdict = verdict_decoder.decode(message.value() or b"")
        seen[(verdict.source.partition, verdict.source.offset)].append((when, verdict.model_version))

    reader = LiveReader(bootstrap, topics.verdicts, on_verdict)
    reader.start()
    group = f"bench-reload-{time.monotonic_ns()}"
    detector = start_ready_detector(
        bootstrap,
        topics,
        group,
        free_port(),
        store / "latest",
        emit_verdicts="true",
        model_poll_s=args.poll,
    )
    reader.wait_assigned()
    flows = int(args.rate * args.seconds)
    replay = subprocess.Popen(
        replay_command(topics.flows, "--rate", str(args.rate), "--limit", str(flows)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    if args.train:
        time.sleep(args.seconds / 4)
        subprocess.run(
            [sys.executable, "-m", "training.cli", "--synthetic", "30000", "--config", "config/training-quick.yaml",
             "--out", str(store)],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        new = (store / artifact.LATEST).resolve().name
    else:
        time.sleep(args.seconds / 2)
        model_cli.promote(store, new)
    promoted = time.time()
    replay.communicate(timeout=args.seconds * 3)
    time.sleep(5)
    detector.terminate()
    detector.wait(30)
    reader.stop()

    sent_ms = {(m.partition() or 0, m.offset() or 0): m.timestamp()[1] for m in read_topic(bootstrap, topics.flows)}
    counts = collections.Counter(len(seen.get(key, [])) for key in sent_ms)
    arrivals = [(sent_ms[key] / 1000.0, *verdicts[0]) for key, verdicts in seen.items() if key in sent_ms]
    sent, arrived = np.array([a[0] for a in arrivals]), np.array([a[1] for a in arrivals])
    latency = arrived - sent
    first_new = min((a[1] for a in arrivals if a[2] == new), default=float("nan"))
    around = np.abs(arrived - first_new) <= 2.5
    print(f"{flows:,} flows at {args.rate:,.0f} flows/s, model_poll_s {args.poll}: {old} → {new}")
    event = "nids-train done" if args.train else "promote"
    print(f"  {event} → first verdict of the new version: {first_new - promoted:.2f} s")
    repeated = sum(n for k, n in counts.items() if k > 1)
    print(f"  flows scored 0 times: {counts.get(0, 0):,}, once: {counts.get(1, 0):,}, more: {repeated:,}")
    swap_p99, swap_max = np.percentile(latency[around], 99) * 1000, latency[around].max() * 1000
    print(
        f"  latency p99 whole run {np.percentile(latency, 99) * 1000:.0f} ms, "
        f"within 2.5 s of the swap {swap_p99:.0f} ms (max {swap_max:.0f} ms)"
    )


if __name__ == "__main__":
    main()

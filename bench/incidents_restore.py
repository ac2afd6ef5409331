"""nids-incidents after a member's SIGKILL: how long until the survivor writes the killed member's incidents.

    .venv/bin/python -m bench.incidents_restore [--rounds 3] [--rate 2000]

Each round: two `nids-incidents` processes in a fresh group (exactly_once, 6 partitions, session
timeout 6 s) read a live stream of --rate alerts/s in which every alert comes from a new source, so
every repartition partition writes an `open` record all the time. Once both hold partitions and the
stream has run WARM_S seconds, one member is SIGKILLed. Printed per round: seconds from the kill to
the survivor's restore of the partitions it took over (from its log: when, and how long the restore
took) and to the first incident record of those partitions (its Kafka timestamp, read_committed),
and whether the killed member had a transaction open (the local broker's log says it rolled it back
on timeout): that transaction holds every read_committed reader of its partitions until then.
The target is the first incident within 10 s of the kill; the session timeout is most of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import ensure_broker
from bench.live_alerts import SLOT_S, LiveAlerts
from incidents.config import IncidentsConfig
from incidents.repartition import partition_for
from nids_common.contract import incident_decoder
from nids_harness.incident_stream import incidents_config, start_incidents
from nids_harness.local_broker import broker_home
from nids_harness.reading import read_topic
from nids_harness.waiting import wait_until

PARTITIONS = 6
WARM_S = 15.0
AFTER_S = 20.0
_ASSIGNED = re.compile(r"^(\S+ \S+) INFO nids.incidents assigned repartition partitions \[([\d, ]*)\]")
_RESTORED = re.compile(r"^(\S+ \S+) INFO nids.incidents \S+\[(\d+)\]: .* restored .* in ([\d.]+) s")


def log_time(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def assignments(log: Path) -> list[tuple[float, list[int]]]:
    """(when, partitions) of each assignment the member logged."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = _ASSIGNED.match(line)
        if match:
            found.append((log_time(match[1]), [int(p) for p in match[2].split(",") if p.strip()]))
    return found


def restores(log: Path, after: float) -> list[tuple[float, int, float]]:
    """(when, partition, seconds) of each restore the member logged after `after`."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = _RESTORED.match(line)
        if match and log_time(match[1]) > after:
            found.append((log_time(match[1]), int(match[2]), float(match[3])))
    return found


@dataclasses.dataclass(frozen=True)
class Round:
    restored_s: float  # from the kill to the survivor's restore of the moved partitions
    first_incident_s: float  # from the kill to their first incident record
    restore_s: float  # the longest restore itself
    open_transaction: bool  # the killed member's transaction was open, and aborted by the broker


def rolled_back_on_timeout(transactional_id: str) -> bool:
    """Whether the local broker's log says it aborted an open transaction of `transactional_id` on timeout."""
    log = broker_home() / "logs" / "server.log"
    wanted = f"rollback of ongoing transaction for transactionalId {transactional_id} due to timeout"
    return log.exists() and wanted in log.read_text(errors="replace")


def one_round(bootstrap: str, rate: int) -> Round:
    name = f"bench.incidents-restore.{uuid.uuid4().hex[:6]}"
    config: IncidentsConfig = incidents_config(bootstrap, name, PARTITIONS, delivery="exactly_once")
    folder = Path(tempfile.mkdtemp(prefix="incidents-restore-"))
    logs = [folder / "a.log", folder / "b.log"]
    members: list[subprocess.Popen[bytes]] = []
    transactional_ids = []
    for index, log in enumerate(logs):
        own = dataclasses.replace(
            config, incidents=dataclasses.replace(config.incidents, instance_id=f"{name}-{index}")
        )
        transactional_ids.append(own.transactional_id)
        members.append(start_incidents(own, log))
    alerts = LiveAlerts(bootstrap, config.topics.alerts, rate, int(rate * SLOT_S))
    try:
        if not wait_until(lambda: all(assignments(log) and assignments(log)[-1][1] for log in logs), 90):
            raise SystemExit(f"both members did not hold partitions within 90 s; see {folder}")
        alerts.start()
        time.sleep(WARM_S)
        moved = assignments(logs[0])[-1][1]
        os.kill(members[0].pid, signal.SIGKILL)
        killed_at = time.time()
        members[0].wait()
        time.sleep(AFTER_S)
    finally:
        alerts.stop()
        for member in members:
            if member.poll() is None:
                member.terminate()
                member.wait(30)
    taken = [r for r in restores(logs[1], killed_at) if r[1] in moved]
    if {partition for _, partition, _ in taken} != set(moved):
        raise SystemExit(f"the survivor did not restore all of {moved}: {taken}; see {logs[1]}")
    written = records_after(bootstrap, config, moved, killed_at)
    if not written:
        raise SystemExit(f"no incident of partitions {moved} after the kill; see {logs[1]}")
    return Round(
        restored_s=max(at for at, _, _ in taken) - killed_at,
        first_incident_s=min(written) - killed_at,
        restore_s=max(seconds for _, _, seconds in taken),
        open_transaction=rolled_back_on_timeout(transactional_ids[0]),
    )


def records_after(bootstrap: str, config: IncidentsConfig, moved: list[int], after: float) -> list[float]:
    """Kafka timestamps of the committed incident records of partitions `moved` written after `after`."""
    written = []
    for message in read_topic(bootstrap, config.topics.incidents, idle_seconds=3.0):
        incident = incident_decoder.decode(message.value() or b"")
        at = message.timestamp()[1] / 1000
        if at > after and partition_for(incident.key.text, PARTITIONS) in moved:
            written.append(at)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2_000, help="alerts per second, each from a new source")
    args = parser.parse_args()
    bootstrap = ensure_broker()
    results = []
    for round_number in range(1, args.rounds + 1):
        result = one_round(bootstrap, args.rate)
        results.append(result.first_incident_s)
        print(
            f"round {round_number}: SIGKILL{' mid-transaction' if result.open_transaction else ''} → moved "
            f"partitions restored {result.restored_s:.1f} s (longest restore {result.restore_s:.2f} s) → first "
            f"incident of them {result.first_incident_s:.1f} s"
        )
    print(f"first incident after the kill: median {statistics.median(results):.1f} s, worst {max(results):.1f} s")


if __name__ == "__main__":
    main()

"""nids-incidents' memory over a long live stream with many keys: state is bounded by closes.

    .venv/bin/python -m bench.incidents_memory [--minutes 10] [--rate 5000] [--keys 100000]

A `nids-incidents` process (as an operator runs it, at_least_once, idle_close_s 60) reads a live
alert stream of --rate alerts/s with event times of now. The attackers change every SLOT_S seconds:
each slot brings --keys / slots new source addresses, each sending about one alert a second for the
slot and then falling silent, so --keys distinct keys pass over the run while about
(idle_close_s / SLOT_S + 1) slots of them are open at a time. Every SAMPLE_S seconds the bench prints
the process's resident memory, its open incidents and what it has tracked; at the end, memory at
each quarter of the run and the growth over the second half (flat: the idle closes free what the
new keys take).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import ensure_broker, rss_bytes
from bench.live_alerts import SLOT_S, LiveAlerts
from nids_harness.incident_stream import incidents_config, start_incidents
from nids_harness.metrics import scrape, scrape_total
from nids_harness.ports import free_port
from nids_harness.waiting import wait_until

SAMPLE_S = 15.0
MIB = 1024 * 1024


def answers(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=5_000, help="alerts per second")
    parser.add_argument("--keys", type=int, default=100_000, help="distinct source addresses over the run")
    args = parser.parse_args()
    seconds = args.minutes * 60
    slots = max(1, int(seconds // SLOT_S))
    bootstrap = ensure_broker()
    name = f"bench.incidents-memory.{uuid.uuid4().hex[:6]}"
    config = incidents_config(bootstrap, name, idle_close_s=60.0)
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="incidents-memory-")) / "nids-incidents.log"
    process = start_incidents(config, log, metrics_port=port)
    alerts = LiveAlerts(bootstrap, config.topics.alerts, args.rate, -(-args.keys // slots))
    samples: list[tuple[float, int, float, float]] = []  # seconds, rss, open, tracked
    try:
        wait_until(lambda: answers(port), 60)
        alerts.start()
        print(f"{'s':>5} {'RSS MiB':>8} {'open':>8} {'tracked':>11} {'sent':>11}")
        while (elapsed := time.time() - alerts.started) < seconds:
            time.sleep(SAMPLE_S - elapsed % SAMPLE_S)
            if process.poll() is not None:
                raise SystemExit(f"nids-incidents exited with {process.returncode}; see {log}")
            row = (
                time.time() - alerts.started,
                rss_bytes(process.pid),
                scrape_total(port, "nids_incidents_open"),
                scrape_total(port, "nids_incident_alerts_tracked_total"),
            )
            samples.append(row)
            print(f"{row[0]:>5.0f} {row[1] / MIB:>8.1f} {row[2]:>8,.0f} {row[3]:>11,.0f} {alerts.sent:>11,}")
    finally:
        alerts.stop()
        process.terminate()
        process.wait(30)
    quarters = [samples[max(0, round(len(samples) * q) - 1)] for q in (0.25, 0.5, 0.75, 1.0)]
    print(
        f"{alerts.sent:,} alerts from {slots * -(-args.keys // slots):,} keys; RSS at each quarter of the run: "
        + ", ".join(f"{rss / MIB:.1f} MiB ({at:.0f} s)" for at, rss, _, _ in quarters)
    )
    half, last = quarters[1][1], quarters[3][1]
    print(f"second half: {100 * (last - half) / half:+.1f}% RSS; open incidents at the end {samples[-1][2]:,.0f}")


if __name__ == "__main__":
    main()

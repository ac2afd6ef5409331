"""Chaos: SIGKILL the detector mid-batch, then a broker, and count what a downstream reader sees.

    .venv/bin/python -m bench.chaos [--flows 1000000] [--kills 5] [--delivery both] [--no-broker-kill]
    .venv/bin/python -m bench.chaos --cluster [--fault leader] [--flows 200000] [--kills 2]

1. Pre-fill a 6-partition topic with --flows flows (the dev file repeated, or synthetic), malformed
   records of every dead-letter reason and one oversized compressible message, interleaved.
2. Start nids-detect (static membership, the given delivery mode); --kills times, at a random point
   mid-stream, SIGKILL it and start it again at once with the same instance id.
3. SIGKILL the local broker (only one this run started) and start it again. With --cluster, on the
   local three-broker cluster (topics replicated 3 times, min.insync.replicas 2), --fault is one of
   (nids_harness.cluster.FAULTS): SIGKILL the node that leads flow partition 0 (leader), coordinates
   the detector's transactions (transaction-coordinator) or its group (group-coordinator), started
   again once detection resumed; two nodes down for 20 s (two-down: writes refused); or every node
   stopped cleanly and started again in turn (rolling-restart).
4. When the group has committed everything, read the alert and dead-letter topics as a downstream
   consumer does (read_committed) and compare them with the offline scoring of the same flows.

Prints, per delivery mode: alerts expected / missing / duplicated, dead letters expected / got /
duplicated, and the longest stall (SIGKILL of the detector → the restarted one's first committed batch;
broker SIGKILL → the first batch committed after it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import orjson

from bench.common import ensure_broker, flows_frame, model_path
from nids_harness.chaos import DELIVERY_MODES, OVERSIZED_BYTES, BrokerFault, run_chaos, single_broker_fault
from nids_harness.cluster import FAULTS, start_cluster, warm_up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--malformed", type=int, default=2000)
    parser.add_argument("--delivery", choices=("both", *DELIVERY_MODES), default="both")
    parser.add_argument("--no-broker-kill", action="store_true")
    parser.add_argument("--static-membership", action="store_true", help="detector.static_membership: true")
    parser.add_argument("--group-protocol", choices=("classic", "consumer"), default="classic")
    parser.add_argument("--cluster", action="store_true", help="the local three-broker cluster (started if down)")
    parser.add_argument("--fault", choices=sorted(FAULTS), default="leader", help="--cluster: which node to kill")
    args = parser.parse_args()
    fault: BrokerFault | None = None
    if args.cluster:
        bootstrap = start_cluster()
        warm_up(bootstrap)
        fault = None if args.no_broker_kill else FAULTS[args.fault]
        print(f"three-broker cluster {bootstrap}; broker fault: {'none' if fault is None else args.fault}")
    else:
        if not args.no_broker_kill and "KAFKA_BOOTSTRAP" in os.environ:
            print("KAFKA_BOOTSTRAP names a broker this run did not start: it is not killed")
        elif not args.no_broker_kill:
            fault = single_broker_fault
        bootstrap = ensure_broker()
    frame, source = flows_frame(args.flows)
    print(f"source: {source}; {args.flows:,} flows, {args.malformed:,} malformed, 1 oversized ({OVERSIZED_BYTES:,} B)")
    modes = DELIVERY_MODES if args.delivery == "both" else (args.delivery,)
    for delivery in modes:
        report = run_chaos(
            bootstrap,
            frame,
            model_path(),
            delivery,
            args.kills,
            args.malformed,
            fault,
            static_membership=args.static_membership,
            group_protocol=args.group_protocol,
        )
        print(report.line(), flush=True)
        print(orjson.dumps(dataclasses.asdict(report)).decode(), flush=True)


if __name__ == "__main__":
    main()

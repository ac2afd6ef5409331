"""nids-topics: create the stream's topics (flows, alerts, dead letters, verdicts) as the contract says.

Names and the partition count come from the detector's config (topics.*, NIDS_TOPICS_PARTITIONS);
the dead-letter topic's max.message.bytes from detector.dead_letter_max_bytes; replication from the
contract (3 copies, min.insync.replicas 2) or, on a smaller cluster, as many as it has brokers.
Topics that already exist are left as they are. With --acls (as an admin principal) it also grants each role only the
rights its service needs (nids_common.acls), nids-incidents' on the names --incidents-* give (it creates
its own topics when it first starts).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from detector.config import DEFAULT_PATH, load
from nids_common.acls import Principals, role_acls
from nids_common.cli import EXIT_CODES_HELP, run
from nids_common.contract import IncidentStageNames
from nids_common.errors import EXIT_OK
from nids_common.kafka import create_acls, ensure_topics


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-topics", description=__doc__, epilog=EXIT_CODES_HELP)
    p.add_argument("--config", default=str(DEFAULT_PATH), help=f"detector config (default: {DEFAULT_PATH})")
    p.add_argument(
        "--acls", action="store_true", help="also create the ACLs of the replay, detector, alerts and incidents roles"
    )
    p.add_argument(
        "--replication-factor",
        type=int,
        metavar="N",
        help="copies of each new topic's partitions (default: 3, or as many brokers as the cluster has)",
    )
    p.add_argument(
        "--min-insync-replicas",
        type=int,
        metavar="N",
        help="copies a write needs before it is acknowledged (default: 2, or 1 below three copies)",
    )
    stage = IncidentStageNames()
    for name, default, what in (
        ("group", stage.group_id, "incidents.group_id"),
        ("topic", stage.incidents, "topics.incidents"),
        ("dead-letter", stage.dead_letter, "topics.dead_letter"),
    ):
        p.add_argument(
            f"--incidents-{name}", default=default, help=f"nids-incidents' {what}, for its ACLs (default: {default})"
        )
    defaults = Principals()
    for role in ("replay", "detector", "alerts", "incidents"):
        p.add_argument(
            f"--{role}-principal",
            default=getattr(defaults, role),
            metavar="USER",
            help=f"SASL user of the {role} role (default: {getattr(defaults, role)})",
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: create_command(args), "nids-topics")


def create_command(args: argparse.Namespace) -> int:
    config = load(args.config)
    topics = config.topics
    replication = ensure_topics(
        config.kafka.client_config(),
        topics.partition_counts(),
        configs=topics.configs(config.detector.dead_letter_max_bytes),
        factor=args.replication_factor,
        min_insync=args.min_insync_replicas,
    )
    counts = ", ".join(f"{name} ({count})" for name, count in topics.partition_counts().items())
    print(
        f"nids-topics: present on {config.kafka.bootstrap}: {counts}; new ones get replication factor "
        f"{replication.factor}, min.insync.replicas {replication.min_insync}"
    )
    if args.acls:
        principals = Principals(
            args.replay_principal, args.detector_principal, args.alerts_principal, args.incidents_principal
        )
        incidents = IncidentStageNames(
            alerts=topics.alerts,
            incidents=args.incidents_topic,
            dead_letter=args.incidents_dead_letter,
            group_id=args.incidents_group,
        )
        bindings = role_acls(
            topics, config.detector.group_id, config.transactional_id_prefix, principals, incidents=incidents
        )
        create_acls(config.kafka.client_config(), bindings)
        print(f"nids-topics: {len(bindings)} ACLs granted to {', '.join(dataclasses.astuple(principals))}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""nids-topics: create the stream's topics (flows, alerts, dead letters, verdicts) as the contract says.

Names and the partition count come from the detector's config (topics.*, NIDS_TOPICS_PARTITIONS);
the dead-letter topic's max.message.bytes from detector.dead_letter_max_bytes. Topics that already
exist are left as they are.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from detector.config import DEFAULT_PATH, load
from nids_common.cli import EXIT_CODES_HELP, run
from nids_common.errors import EXIT_OK
from nids_common.kafka import ensure_topics


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-topics", description=__doc__, epilog=EXIT_CODES_HELP)
    p.add_argument("--config", default=str(DEFAULT_PATH), help=f"detector config (default: {DEFAULT_PATH})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: create_command(args), "nids-topics")


def create_command(args: argparse.Namespace) -> int:
    config = load(args.config)
    topics = config.topics
    ensure_topics(
        config.kafka.client_config(),
        topics.partition_counts(),
        configs=topics.configs(config.detector.dead_letter_max_bytes),
    )
    counts = ", ".join(f"{name} ({count})" for name, count in topics.partition_counts().items())
    print(f"nids-topics: present on {config.kafka.bootstrap}: {counts}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

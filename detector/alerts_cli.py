"""nids-alerts: tail the alert topic, pretty-printed or as JSON lines, filtered by class and probability."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import uuid
from collections.abc import Sequence
from typing import TextIO

import msgspec
from confluent_kafka import Consumer

from detector.config import DEFAULT_PATH, load
from nids_common.cli import EXIT_CODES_HELP, run
from nids_common.contract import ALERTS_GROUP_PREFIX, UNSET, Alert, alert_decoder
from nids_common.errors import EXIT_OK, UsageError
from nids_common.kafka import Refusals

log = logging.getLogger("nids.alerts")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-alerts", description=__doc__, epilog=EXIT_CODES_HELP)
    p.add_argument(
        "--config",
        default=str(DEFAULT_PATH),
        help=f"detector config, for the broker and topic (default: {DEFAULT_PATH})",
    )
    p.add_argument("--attack-cat", action="append", default=[], metavar="CLASS", help="only these classes (repeatable)")
    p.add_argument("--min-probability", type=float, default=0.0, help="only alerts at least this probable")
    p.add_argument("--json", action="store_true", help="one JSON object per line, for piping")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest alert instead of new ones")
    p.add_argument("--limit", type=int, default=0, help="stop after printing this many alerts")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: tail_command(args), "nids-alerts")


def matches(alert: Alert, classes: set[str], min_probability: float) -> bool:
    if classes and alert.attack_cat.lower() not in classes:
        return False
    return alert.attack_probability >= min_probability


def render(alert: Alert) -> str:
    when = dt.datetime.fromtimestamp(alert.detected_at, dt.UTC).strftime("%H:%M:%S")
    where = ""
    if alert.srcip is not UNSET or alert.dstip is not UNSET:
        where = f"  {endpoints(alert)}"
    source = alert.source
    return (
        f"{when}  {alert.attack_cat:<15} p={alert.attack_probability:.3f}  "
        f"flow {alert.flow_id}{where}  [{source.topic}/{source.partition}@{source.offset}]"
    )


def endpoints(alert: Alert) -> str:
    """srcip:sport → dstip:dsport from the identity fields the flow carried ('?' where it had none)."""
    return f"{_shown(alert.srcip)}:{_shown(alert.sport)} → {_shown(alert.dstip)}:{_shown(alert.dsport)}"


def _shown(value: object) -> str:
    return "?" if value is UNSET or value is None else str(value)


def tail_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if not 0.0 <= args.min_probability <= 1.0:
        raise UsageError("--min-probability must be within 0..1")
    config = load(args.config)
    classes = {c.lower() for c in args.attack_cat}
    # A throwaway group: tailing must never move the offsets of a real consumer.
    group = f"{ALERTS_GROUP_PREFIX}{uuid.uuid4().hex[:8]}"
    refusals = Refusals(config.kafka.librdkafka, {"topic": config.topics.alerts, "group": group})
    consumer = Consumer(
        config.kafka.client_config(
            error_cb=lambda err: refusals.note(err, "READ"),
            **{
                "group.id": group,
                "enable.auto.commit": False,
                # Only alerts of committed detector transactions (exactly-once mode); the same as
                # read_uncommitted for a detector that writes no transactions.
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest" if args.from_beginning else "latest",
            },
        )
    )
    consumer.subscribe([config.topics.alerts])
    running = {"on": True}
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: running.update(on=False))
    printed = 0
    try:
        while running["on"] and not (args.limit and printed >= args.limit):
            for message in consumer.consume(500, timeout=0.5):
                if message.error() is not None:
                    refusals.note(message.error(), "READ", message.topic())
                    continue
                try:
                    alert = alert_decoder.decode(message.value() or b"")
                except msgspec.DecodeError as exc:
                    log.warning(
                        "%s[%d]@%d: not an alert: %s", message.topic(), message.partition(), message.offset(), exc
                    )
                    continue
                if not matches(alert, classes, args.min_probability):
                    continue
                out.write(((message.value() or b"").decode() if args.json else render(alert)) + "\n")
                printed += 1
                if args.limit and printed >= args.limit:
                    break
            out.flush()
            refusals.raise_first()
    finally:
        consumer.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

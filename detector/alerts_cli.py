"""nids-alerts: tail the alert topic, pretty-printed or as JSON lines, filtered by class and probability;
with --incidents, the incidents nids-incidents writes, as a live table."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from typing import TextIO

import msgspec
from confluent_kafka import Consumer, Message
from rich.console import Console
from rich.live import Live
from rich.table import Table

from detector.config import DEFAULT_PATH, load
from detector.incident_board import COLUMNS, IncidentBoard
from detector.values import where
from nids_common.cli import EXIT_CODES_HELP, run
from nids_common.contract import ALERTS_GROUP_PREFIX, INCIDENTS_TOPIC, UNSET, Alert, alert_decoder, incident_decoder
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
    p.add_argument("--limit", type=int, default=0, help="stop after printing this many alerts (or incident records)")
    p.add_argument("--incidents", action="store_true", help="show incidents (a live table; --json: every record)")
    p.add_argument("--incidents-topic", default=INCIDENTS_TOPIC, help=f"with --incidents (default: {INCIDENTS_TOPIC})")
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
    topic = args.incidents_topic if args.incidents else config.topics.alerts
    # A throwaway group: tailing must never move the offsets of a real consumer.
    group = f"{ALERTS_GROUP_PREFIX}{uuid.uuid4().hex[:8]}"
    refusals = Refusals(config.kafka.librdkafka, {"topic": topic, "group": group})
    consumer = Consumer(
        config.kafka.client_config(
            error_cb=lambda err: refusals.note(err, "READ"),
            **{
                "group.id": group,
                "enable.auto.commit": False,
                # Only records of committed transactions (exactly-once mode); the same as
                # read_uncommitted for a writer that uses no transactions.
                "isolation.level": "read_committed",
                # Incidents: the compacted topic from its start is the state of every incident.
                "auto.offset.reset": "earliest" if args.from_beginning or args.incidents else "latest",
            },
        )
    )
    consumer.subscribe([topic])
    running = {"on": True}
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: running.update(on=False))
    show = IncidentTable(args, out) if args.incidents else AlertLines(args, out)
    try:
        while running["on"] and not show.done():
            for message in consumer.consume(500, timeout=0.5):
                if message.error() is not None:
                    refusals.note(message.error(), "READ", message.topic())
                    continue
                show.take(message)
                if show.done():
                    break
            show.refresh()
            refusals.raise_first()
    finally:
        consumer.close()
        show.close()
    return EXIT_OK


class AlertLines:
    """Each alert that passes the filters, one line (or its JSON) as it comes."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args, self.out, self.printed = args, out, 0
        self.classes = {c.lower() for c in args.attack_cat}

    def take(self, message: Message) -> None:
        try:
            alert = alert_decoder.decode(message.value() or b"")
        except msgspec.DecodeError as exc:
            log.warning("%s: not an alert: %s", where(message), exc)
            return
        if matches(alert, self.classes, self.args.min_probability):
            self.out.write(((message.value() or b"").decode() if self.args.json else render(alert)) + "\n")
            self.printed += 1

    def done(self) -> bool:
        return bool(self.args.limit) and self.printed >= self.args.limit

    def refresh(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


class IncidentTable(AlertLines):
    """Every incident record as JSON (--json), or the board of open and recent incidents, redrawn."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        super().__init__(args, out)
        self.board = IncidentBoard()
        self.live = None if args.json else Live(self._table(), console=Console(file=out), auto_refresh=False)
        if self.live is not None:
            self.live.start()

    def take(self, message: Message) -> None:
        try:
            incident = incident_decoder.decode(message.value() or b"")
        except msgspec.DecodeError as exc:
            log.warning("%s: not an incident: %s", where(message), exc)
            return
        if self.classes and not self.classes & {c.lower() for c in incident.alerts_by_attack_cat}:
            return
        if incident.max_attack_probability < self.args.min_probability:
            return
        self.printed += 1
        if self.args.json:
            self.out.write((message.value() or b"").decode() + "\n")
        else:
            self.board.add(incident)

    def refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._table(), refresh=True)
        self.out.flush()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
        self.out.flush()

    def _table(self) -> Table:
        table = Table(title=f"incidents: {len(self.board.open())} open", expand=False)
        for column in COLUMNS:
            table.add_column(column)
        for cells in self.board.rows(time.time()):
            table.add_row(*cells)
        return table


if __name__ == "__main__":
    sys.exit(main())
